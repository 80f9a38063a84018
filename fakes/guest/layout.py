"""Where things live on a guest's disks: the system area, the application's area, the rest.

    disk 0:     [ system area (1 MiB) | workload area ...................... ]
    last disk:  [ application area (superblocks + record ring) | ledger | workload area ]
    others:     [ workload area ............................................ ]

With a single disk the application area follows the system area on disk 0. The application
area is decided once, at install (provision), and recorded in the registry, so it stays put
when a disk grows; workload areas are recomputed from the current sizes at every boot. The
ledger's area (1 MiB, only on a VM whose workload has a ledger) follows the application's,
MiB-aligned; it is decided the first time the VM runs with a ledger and recorded too.
"""

from __future__ import annotations

from dataclasses import dataclass

from .app import AREA_HEADER, MAX_RING_SLOTS, MIN_RING_SLOTS, RECORD_SIZE
from .ledger import AREA_LENGTH as LEDGER_AREA_LENGTH

SYSTEM_AREA = 1 << 20  # the first MiB of disk 0 holds the registry
ALIGN = 1 << 20  # areas start on MiB boundaries


@dataclass(frozen=True)
class Area:
    disk: int
    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length

    def to_dict(self) -> dict:
        return {"disk": self.disk, "offset": self.offset, "length": self.length}

    @classmethod
    def from_dict(cls, data: dict | None) -> Area | None:
        if not data:
            return None
        return cls(int(data["disk"]), int(data["offset"]), int(data["length"]))


def plan_app_area(disk_sizes: list[int]) -> Area | None:
    """The application's area on the last disk: a ring of up to MAX_RING_SLOTS records, at most
    half the free space of that disk; None if the disk is too small for a useful ring."""
    disk = len(disk_sizes) - 1
    start = SYSTEM_AREA if disk == 0 else 0
    free = disk_sizes[disk] - start
    slots = min(MAX_RING_SLOTS, (free // 2 - AREA_HEADER) // RECORD_SIZE)
    if slots < MIN_RING_SLOTS:
        return None
    length = AREA_HEADER + slots * RECORD_SIZE
    return Area(disk, start, length)


def plan_ledger_area(disk_sizes: list[int], app_area: Area | None) -> Area | None:
    """The ledger's area: right after the application's (MiB-aligned), or at the start of the
    last disk's free space when there is no application; None if it does not fit."""
    if app_area is not None:
        disk, start = app_area.disk, -(-app_area.end // ALIGN) * ALIGN
    else:
        disk = len(disk_sizes) - 1
        start = SYSTEM_AREA if disk == 0 else 0
    if start + LEDGER_AREA_LENGTH > disk_sizes[disk]:
        return None
    return Area(disk, start, LEDGER_AREA_LENGTH)


def workload_areas(
    disk_sizes: list[int], app_area: Area | None, ledger_area: Area | None = None
) -> list[Area]:
    """Every byte the OS, the application and the ledger do not own, per disk, MiB-aligned.
    (Both areas sit at the start of their disk's free space, so the rest follows the later.)"""
    areas = []
    for disk, size in enumerate(disk_sizes):
        start = SYSTEM_AREA if disk == 0 else 0
        for owned in (app_area, ledger_area):
            if owned is not None and owned.disk == disk:
                start = max(start, owned.end)
        start = -(-start // ALIGN) * ALIGN
        if size > start:
            areas.append(Area(disk, start, size - start))
    return areas
