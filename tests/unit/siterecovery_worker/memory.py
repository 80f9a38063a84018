"""In-memory cache container and disks account for the worker's unit tests (no sockets).

They behave as the Azure backends do for what the engine relies on: listing by prefix in
name order, a delete of what is absent is fine, page writes are 512-aligned and inside the
blob, a snapshot is the blob's bytes at that moment.
"""

from __future__ import annotations

import itertools
import threading

from fakes.azure.siterecovery.worker import names


class MemoryCache:
    def __init__(self):
        self.blobs: dict[str, bytes] = {}
        self.deleted: list[str] = []
        self._lock = threading.Lock()

    def put(self, name: str, data: bytes) -> None:
        with self._lock:
            self.blobs[name] = bytes(data)

    def list_logs(self, prefix: str):
        with self._lock:
            items = sorted((n, len(d)) for n, d in self.blobs.items() if n.startswith(prefix))
        refs = [names.parse_log(n, s) for n, s in items]
        return sorted((r for r in refs if r), key=lambda r: (r.first, r.last, r.name))

    def read(self, name: str) -> bytes:
        with self._lock:
            return self.blobs[name]

    def exists(self, name: str) -> bool:
        return name in self.blobs

    def delete(self, name: str) -> None:
        with self._lock:
            if self.blobs.pop(name, None) is not None:
                self.deleted.append(name)


class MemorySeeds:
    def __init__(self):
        self.blobs: dict[str, bytearray] = {}
        self.snapshots: dict[tuple[str, str], bytes] = {}
        self.writes = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def create(self, blob: str, size: int) -> None:
        assert size % 512 == 0
        self.blobs[blob] = bytearray(size)

    def write(self, blob: str, offset: int, data) -> None:
        data = bytes(data)
        disk = self.blobs[blob]
        assert offset % 512 == 0 and len(data) % 512 == 0 and len(data) <= 4 * 2**20
        assert offset + len(data) <= len(disk)
        with self._lock:
            disk[offset : offset + len(data)] = data
            self.writes += 1

    def clear(self, blob: str, offset: int, length: int) -> None:
        self.write(blob, offset, bytes(length))

    def resize(self, blob: str, size: int) -> None:
        disk = self.blobs[blob]
        disk.extend(bytes(size - len(disk)))

    def snapshot(self, blob: str) -> str:
        with self._lock:
            snap = f"2027-01-01T00:00:{next(self._ids):02d}.0000000Z"
            self.snapshots[(blob, snap)] = bytes(self.blobs[blob])
        return snap

    def delete(self, blob: str) -> None:
        self.blobs.pop(blob, None)
        for key in [k for k in self.snapshots if k[0] == blob]:
            del self.snapshots[key]

    def delete_snapshot(self, blob: str, snapshot: str) -> None:
        self.snapshots.pop((blob, snapshot), None)
