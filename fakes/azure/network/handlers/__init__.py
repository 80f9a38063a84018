"""HTTP handlers of Microsoft.Network, one module per resource type, registered by operationId.

Each handler is thin: path parameters and body in, the `Network` models called, ARM JSON out.
An operation of the SDK-derived route table with no handler here answers 501 naming it.
Network writes are quick, so PUT and DELETE answer at once (200/201 with the resource,
`provisioningState: Succeeded`; 200/204 for a delete), which azure-mgmt-core's poller
accepts as finished without polling.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

HANDLERS: dict[str, Callable] = {}

MODULES = ("virtual_networks", "subnets", "network_interfaces")


def operation(*operation_ids: str):
    """Register the decorated function `(network, req) -> ArmResponse` for operationIds."""

    def register(fn):
        for op in operation_ids:
            if op in HANDLERS:
                raise ValueError(f"two handlers for {op}")
            HANDLERS[op] = fn
        return fn

    return register


def all_handlers() -> dict[str, Callable]:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return dict(HANDLERS)
