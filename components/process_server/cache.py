"""The process server's cache: differentials made durable before they are acknowledged.

Each differential is written to a temporary file, fsynced, renamed into place and the directory
fsynced: once `admit` returns, a crash of the process server loses nothing. The cache is
bounded: when a differential does not fit, `admit` refuses it and the server tells the agent to
slow down (back-pressure); nothing is dropped. Items leave the cache only through `remove`,
which the uploader calls after the cache storage account confirmed the upload.

Keys order a stream: `<vm>/<disk>/<first seq>-<last seq>`, zero-padded so that sorting the
file names of one disk gives its sequence order.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

_SUFFIX = ".diff"


@dataclass(frozen=True, order=True)
class CacheItem:
    vm: str
    disk: str
    first_seq: int
    last_seq: int
    size: int

    @property
    def key(self) -> str:
        return f"{self.vm}/{self.disk}/{self.first_seq:016d}-{self.last_seq:016d}"


class CacheFull(Exception):
    """The differential does not fit now; the agent should retry later."""


class DurableCache:
    def __init__(self, directory: str | os.PathLike, capacity_bytes: int):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.capacity = capacity_bytes
        self._lock = threading.Lock()
        self._items: dict[str, CacheItem] = {}
        self._used = 0
        self._load()

    def _load(self) -> None:
        for path in self.dir.rglob("*"):
            if path.is_file() and path.name.endswith(".tmp"):
                path.unlink()  # an admit that never completed was never acknowledged
        for path in self.dir.rglob(f"*{_SUFFIX}"):
            vm, disk = path.parent.parent.name, path.parent.name
            first, last = path.name[: -len(_SUFFIX)].split("-")
            item = CacheItem(vm, disk, int(first), int(last), path.stat().st_size)
            self._items[item.key] = item
            self._used += item.size

    def _path(self, item: CacheItem) -> Path:
        return self.dir / f"{item.key}{_SUFFIX}"

    # -- in ---------------------------------------------------------------------------------
    def admit(self, vm: str, disk: str, first_seq: int, last_seq: int, data: bytes) -> CacheItem:
        """Make a differential durable. Idempotent: the same range again is acknowledged."""
        for part in (vm, disk):
            if not part or "/" in part or part.startswith("."):
                raise ValueError(f"bad stream name {part!r}")
        item = CacheItem(vm, disk, first_seq, last_seq, len(data))
        with self._lock:
            if item.key in self._items:
                return self._items[item.key]
            if self._used + item.size > self.capacity:
                raise CacheFull(
                    f"cache full: {self._used} of {self.capacity} bytes used, "
                    f"{item.size} more needed"
                )
            self._used += item.size  # reserved now, so concurrent admits cannot overfill
        try:
            path = self._path(item)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except BaseException:
            with self._lock:
                self._used -= item.size
            raise
        with self._lock:
            self._items[item.key] = item
        return item

    # -- out --------------------------------------------------------------------------------
    def pending(self) -> list[CacheItem]:
        """Everything not yet uploaded, each disk's items in sequence order."""
        with self._lock:
            return sorted(self._items.values())

    def read(self, item: CacheItem) -> bytes:
        return self._path(item).read_bytes()

    def remove(self, item: CacheItem) -> None:
        with self._lock:
            if self._items.pop(item.key, None) is None:
                return
            self._used -= item.size
        self._path(item).unlink(missing_ok=True)

    # -- health -----------------------------------------------------------------------------
    @property
    def used_bytes(self) -> int:
        with self._lock:
            return self._used

    @property
    def free_bytes(self) -> int:
        return max(self.capacity - self.used_bytes, 0)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
