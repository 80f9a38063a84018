"""Site Recovery as a provider of the ARM front: its route table, handlers and scope check.

The route table is the OpenAPI document's (every operation of azure-mgmt-
recoveryservicessiterecovery 2.0.0's surface) plus the lab's extension routes below: the
vault itself, the status and result URLs of long-running operations, and the provider
channel. Handlers are registered by operationId; operations without one answer 501 naming it.
"""

from __future__ import annotations

import threading

from fakes.azure.arm.errors import ResourceGroupNotFound, ResourceNotFound, SubscriptionNotFound
from fakes.azure.arm.front import ArmRequest, ArmResponse, ProviderMount
from fakes.azure.arm.routes import RouteTable, make_route

from . import ids, spec
from .handlers import all_handlers
from .models.vault import Vault

_V = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
    "Microsoft.RecoveryServices/vaults/{resourceName}"
)
_CHANNEL = _V + "/replicationFabrics/{fabricName}/drlabProvider"

# The lab's own routes (not in the OpenAPI document), as (method, template, operationId).
EXTENSION_ROUTES = (
    ("GET", _V, "Vaults_Get"),
    ("GET", _V + "/replicationOperationStatus/{jobName}", "ReplicationOperationStatus_Get"),
    ("GET", _V + "/operationresults/{jobName}", "ReplicationOperationResults_Get"),
    ("POST", _CHANNEL + "/heartbeat", "DrlabProvider_Heartbeat"),
    ("PUT", _CHANNEL + "/inventory/{vcenterName}", "DrlabProvider_PutInventory"),
    ("GET", _CHANNEL + "/workItems", "DrlabProvider_ListWorkItems"),
    ("GET", _CHANNEL + "/workItems/{workItemId}", "DrlabProvider_GetWorkItem"),
    ("POST", _CHANNEL + "/workItems/{workItemId}", "DrlabProvider_UpdateWorkItem"),
)


def route_table() -> RouteTable:
    table = RouteTable.from_openapi(spec.document())
    for method, template, operation_id in EXTENSION_ROUTES:
        table.add(make_route(method, template, operation_id, source="drlab extension"))
    return table


class SiteRecovery:
    """What handlers get: the vault, a way to GET a resource by path, the stop event."""

    def __init__(self, vault: Vault, stop_event: threading.Event | None = None):
        self.vault = vault
        self.stop_event = stop_event or threading.Event()
        self.routes = route_table()
        self.handlers = all_handlers()

    def get_resource(self, path: str, req: ArmRequest) -> ArmResponse:
        """Answer a GET of `path` as if it had been requested (the final GET of an LRO)."""
        match = self.routes.match("GET", path)
        if match is None:
            raise ResourceNotFound("resource", path)
        inner = ArmRequest(
            method="GET",
            path=path,
            operation_id=match.route.operation_id,
            params=match.params,
            query={},
            body=b"",
            base_url=req.base_url,
            api_version=req.api_version,
            claims=req.claims,
        )
        return self.handlers[match.route.operation_id](self, inner)

    def check_scope(self, req: ArmRequest) -> None:
        scope = self.vault.scope
        sub = req.params.get("subscriptionId")
        if sub is not None and sub.lower() != scope.subscription_id.lower():
            raise SubscriptionNotFound(sub)
        group = req.params.get("resourceGroupName")
        if group is not None and group.lower() != scope.resource_group.lower():
            raise ResourceGroupNotFound(group)
        vault = req.params.get("resourceName")
        if vault is not None and vault.lower() != scope.vault.lower():
            raise ResourceNotFound(ids.VAULT_TYPE, vault, group)

    def mount(self) -> ProviderMount:
        handlers = {op: (lambda req, fn=fn: fn(self, req)) for op, fn in self.handlers.items()}
        return ProviderMount(
            name="Microsoft.RecoveryServices (Site Recovery)",
            routes=self.routes,
            api_versions=(spec.API_VERSION,),
            handlers=handlers,
            check_scope=self.check_scope,
        )
