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
    disabled = ["azurite", "azurite-disks", "arm", "sr-worker"]
    topology["services"] = {name: {"enabled": False} for name in disabled}
    path = Path(directory) / "vcenter-e2e.yaml"
    path.write_text(yaml.safe_dump(topology))
    return str(path)
