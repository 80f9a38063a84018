"""The guests of powered-on VMs: how the fake ESXi drives `fakes.guest.host`.

One guest process per powered-on VM, started with the VM's disks (the sparse flat files), its
identity, guest accounts and workload; its run directory is `<state>/run/guests/<vm name>/`.
A guest still running after the vCenter process restarted is re-adopted (`attach`). Guest
errors become vSphere faults here (`fault_of`).

A VM created through the API has blank disks: it is never provisioned, so powering it on
boots no OS (the guest exits at once) and the VM shows powered on with tools not running, as
an empty VM does on ESXi, until something writes an OS onto its disks (e.g. failback).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from . import vm_devices
from .errors import (
    FileAlreadyExists,
    FileNotFound,
    GuestOperationsUnavailable,
    InvalidArgument,
    InvalidGuestLogin,
    NotSupported,
    SystemError_,
    VimFault,
)

log = logging.getLogger(__name__)

BOOT_SECONDS = 60.0
GUEST_KEYS = ("running", "tools", "hostname", "ip_addresses")


def load_backend():
    from fakes.guest import host

    return host


def fault_of(error, path: str | None = None) -> VimFault:
    """A GuestError as the vSphere fault a real ESXi would answer."""
    kind, message = getattr(error, "kind", "bad_request"), getattr(error, "message", str(error))
    if kind == "invalid_login":
        return InvalidGuestLogin()
    if kind in ("file_not_found", "program_not_found"):
        return FileNotFound(path or message)
    if kind == "file_exists":
        return FileAlreadyExists(path or message)
    if kind in ("not_running", "tools_unavailable"):
        return GuestOperationsUnavailable()
    if kind == "bad_request":
        return InvalidArgument(message=f"A specified parameter was not correct: {message}")
    if kind in ("not_supported", "not_implemented"):
        return NotSupported(message)
    return SystemError_(f"guest: {message}")


class GuestFleet:
    """Guest processes by VM moref id."""

    def __init__(self, state_dir: Path, registry, backend=None):
        self.state_dir = Path(state_dir)
        self.registry = registry
        self.backend = backend if backend is not None else load_backend()
        self.handles: dict[str, object] = {}
        self._lock = threading.Lock()

    def run_dir(self, vm) -> Path:
        return self.state_dir / "run" / "guests" / vm.name

    def config(self, vm):
        """The guest's configuration from the VM as it is now (call under the registry lock)."""
        b = self.backend
        refs = []
        for disk in vm.disks():
            _descriptor, flat = vm.disk_files(disk)
            refs.append(b.DiskRef(disk.deviceInfo.label, str(flat), vm_devices.disk_size(disk)))
        account = vm.guest_account or {}
        accounts = {account["user"]: account["password"]} if account.get("user") else {}
        return b.GuestConfig(
            vm_id=vm.instance_uuid,
            vm_name=vm.name,
            os_family=vm.os_family,
            hostname=vm.hostname,
            ip_addresses=vm.ip_addresses(),
            disks=refs,
            run_dir=str(self.run_dir(vm)),
            accounts=accounts,
            workload=dict(vm.workload or {}),
            state_dir=str(self.state_dir),
        )

    def handle(self, vm):
        with self._lock:
            return self.handles.get(vm.moid)

    # -- power --------------------------------------------------------------------------------
    def start(self, vm, progress=None) -> dict | None:
        """Boot the VM's guest; its first status, or None when there is no OS to boot."""
        with self.registry.lock:
            config = self.config(vm)
            seeded = vm.seeded
        b = self.backend
        try:
            if seeded:
                b.provision(config)  # first boot installs the OS; later ones change nothing
            if progress:
                progress(30)
            handle = b.start(config, timeout=BOOT_SECONDS)
        except b.GuestError as exc:
            if not seeded and exc.kind == "not_running":
                log.info("%s powered on without an operating system: %s", vm.name, exc.message)
                return None
            raise fault_of(exc) from None
        with self._lock:
            self.handles[vm.moid] = handle
        if progress:
            progress(90)
        return self._status(handle)

    def attach(self, vm) -> dict | None:
        """Re-adopt the VM's guest if it still runs; its status, or None."""
        with self.registry.lock:
            config = self.config(vm)
        handle = self.backend.GuestHandle.attach(config)
        if handle is None:
            return None
        with self._lock:
            self.handles[vm.moid] = handle
        return self._status(handle)

    def power_off(self, vm) -> None:
        """Hard power-off: the guest process is killed, nothing flushed."""
        with self._lock:
            handle = self.handles.pop(vm.moid, None)
        if handle is None:
            with self.registry.lock:
                config = self.config(vm)
            handle = self.backend.GuestHandle.attach(config)
        if handle is not None:
            handle.power_off()

    def shutdown(self, vm, timeout: float) -> bool:
        """Clean shutdown; True once the guest is gone."""
        handle = self.handle(vm)
        if handle is None:
            return True
        try:
            handle.shutdown(timeout)
        except self.backend.GuestError as exc:
            if exc.kind != "not_running":
                log.warning("shutdown of %s: %s", vm.name, exc.message)
                return not handle.running()
        with self._lock:
            self.handles.pop(vm.moid, None)
        return True

    def reboot(self, vm, timeout: float) -> dict | None:
        handle = self.handle(vm)
        if handle is None:
            return None
        try:
            handle.reboot(timeout)
        except self.backend.GuestError as exc:
            log.warning("reboot of %s: %s", vm.name, exc.message)
        return self._status(handle)

    def disk_resized(self, vm, index: int, size: int) -> None:
        handle = self.handle(vm)
        if handle is None:
            return
        try:
            handle.disk_resized(index, size)
        except self.backend.GuestError as exc:
            log.warning("telling %s that disk %d grew: %s", vm.name, index, exc.message)

    def forget(self, vm) -> None:
        with self._lock:
            self.handles.pop(vm.moid, None)

    # -- observation --------------------------------------------------------------------------
    def status(self, vm) -> dict | None:
        handle = self.handle(vm)
        return self._status(handle) if handle is not None else None

    def _status(self, handle) -> dict | None:
        """What of the guest's status the VM shows (not the heartbeat: it changes every read)."""
        try:
            status = handle.status()
        except Exception as exc:  # a guest that died mid-call is just not running
            log.debug("guest status: %s", exc)
            return None
        if not status.get("running"):
            return None
        view = {k: status.get(k) for k in GUEST_KEYS}
        view["ip_addresses"] = list(view["ip_addresses"] or [])
        return view

    def verify(self, vm) -> dict:
        """Offline/live check of the application's data on the VM's disks."""
        with self.registry.lock:
            config = self.config(vm)
        return self.backend.verify_disks(config.disks)

    def running_pids(self) -> dict[str, int]:
        with self._lock:
            return {moid: h.pid for moid, h in self.handles.items() if h.running()}
