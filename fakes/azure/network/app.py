"""Microsoft.Network as a provider of the ARM front: route table, handlers, scope check.

The route table is every operation of azure-mgmt-network (`sdk_routes.py`, derived from its
request builders), each at the api-version the SDK sends; the handlers registered below
serve VNets, subnets and NICs, everything else answers 501 naming its operationId.
"""

from __future__ import annotations

from fakes.azure.arm.front import ProviderMount
from fakes.azure.arm.sdk_routes import parse_table, route_table

from . import sdk_routes
from .handlers import all_handlers
from .network import Network


def mount(network: Network) -> ProviderMount:
    routes = route_table(parse_table(sdk_routes.TABLE), sdk_routes.SOURCE)
    handlers = {op: (lambda req, fn=fn: fn(network, req)) for op, fn in all_handlers().items()}
    return ProviderMount(
        name="Microsoft.Network",
        routes=routes,
        api_versions=(),  # each route carries its own
        handlers=handlers,
        check_scope=lambda req: network.scope.check(req.params),
    )
