"""The guest's disks while no guest runs: installing the OS, and checking the application.

`install_os` is what provisioning a VM does the first time: it writes the registry into disk
0's system area and formats the journaled application's area; run again, it changes nothing.
`verify_disks` reads the disks (read-only) and checks the registry and the application's
journal; it is what `drlab vm verify` and failover checks run. On the disks of a running
guest it retries when the journal moved under it, so a live check is not a false alarm.
"""

from __future__ import annotations

import logging

from . import app as journal
from .blockdev import open_device
from .config import DiskRef, GuestConfig
from .layout import Area, plan_app_area
from .registry import Registry, SystemAreaError, read_registry, write_registry
from .workload import WorkloadSettings

log = logging.getLogger(__name__)

LIVE_RETRIES = 3


def install_os(devices: list, config: GuestConfig, now: float) -> Registry:
    """Write the system area and format the application, unless already done (idempotent)."""
    settings = WorkloadSettings.from_dict(config.workload)
    try:
        registry = read_registry(devices[0])
    except SystemAreaError:
        area = plan_app_area([d.size for d in devices]) if settings.app else None
        if settings.app and area is None:
            log.warning("%s: disks too small for the journaled application", config.vm_name)
        registry = Registry(
            hostname=config.hostname,
            os_family=config.os_family,
            installed_vm_id=config.vm_id,
            app_area=area.to_dict() if area else None,
            installed_at=now,
        )
        write_registry(devices[0], registry)
        log.info("%s: operating system installed on disk 0", config.vm_name)
    area = Area.from_dict(registry.app_area)
    if area is not None and not journal.is_formatted(devices[area.disk], area.offset):
        slots = (area.length - journal.AREA_HEADER) // journal.RECORD_SIZE
        journal.format_area(
            devices[area.disk], area.offset, slots, settings.base_seed(config.vm_name)
        )
    return registry


def verify_disks(disks: list[DiskRef]) -> dict:
    """Check the registry and the journaled application's data on a guest's disks.

    {"ok", "committed_seq", "committed_txn", "records_checked", "generation", "ring_slots",
     "errors": [...], "system_area": {...}, "app_area": {...} | None}
    """
    result: dict = {
        "ok": False,
        "committed_seq": 0,
        "committed_txn": 0,
        "records_checked": 0,
        "errors": [],
        "system_area": {"ok": False},
        "app_area": None,
    }
    if not disks:
        result["errors"].append("no disks")
        return result
    devices = []
    try:
        for disk in disks:
            devices.append(open_device(disk, readonly=True))
        try:
            registry = read_registry(devices[0])
        except SystemAreaError as exc:
            result["errors"].append(str(exc))
            return result
        result["system_area"] = {
            "ok": True,
            "hostname": registry.hostname,
            "state": registry.state,
            "boot_count": registry.boot_count,
            "drivers": registry.drivers,
            "services": registry.services,
            "generation": registry.generation,
        }
        area = Area.from_dict(registry.app_area)
        if area is None:
            result["errors"].append("no journaled application on these disks")
            return result
        result["app_area"] = area.to_dict()
        if area.disk >= len(devices) or area.end > devices[area.disk].size:
            result["errors"].append(f"the application's disk {area.disk} is missing or short")
            return result
        check = _check_live(devices[area.disk], area.offset)
        result.update(check.to_dict())
        return result
    finally:
        for device in devices:
            device.close()


def _check_live(device, offset: int) -> journal.CheckResult:
    check = journal.check(device, offset)
    for _ in range(LIVE_RETRIES):
        if check.ok:
            break
        sb, _ = journal.read_superblock(device, offset)
        if sb is None or sb.generation == check.generation:
            break  # nothing moved: the failure is real
        check = journal.check(device, offset)
    return check
