"""`GuestAPI`: what the guest OS offers the drivers, services and lab programs it loads.

Each module gets its own `GuestAPI`, bound to its module name (`owner`), so `settings` are its
own. This is the whole surface a component inside a guest may use:

    vm_id, vm_name, hostname, os_family, ip_addresses     who this machine is
    network                       where it is plugged in: {} on-premises; in Azure {"vnet",
                                  "subnet", "isolated", ...} (isolated: no route to
                                  on-premises, as in a test failover)
    disks                         the guest's disks (filtered stacks): size/read/write/flush
    settings / save_settings(d)   this module's settings in the registry (travels with disk 0)
    install(drivers=[...], services=[...], settings={module: {...}})
                                  record modules in the registry and load them now
    uninstall(drivers=[...], services=[...]) -> reboot_required
    installed                     {"drivers": [...], "services": [...]} as recorded
    clock                         the lab clock (.time() lab epoch seconds, .now(), .sleep())
    run_dir, spill_dir            the guest's runtime directory; a directory of this module's
                                  own for spill files (not on the guest's disks)
    previous_shutdown_clean       False after a hard power-off (or a crash): drivers that keep
                                  state in memory know it was lost
    boot_count
    quiesce(timeout)              context manager: the application finishes its transaction,
                                  flushes and holds writes (and so does the write generator)
                                  until the block ends (the VSS analogue). Raises GuestError
                                  "not_supported" if the workload cannot be quiesced, "timeout"
                                  (at the end of the block) if writes were released early
                                  because the block outlasted `timeout` seconds.
    stopping                      a threading.Event set when the OS begins to shut down
    environment, cwd              for a program: what start_program passed
    read_file(path), write_file(path, data)
                                  the guest file system (what file transfers put there), e.g.
                                  an installer reading its configuration
    log                           a logger named after the module
"""

from __future__ import annotations

import logging
from pathlib import Path


class GuestAPI:
    def __init__(self, guest, owner: str, environment: dict | None = None, cwd: str | None = None):
        self._guest = guest
        self.owner = owner
        self.environment = dict(environment or {})
        self.cwd = cwd
        self.log = logging.getLogger(f"guest.{owner}")

    # -- identity -----------------------------------------------------------------------------
    @property
    def vm_id(self) -> str:
        return self._guest.config.vm_id

    @property
    def vm_name(self) -> str:
        return self._guest.config.vm_name

    @property
    def hostname(self) -> str:
        return self._guest.registry.hostname

    @property
    def os_family(self) -> str:
        return self._guest.config.os_family

    @property
    def ip_addresses(self) -> list[str]:
        return list(self._guest.config.ip_addresses)

    @property
    def network(self) -> dict:
        return dict(self._guest.config.network)

    # -- disks and registry -------------------------------------------------------------------
    @property
    def disks(self) -> list:
        return list(self._guest.disks)

    @property
    def settings(self) -> dict:
        return dict(self._guest.registry.settings.get(self.owner, {}))

    def save_settings(self, settings: dict) -> None:
        self._guest.save_settings(self.owner, settings)

    def install(self, drivers=(), services=(), settings: dict | None = None) -> None:
        self._guest.install(list(drivers), list(services), settings or {})

    def uninstall(self, drivers=(), services=()) -> bool:
        return self._guest.uninstall(list(drivers), list(services))

    @property
    def installed(self) -> dict:
        reg = self._guest.registry
        return {"drivers": list(reg.drivers), "services": list(reg.services)}

    # -- time, files, state -------------------------------------------------------------------
    @property
    def clock(self):
        return self._guest.clock

    @property
    def run_dir(self) -> Path:
        return Path(self._guest.config.run_dir)

    @property
    def spill_dir(self) -> Path:
        path = self.run_dir / "spill" / self.owner
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def previous_shutdown_clean(self) -> bool:
        return bool(self._guest.previous_shutdown_clean)

    @property
    def boot_count(self) -> int:
        return self._guest.registry.boot_count

    @property
    def stopping(self):
        return self._guest.stopping

    def quiesce(self, timeout: float = 10.0):
        return self._guest.quiesce(timeout)

    # -- the guest file system ----------------------------------------------------------------
    def read_file(self, guest_path: str) -> bytes:
        return self._guest.fs.get(guest_path)

    def write_file(self, guest_path: str, data: bytes) -> None:
        self._guest.fs.put(guest_path, data, True)

    def __repr__(self) -> str:
        return f"GuestAPI({self.vm_name!r}, owner={self.owner!r})"
