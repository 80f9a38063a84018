"""A lab for the vCenter's end-to-end tests: the default topology's Entra, Azure and vCenter
sections only (no storage emulator, no on-premises components), so that these tests start
what they drive and nothing else."""

from __future__ import annotations

from pathlib import Path

import yaml

from lab.topology import TOPOLOGY_DIR


def vcenter_topology(directory: Path) -> str:
    base = yaml.safe_load((TOPOLOGY_DIR / "default.yaml").read_text())
    topology = {key: base[key] for key in ("entra", "azure", "storage", "vcenter")}
    topology["name"] = "vcenter-e2e"
    disabled = ["azurite", "arm"]
    if "onprem" in base:  # kept for the topology's cross-checks; its roles do not run
        topology["onprem"] = base["onprem"]
        disabled += _names(base["onprem"])
    topology["services"] = {name: {"enabled": False} for name in disabled}
    path = Path(directory) / "vcenter-e2e.yaml"
    path.write_text(yaml.safe_dump(topology))
    return str(path)


def _names(section) -> list[str]:
    """Every `name:` inside a topology section (the instances of on-premises roles)."""
    if isinstance(section, dict):
        found = [section["name"]] if isinstance(section.get("name"), str) else []
        return found + [n for v in section.values() if not isinstance(v, str) for n in _names(v)]
    if isinstance(section, list):
        return [n for item in section for n in _names(item)]
    return []
