"""Drills: one module per scenario, steps with narration and checks.

A scenario module defines `NAME`, `SUMMARY` and `run(drill)`; `drlab drill list` and
`drlab drill run NAME` find them by module name (`scenarios.<name with _>`), as the launcher
finds services. A drill runs against a running lab, through the same public clients a user
has (the Azure SDKs, pyvmomi, the lab's control API).
"""

from __future__ import annotations

import importlib
import pkgutil


def names() -> list[str]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name in ("runner",):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "run") and hasattr(module, "NAME"):
            found.append(module.NAME)
    return sorted(found)


def load(name: str):
    module = importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
    if not hasattr(module, "run"):
        raise ModuleNotFoundError(f"scenarios.{name} is not a scenario")
    return module
