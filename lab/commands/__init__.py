"""Command groups of `drlab` beyond the lab lifecycle, one module each (vm, replicate, ...).

Every module here that defines `command` (a click command or group) is added to `drlab`.
Commands reach the lab over the wire, as a user's script would: they never import a fake or
a component.
"""

from __future__ import annotations

import importlib
import pkgutil


def register_all(main) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        command = getattr(module, "command", None)
        if command is not None:
            main.add_command(command)
