"""Microsoft.Compute as a provider of the ARM front: route table, handlers, scope check.

The route table is every operation of azure-mgmt-compute (`sdk_routes.py`, derived from its
request builders), each at the api-version the SDK sends for its resource type, plus the
status URL of Compute's long-running operations (a lab extension row, at the real path);
the handlers serve managed disks and VMs, everything else answers 501 naming its operationId.
"""

from __future__ import annotations

from fakes.azure.arm.front import ProviderMount
from fakes.azure.arm.sdk_routes import parse_table, route_table

from . import sdk_routes
from .compute import Compute
from .handlers import all_handlers

VM_API_VERSION = "2026-04-01"  # what azure-mgmt-compute sends for virtualMachines
EXTENSION_ROUTES = (
    (
        "GET",
        "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}"
        "/operations/{operationId}",
        "ComputeOperations_Get",
        VM_API_VERSION,
    ),
)


def mount(compute: Compute) -> ProviderMount:
    routes = route_table(parse_table(sdk_routes.TABLE), sdk_routes.SOURCE, EXTENSION_ROUTES)
    handlers = {op: (lambda req, fn=fn: fn(compute, req)) for op, fn in all_handlers().items()}
    return ProviderMount(
        name="Microsoft.Compute",
        routes=routes,
        api_versions=(),  # each route carries its own
        handlers=handlers,
        check_scope=lambda req: compute.scope.check(req.params),
    )
