"""The write generator: a VM's background churn, deterministic and paced in real time.

`WorkloadSettings` is the topology's WorkloadSpec as the guest receives it (a dict). The seed
is the topology's `seed`, or derived from the VM name; each boot derives its own stream from
(seed, boot count), so two boots do not repeat each other and the same (seed, boot) always
writes the same bytes to the same places.

`WriteGenerator` plans writes of `io_size_kb` on the disks' workload areas (see `layout.py`):
an area is picked in proportion to its size, then with probability `hot_share` a block in its
hot region (its first `hot_fraction`), otherwise a block in the cold rest. Data is half random,
half a repeated header, so it compresses about 2:1, like ordinary data.

`Workload` issues them at `churn_mb_s` (1 MB = 10^6 bytes) per wall second: it sleeps until
the next write is due and issues what is due in one batch, so low churn costs almost nothing
and churn 0 starts no thread. If the disks cannot keep up it falls behind rather than bursting.
Not emulated: reads, sequential streams, time-of-day patterns.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import random
import struct
import threading
import time
from dataclasses import dataclass, fields

from .layout import Area
from .ledger import LedgerSettings

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<4sQI")  # magic, write number, disk
MAX_BATCH = 256


@dataclass(frozen=True)
class WorkloadSettings:
    churn_mb_s: float = 0.05
    io_size_kb: int = 8
    hot_fraction: float = 0.1
    hot_share: float = 0.8
    app: bool = True
    app_tps: float = 5.0
    quiesce: bool = False
    seed: int | None = None
    ledger: dict | None = None  # {peer, role, tps}: see ledger.LedgerSettings

    @classmethod
    def from_dict(cls, data: dict | None) -> WorkloadSettings:
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown workload settings: {', '.join(sorted(unknown))}")
        settings = cls(**data)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not 0 <= self.churn_mb_s <= 200:
            raise ValueError("churn_mb_s must be between 0 and 200")
        if self.io_size_kb < 4 or self.io_size_kb % 4 or self.io_size_kb > 4096:
            raise ValueError("io_size_kb must be a multiple of 4 between 4 and 4096")
        if not 0 < self.hot_fraction <= 1 or not 0 <= self.hot_share <= 1:
            raise ValueError("hot_fraction must be in (0, 1] and hot_share in [0, 1]")
        if not 0 <= self.app_tps <= 1000:
            raise ValueError("app_tps must be between 0 and 1000")
        LedgerSettings.from_dict(self.ledger)

    @property
    def ledger_settings(self) -> LedgerSettings | None:
        return LedgerSettings.from_dict(self.ledger)

    @property
    def io_size(self) -> int:
        return self.io_size_kb * 1024

    def base_seed(self, vm_name: str) -> int:
        if self.seed is not None:
            return int(self.seed) & (2**64 - 1)
        return derive_seed(vm_name.encode())


def derive_seed(*parts: bytes) -> int:
    digest = hashlib.sha256(b"\0".join(parts)).digest()
    return int.from_bytes(digest[:8], "little")


def boot_seed(base_seed: int, boot_count: int) -> int:
    return derive_seed(base_seed.to_bytes(8, "little"), boot_count.to_bytes(8, "little"))


@dataclass(frozen=True)
class PlannedWrite:
    disk: int
    offset: int
    data: bytes
    hot: bool


class WriteGenerator:
    """A deterministic stream of writes over the workload areas."""

    def __init__(
        self,
        seed: int,
        areas: list[Area],
        io_size: int,
        hot_fraction: float,
        hot_share: float,
    ):
        self._rng = random.Random(seed)
        self.io_size = io_size
        self.hot_fraction = hot_fraction
        self.hot_share = hot_share
        self.count = 0
        self.set_areas(areas)

    def set_areas(self, areas: list[Area]) -> None:
        """Use these areas from now on (a disk grew)."""
        self.areas = [a for a in areas if a.length >= self.io_size]
        self._blocks = [a.length // self.io_size for a in self.areas]
        self._hot = [max(1, int(b * self.hot_fraction)) for b in self._blocks]
        self._cumulative, total = [], 0
        for blocks in self._blocks:
            total += blocks
            self._cumulative.append(total)

    def hot_region(self, index: int) -> tuple[int, int]:
        """(start, end) byte offsets of area `index`'s hot region."""
        area = self.areas[index]
        return area.offset, area.offset + self._hot[index] * self.io_size

    def next(self) -> PlannedWrite | None:
        if not self.areas:
            return None
        rng = self._rng
        index = bisect.bisect_right(self._cumulative, rng.randrange(self._cumulative[-1]))
        blocks, hot = self._blocks[index], self._hot[index]
        if hot >= blocks or rng.random() < self.hot_share:
            block, is_hot = rng.randrange(hot), True
        else:
            block, is_hot = hot + rng.randrange(blocks - hot), False
        area = self.areas[index]
        self.count += 1
        header = _HEADER.pack(b"DRLW", self.count, area.disk)
        half = self.io_size // 2
        data = header + rng.randbytes(half - len(header)) + header * (half // len(header))
        return PlannedWrite(area.disk, area.offset + block * self.io_size, data, is_hot)


class Workload:
    """Issues a generator's writes to the guest's disks at a churn rate, until stopped."""

    def __init__(self, generator: WriteGenerator, disks: list, churn_mb_s: float):
        self.generator = generator
        self.disks = disks
        self.rate = churn_mb_s * 1_000_000
        self.writes = 0
        self.bytes_written = 0
        self.failed: str | None = None
        self._io_lock = threading.Lock()
        self._writable = threading.Event()
        self._writable.set()

    def run(self, stop: threading.Event) -> None:
        if self.rate <= 0 or not self.generator.areas:
            return
        interval = self.generator.io_size / self.rate
        due = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if due > now:
                if stop.wait(due - now):
                    break
                continue
            if not self._writable.is_set():
                self._writable.wait(0.2)
                due = max(due, time.monotonic() - 1.0)
                continue
            batch = min(MAX_BATCH, int((now - due) / interval) + 1)
            try:
                issued = self._issue(batch, stop)
            except Exception as exc:
                log.exception("workload: write failed; stopping")
                self.failed = str(exc)
                return
            # Fall behind rather than burst when the disks are slower than the churn.
            due = max(due + issued * interval, time.monotonic() - 1.0)

    def _issue(self, batch: int, stop: threading.Event) -> int:
        issued = 0
        for _ in range(batch):
            with self._io_lock:
                if not self._writable.is_set() or stop.is_set():
                    break
                planned = self.generator.next()
                self.disks[planned.disk].write(planned.offset, planned.data)
            issued += 1
            self.writes += 1
            self.bytes_written += len(planned.data)
        return max(issued, 1)

    def hold(self) -> None:
        """Hold new writes (quiesce); returns once no write is in flight."""
        self._writable.clear()
        with self._io_lock:
            pass

    def release(self) -> None:
        self._writable.set()

    def status(self) -> dict:
        return {
            "churn_mb_s": self.rate / 1_000_000,
            "writes": self.writes,
            "bytes_written": self.bytes_written,
            "held": not self._writable.is_set(),
            "failed": self.failed,
        }
