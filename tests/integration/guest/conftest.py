"""Real guest processes on temporary sparse files; every one is powered off at teardown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fakes.guest import host
from fakes.guest.config import DiskRef, GuestConfig
from lab.kit import procs

MiB = 1 << 20
REPO = Path(__file__).resolve().parents[3]
ACCOUNTS = {"linux": {"root": "Guest1!linux"}, "windows": {"Administrator": "Guest1!win"}}


class VmFactory:
    def __init__(self, root: Path):
        self.root = root
        self.state_dir = root / "state"
        self.state_dir.mkdir()
        self.configs: list[GuestConfig] = []

    def __call__(
        self,
        name="lin-app-01",
        os_family="linux",
        sizes=(16 * MiB, 32 * MiB),
        provision=True,
        **workload,
    ) -> GuestConfig:
        vm_dir = self.root / name
        vm_dir.mkdir()
        disks = []
        for i, size in enumerate(sizes):
            path = vm_dir / f"{name}_{i}-flat.vmdk"
            with open(path, "wb") as f:
                f.truncate(size)
            disks.append(DiskRef(f"Hard disk {i + 1}", str(path), size))
        config = GuestConfig(
            vm_id=f"5000-{len(self.configs)}",
            vm_name=name,
            os_family=os_family,
            hostname=f"{name}.lab.local",
            ip_addresses=["10.10.0.31"],
            disks=disks,
            run_dir=str(vm_dir / "run"),
            accounts=ACCOUNTS[os_family],
            workload={"churn_mb_s": 0.5, "app_tps": 20, **workload},
            state_dir=str(self.state_dir),
        )
        if provision:
            host.provision(config)
        self.configs.append(config)
        return config

    def registered(self) -> list[str]:
        return [r.name for r in procs.registered(self.state_dir)]


@pytest.fixture
def vms(tmp_path, monkeypatch):
    """vms(name, os_family, sizes, provision=True, **workload) -> GuestConfig."""
    # The guest imports test drivers by module name, as it would import a component.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    factory = VmFactory(tmp_path)
    yield factory
    for config in factory.configs:
        handle = host.GuestHandle.attach(config)
        if handle is not None:
            handle.power_off()
    assert factory.registered() == []
