"""Where things live on a guest's disks: the system area, the application's area, the rest.

    disk 0:     [ system area (1 MiB) | workload area ...................... ]
    last disk:  [ application area (superblocks + record ring) | workload area ]
    others:     [ workload area ............................................ ]

With a single disk the application area follows the system area on disk 0. The application
area is decided once, at install (provision), and recorded in the registry, so it stays put
when a disk grows; workload areas are recomputed from the current sizes at every boot.
"""

from __future__ import annotations

from dataclasses import dataclass

from .app import AREA_HEADER, MAX_RING_SLOTS, MIN_RING_SLOTS, RECORD_SIZE

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


def workload_areas(disk_sizes: list[int], app_area: Area | None) -> list[Area]:
    """Every byte the OS and the application do not own, per disk, starting MiB-aligned."""
    areas = []
    for disk, size in enumerate(disk_sizes):
        start = SYSTEM_AREA if disk == 0 else 0
        if app_area is not None and app_area.disk == disk:
            start = max(start, app_area.end)
        start = -(-start // ALIGN) * ALIGN
        if size > start:
            areas.append(Area(disk, start, size - start))
    return areas
