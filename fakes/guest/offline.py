"""The guest's disks while no guest runs: installing the OS, and checking the application.

`install_os` is what provisioning a VM does the first time: it writes the registry into disk
0's system area and formats the journaled application's area; run again, it changes nothing.
`verify_disks` reads the disks (read-only) and checks the registry, the application's
journal and, on a VM with one, the ledger; it is what `drlab vm verify` and failover checks
run. On the disks of a running guest it retries when the journal moved under it, so a live
check is not a false alarm. `verify_ledger` checks a ledger pair's invariant on two VMs' disks
(see `ledger.py`); it means something only on disks taken at one instant (a consistency
group's recovery point, copies made while both guests were held), since two live VMs read one
after the other are independent points.
"""

from __future__ import annotations

import logging

from . import app as journal
from . import ledger
from .blockdev import open_device
from .config import DiskRef, GuestConfig
from .layout import Area, plan_app_area, plan_ledger_area
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
    spec = settings.ledger_settings
    if spec is not None and ensure_ledger_area(devices, registry, spec, config.vm_name) is None:
        log.warning("%s: disks too small for the ledger", config.vm_name)
    return registry


def ensure_ledger_area(
    devices: list, registry: Registry, spec: ledger.LedgerSettings, vm_name: str
) -> Area | None:
    """The ledger's area: planned, formatted for this VM's side of the pair, and recorded in the
    registry the first time the VM has a ledger (at provision, or at the first boot with one
    when it was provisioned without); None when the disks have no room for it."""
    area = Area.from_dict(registry.ledger_area)
    if area is not None:
        return area
    area = plan_ledger_area([d.size for d in devices], Area.from_dict(registry.app_area))
    if area is None:
        return None
    # formatted before it is recorded: a crash in between only plans the same area again
    ledger.format_area(devices[area.disk], area.offset, spec.role, vm_name, spec.peer)
    registry.ledger_area = area.to_dict()
    write_registry(devices[0], registry)
    log.info("%s: ledger (%s of %s) on disk %d", vm_name, spec.role, spec.peer, area.disk)
    return area


def verify_disks(disks: list[DiskRef]) -> dict:
    """Check the registry and the journaled application's data on a guest's disks.

    {"ok", "committed_seq", "committed_txn", "records_checked", "generation", "ring_slots",
     "errors": [...], "system_area": {...}, "app_area": {...} | None,
     "ledger": None | {"ok", "role", "vm", "peer", "transfers", "total", "acknowledged",
                       "records_checked", "errors", ...}}
    A ledger that fails its check fails the whole answer (its errors start with "ledger:").
    """
    result: dict = {
        "ok": False,
        "committed_seq": 0,
        "committed_txn": 0,
        "records_checked": 0,
        "errors": [],
        "system_area": {"ok": False},
        "app_area": None,
        "ledger": None,
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
        book = _ledger_check(devices, registry)
        result["ledger"] = book.to_dict() if book else None
        ledger_errors = [f"ledger: {e}" for e in book.errors] if book else []
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
        result["errors"] = result["errors"] + ledger_errors
        result["ok"] = result["ok"] and not ledger_errors
        return result
    finally:
        for device in devices:
            device.close()


def verify_ledger(sender_disks: list[DiskRef], receiver_disks: list[DiskRef]) -> dict:
    """The ledger pair's invariant on a sender's and a receiver's disks (`ledger.check_pair`):

    {"ok", "sent", "received", "sent_total", "received_total", "in_flight",
     "in_flight_amount", "violations": [first transfer ids received but not sent],
     "errors": [...], "sender": {...}, "receiver": {...}}
    """
    opened: list = []
    try:
        sides = []
        for disks in (sender_disks, receiver_disks):
            devices = [open_device(d, readonly=True) for d in disks]
            opened.extend(devices)
            sides.append(devices)
        return verify_ledger_devices(*sides)
    finally:
        for device in opened:
            device.close()


def verify_ledger_devices(sender: list, receiver: list) -> dict:
    """`verify_ledger` on open block devices (in-memory disks in tests)."""
    books = []
    for side, devices in (("sender", sender), ("receiver", receiver)):
        try:
            book = _ledger_check(devices, read_registry(devices[0])) if devices else None
        except SystemAreaError as exc:
            book = ledger.LedgerCheck(False, errors=[str(exc)])
        books.append(book or ledger.LedgerCheck(False, errors=[f"the {side} has no ledger"]))
    return ledger.check_pair(*books)


def _ledger_check(devices: list, registry: Registry) -> ledger.LedgerCheck | None:
    area = Area.from_dict(registry.ledger_area)
    if area is None:
        return None
    if area.disk >= len(devices) or area.end > devices[area.disk].size:
        return ledger.LedgerCheck(
            False, errors=[f"the ledger's disk {area.disk} is missing or short"]
        )
    device = devices[area.disk]
    book = ledger.check(device, area.offset)
    for _ in range(LIVE_RETRIES):  # a running guest's book moved under the check
        if book.ok:
            break
        sb, _ = ledger.read_superblock(device, area.offset)
        if sb is None or sb.generation == book.generation:
            break
        book = ledger.check(device, area.offset)
    return book


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
