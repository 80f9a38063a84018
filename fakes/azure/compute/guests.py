"""The guests of Azure VMs: how Compute drives `fakes.guest.host` on page-blob disks.

A running VM is a guest process (`python -m fakes.guest`), the same runtime as on-premises,
booted from its managed disks' page blobs (SAS URLs with read and write on those blobs), its
run directory `<state>/run/azure-vms/<vmId>/`, registered with the lab as
`azure-vm-<group>-<name>` so `drlab down` stops it (and it never collides with the VMware VM
of the same name). The guest is told its network (`GuestConfig.network`: VNet, subnet,
address, `isolated`). A guest still running after the ARM process restarted is re-adopted
(`attach`).

What the guest is (hostname, OS family) is read from its OS disk's registry, as an OS knows
itself; the accounts and workload are the caller's, else the topology's guest accounts for
that OS family and the workload of the topology VM with that hostname (the replicated VM
runs the same workload after failover).
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

BOOT_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 30.0


def load_backend():
    from fakes.guest import host

    return host


@dataclass
class GuestDefaults:
    """What the topology says about guests: accounts per OS family, workloads by hostname."""

    accounts: dict[str, dict[str, str]]  # os_family -> {user: password}
    workloads: dict[str, dict]  # hostname (lower) -> WorkloadSpec as a dict

    @classmethod
    def from_topology(cls, topology: dict) -> GuestDefaults:
        vcenter = topology.get("vcenter") or {}
        accounts = {
            family: {a["user"]: a["password"]}
            for family, a in (vcenter.get("guest_accounts") or {}).items()
        }
        workloads = {}
        for dc in vcenter.get("datacenters") or []:
            for vm in dc.get("vms") or []:
                workloads[vm["name"].lower()] = dict(vm.get("workload") or {})
        return cls(accounts, workloads)


def process_name(group: str, name: str) -> str:
    return "azure-vm-" + re.sub(r"[^a-z0-9._-]", "-", f"{group}-{name}".lower())


class AzureGuests:
    """Guest processes by VM key (group, name), all lower-case."""

    def __init__(self, state_dir: str | Path, backend=None):
        self.state_dir = Path(state_dir)
        self.backend = backend if backend is not None else load_backend()
        self.handles: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def run_dir(self, vm_uuid: str) -> Path:
        return self.state_dir / "run" / "azure-vms" / vm_uuid

    def disk_ref(self, label: str, url: str, size: int, ca_cert: str):
        return self.backend.DiskRef(label, "", size, kind="page_blob", url=url, ca_cert=ca_cert)

    def read_identity(self, os_disk) -> dict | None:
        """{hostname, os_family} from the OS disk's registry; None when it holds no OS."""
        from fakes.guest.blockdev import open_device
        from fakes.guest.registry import SystemAreaError, read_registry

        device = open_device(os_disk, readonly=True)
        try:
            registry = read_registry(device)
        except SystemAreaError:
            return None
        finally:
            device.close()
        return {"hostname": registry.hostname, "os_family": registry.os_family}

    def config(self, *, key, vm_uuid, vm_name, identity, disks, ips, network):
        return self.backend.GuestConfig(
            vm_id=vm_uuid,
            vm_name=vm_name,
            os_family=identity["os_family"],
            hostname=identity["hostname"],
            ip_addresses=list(ips),
            disks=disks,
            run_dir=str(self.run_dir(vm_uuid)),
            accounts=dict(identity.get("accounts") or {}),
            workload=dict(identity.get("workload") or {}),
            state_dir=str(self.state_dir),
            network=dict(network or {}),
            process_name=process_name(*key),
        )

    # -- power --------------------------------------------------------------------------------
    def attach(self, key, config):
        handle = self.backend.GuestHandle.attach(config)
        if handle is not None:
            with self._lock:
                self.handles[key] = handle
        return handle

    def handle(self, key, config=None):
        with self._lock:
            handle = self.handles.get(key)
        if handle is None and config is not None:
            handle = self.attach(key, config)
        return handle

    def boot(self, key, config, timeout: float = BOOT_TIMEOUT):
        """The running guest (re-adopted, or started now). Raises GuestError if it does not
        come up (e.g. "not_running": no operating system on the OS disk)."""
        handle = self.attach(key, config)
        if handle is not None:
            return handle
        handle = self.backend.start(config, timeout=timeout)
        with self._lock:
            self.handles[key] = handle
        return handle

    def shutdown(self, key, config=None, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Clean shutdown; a guest that does not stop in time is powered off."""
        handle = self.handle(key, config)
        if handle is None:
            return
        try:
            handle.shutdown(timeout)
        except self.backend.GuestError as exc:
            if exc.kind != "not_running":
                log.warning("clean shutdown of %s failed (%s): powering off", key, exc.message)
                handle.power_off()
        self.forget(key)

    def power_off(self, key, config=None) -> None:
        handle = self.handle(key, config)
        if handle is not None:
            handle.power_off()
        self.forget(key)

    def reboot(self, key, config, timeout: float = BOOT_TIMEOUT):
        handle = self.handle(key, config)
        if handle is None or not handle.running():
            return self.boot(key, config, timeout)
        handle.reboot(timeout)
        return handle

    def forget(self, key) -> None:
        with self._lock:
            self.handles.pop(key, None)

    def remove_run_dir(self, vm_uuid: str) -> None:
        shutil.rmtree(self.run_dir(vm_uuid), ignore_errors=True)

    # -- observation --------------------------------------------------------------------------
    def status(self, key) -> dict | None:
        """The running guest's status, or None when it does not run."""
        handle = self.handle(key)
        if handle is None:
            return None
        try:
            status = handle.status()
        except Exception as exc:  # a guest that died mid-call is just not running
            log.debug("guest status of %s: %s", key, exc)
            return None
        return status if status.get("running") else None

    def pid(self, key) -> int | None:
        handle = self.handle(key)
        return handle.pid if handle is not None and handle.running() else None

    def running(self) -> dict[tuple[str, str], int]:
        with self._lock:
            items = list(self.handles.items())
        return {k: h.pid for k, h in items if h.running()}
