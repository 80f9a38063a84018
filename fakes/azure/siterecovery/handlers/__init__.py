"""HTTP handlers of Site Recovery, one module per resource type, registered by operationId.

Each handler is thin: read the path parameters and body, call the models, render JSON. An
operation of the OpenAPI surface with no handler here answers 501 naming its operationId
(the ARM front does that); `missing()` lists them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

HANDLERS: dict[str, Callable] = {}

MODULES = (
    "vault",
    "fabrics",
    "vcenters",
    "containers",
    "protectable_items",
    "policies",
    "mappings",
    "protected_items",
    "recovery_points",
    "jobs",
    "events",
    "provider_channel",
    "failover",
    "plans",
    "resync",
)


def operation(*operation_ids: str):
    """Register the decorated function `(service, req) -> ArmResponse` for operationIds."""

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
