"""HTTP handlers of Microsoft.Compute, one module per resource type, registered by operationId.

Each handler is thin: path parameters and body in, the `Compute` root called, ARM JSON out.
An operation of the SDK-derived route table with no handler here answers 501 naming it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

HANDLERS: dict[str, Callable] = {}

MODULES = ("disks", "virtual_machines", "operations")


def operation(*operation_ids: str):
    """Register the decorated function `(compute, req) -> ArmResponse` for operationIds."""

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
