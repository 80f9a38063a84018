"""In-memory guests: a GuestOS on MemoryDevices, no process, no socket."""

from __future__ import annotations

import pytest

from fakes.guest.blockdev import MemoryDevice
from fakes.guest.config import DiskRef, GuestConfig
from fakes.guest.offline import install_os
from fakes.guest.system import GuestOS, WallClock

MiB = 1 << 20
ACCOUNTS = {"root": "Guest1!linux"}
WIN_ACCOUNTS = {"Administrator": "Guest1!win"}


class MemoryMachine:
    """A VM's disks in memory and the guests booted on them, one at a time."""

    def __init__(self, config: GuestConfig, devices: list[MemoryDevice]):
        self.config = config
        self.devices = devices
        self.guests: list[GuestOS] = []

    def boot(self) -> GuestOS:
        guest = GuestOS(self.config, WallClock(), self.devices)
        guest.boot()
        self.guests.append(guest)
        return guest


@pytest.fixture
def machine(tmp_path):
    """machine(os_family="linux", sizes=(16 MiB, 32 MiB), **workload) -> MemoryMachine."""
    made: list[MemoryMachine] = []

    def make(os_family="linux", sizes=(16 * MiB, 32 * MiB), **workload):
        workload = {"churn_mb_s": 0, "app_tps": 0, **workload}
        name = f"vm-{len(made)}"
        config = GuestConfig(
            vm_id=f"4200-{len(made)}",
            vm_name=name,
            os_family=os_family,
            hostname=f"{name}.lab.local",
            ip_addresses=["10.10.0.50"],
            disks=[DiskRef(f"Hard disk {i + 1}", "", s) for i, s in enumerate(sizes)],
            run_dir=str(tmp_path / name),
            accounts=WIN_ACCOUNTS if os_family == "windows" else ACCOUNTS,
            workload=workload,
        )
        devices = [MemoryDevice(s) for s in sizes]
        install_os(devices, config, now=0.0)
        m = MemoryMachine(config, devices)
        made.append(m)
        return m

    yield make
    for m in made:
        for guest in m.guests:
            if guest.state != "off":
                guest.crash()
