"""Seed disks with a local mirror: page writes are gathered and sent to Azurite in large runs.

Applying replication logs write by write costs one Put Page request per guest write, and
Azurite takes a few hundred small page writes a second (measured: ~240/s from one client,
~370/s from eight), while three VMs at 2 MB/s of 8 KiB writes make ~770/s. So the worker
keeps a mirror of each seed disk (a sparse file in its own directory, on the Azure side) and
applies records there, recording which ranges changed. The page blob only needs to be exact
when it is snapshotted (a recovery point is a snapshot at a tag): `snapshot` first flushes the
changed ranges, merged into runs of at most 4 MiB — neighbouring ranges closer than
`GAP_BYTES` travel as one request with the unchanged bytes between them read from the
mirror, since one request costs about as much as that many bytes. Changes are also flushed
every `FLUSH_SECONDS` and when more than `DIRTY_LIMIT` bytes are waiting.

A crash loses nothing: the mirror is written before the engine records a log as applied (the
operating system keeps what a killed process wrote), and a worker that did not stop cleanly
sends every allocated range of its mirrors again at its next start.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

MAX_RUN = 4 << 20  # Put Page takes at most 4 MiB
GAP_BYTES = 256 << 10  # about one request's cost in bytes (measured: ~4 ms ≈ 200 KiB)
FLUSH_SECONDS = 15.0
DIRTY_LIMIT = 64 << 20
CLEAN_MARKER = "clean-stop"


def merge_runs(ranges: list[tuple[int, int]], gap: int = GAP_BYTES, limit: int = MAX_RUN):
    """(start, end) ranges -> runs to send: merged when closer than `gap`, split at `limit`."""
    runs: list[list[int]] = []
    for start, end in sorted(ranges):
        near = runs and start - runs[-1][1] <= gap and end - runs[-1][0] <= limit
        overlapping = runs and start <= runs[-1][1]  # a full run still takes what overlaps it
        if near or overlapping:
            runs[-1][1] = max(runs[-1][1], end)
        else:
            runs.append([start, end])
    out = []
    for start, end in runs:
        while end - start > limit:
            out.append((start, start + limit))
            start += limit
        out.append((start, end))
    return out


class _Mirror:
    def __init__(self, path: Path, size: int):
        self.path = path
        self.lock = threading.Lock()
        new = not path.exists()
        # One flush of a disk at a time: a snapshot's flush must not pass one still sending
        # (slow or failing: its ranges would be missing from the snapshot).
        self.flush_lock = threading.Lock()
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if new or os.fstat(self.fd).st_size < size:
            os.ftruncate(self.fd, size)
        self.dirty: list[tuple[int, int]] = []
        self.dirty_bytes = 0

    def write(self, offset: int, data) -> None:
        with self.lock:
            os.pwrite(self.fd, data, offset)
            self.dirty.append((offset, offset + len(data)))
            self.dirty_bytes += len(data)

    def take_dirty(self) -> list[tuple[int, int]]:
        with self.lock:
            dirty, self.dirty, self.dirty_bytes = self.dirty, [], 0
            return dirty

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def allocated(self) -> list[tuple[int, int]]:
        ranges, pos = [], 0
        size = os.fstat(self.fd).st_size
        while pos < size:
            try:
                start = os.lseek(self.fd, pos, os.SEEK_DATA)
            except OSError:
                break
            end = os.lseek(self.fd, start, os.SEEK_HOLE)
            ranges.append((start, end))
            pos = end
        return ranges

    def close(self) -> None:
        os.close(self.fd)


class MirroredSeedDisks:
    """The `SeedDisks` backend the engine writes to, in front of the Azure page blobs."""

    def __init__(self, backend, directory: Path, faults: Callable[[str], None] = lambda op: None):
        self.backend = backend
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.faults = faults
        self._mirrors: dict[str, _Mirror] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="seed-flush")
        self._last_flush = time.monotonic()
        self.flushed_bytes = 0
        self.flush_requests = 0
        marker = self.dir / CLEAN_MARKER
        self._resend_all = any(self.dir.glob("*.mirror")) and not marker.exists()
        marker.unlink(missing_ok=True)

    def __getattr__(self, name):  # reads (verify, sizes, page ranges) go to the blobs
        return getattr(self.backend, name)

    def _mirror(self, blob: str, size: int | None = None) -> _Mirror:
        with self._lock:
            mirror = self._mirrors.get(blob)
            if mirror is None:
                path = self.dir / f"{blob}.mirror"
                exists = path.exists()
                if size is None:
                    size = self.backend.size(blob)
                mirror = self._mirrors[blob] = _Mirror(path, size)
                if not exists:
                    self._fill_from_blob(blob, mirror)
                elif self._resend_all:
                    # The worker stopped without flushing: resend what the mirror holds.
                    mirror.dirty.extend(mirror.allocated())
            return mirror

    def _fill_from_blob(self, blob: str, mirror: _Mirror) -> None:
        """A seed disk that predates its mirror: copy what the blob holds."""
        try:
            ranges = self.backend.page_ranges(blob)
        except Exception:  # a blob just created holds nothing
            return
        for start, end in ranges:
            pos = start
            while pos < end:
                length = min(MAX_RUN, end - pos)
                os.pwrite(mirror.fd, self.backend.read(blob, pos, length), pos)
                pos += length

    # -- the engine's interface -------------------------------------------------------------
    def create(self, blob: str, size: int) -> None:
        self.backend.create(blob, size)
        self._drop(blob)
        (self.dir / f"{blob}.mirror").unlink(missing_ok=True)
        self._mirror(blob, size)

    def write(self, blob: str, offset: int, data) -> None:
        mirror = self._mirror(blob)
        mirror.write(offset, data)
        if mirror.dirty_bytes > DIRTY_LIMIT:
            self.flush(blob)

    def clear(self, blob: str, offset: int, length: int) -> None:
        mirror = self._mirror(blob)
        self.flush(blob)
        with mirror.lock:
            os.pwrite(mirror.fd, bytes(length), offset)
        self.backend.clear(blob, offset, length)

    def resize(self, blob: str, size: int) -> None:
        self.flush(blob)
        self.backend.resize(blob, size)
        mirror = self._mirror(blob)
        with mirror.lock:
            os.ftruncate(mirror.fd, size)

    def snapshot(self, blob: str) -> str:
        self.flush(blob)  # a recovery point must hold every write before its tag
        return self.backend.snapshot(blob)

    def delete(self, blob: str) -> None:
        self._drop(blob)
        (self.dir / f"{blob}.mirror").unlink(missing_ok=True)
        self.backend.delete(blob)

    def delete_snapshot(self, blob: str, snapshot: str) -> None:
        self.backend.delete_snapshot(blob, snapshot)

    # -- the resync's view of a seed disk ---------------------------------------------------
    def written(self, blob: str) -> tuple[list[tuple[int, int]], Callable[[int, int], bytes]]:
        """(offset, length) of the ranges ever written to a seed disk — the lab's own record
        (the mirror's allocated extents), not a storage diff — and a reader of its bytes."""
        mirror = self._mirror(blob)
        return [(s, e - s) for s, e in mirror.allocated()], mirror.read

    # -- flushing ---------------------------------------------------------------------------
    def flush(self, blob: str) -> int:
        """Send the mirror's changed ranges of one seed disk; returns bytes sent."""
        mirror = self._mirror(blob)
        with mirror.flush_lock:
            dirty = mirror.take_dirty()
            if not dirty:
                return 0
            runs = merge_runs(dirty)
            futures = [self._pool.submit(self._send, blob, mirror, s, e) for s, e in runs]
            try:
                for f in futures:
                    f.result()
            except BaseException:
                for f in futures:  # all of them done before the lock goes: no stray write
                    f.cancel()
                concurrent.futures.wait(futures)
                with mirror.lock:  # nothing is forgotten: what did not go is still dirty
                    mirror.dirty.extend(runs)
                    mirror.dirty_bytes += sum(e - s for s, e in runs)
                raise
        sent = sum(e - s for s, e in runs)
        self.flushed_bytes += sent
        self.flush_requests += len(runs)
        return sent

    def _send(self, blob: str, mirror: _Mirror, start: int, end: int) -> None:
        self.faults("flush")
        self.backend.write(blob, start, mirror.read(start, end - start))

    def flush_due(self) -> None:
        """Flush every mirror if it has been a while (called by the worker's loop)."""
        if time.monotonic() - self._last_flush < FLUSH_SECONDS:
            return
        self._last_flush = time.monotonic()
        self.flush_all()

    def flush_all(self) -> None:
        with self._lock:
            blobs = list(self._mirrors)
        for blob in blobs:
            try:
                self.flush(blob)
            except Exception as exc:  # storage away: the next round sends it
                log.warning("flushing %s failed (will retry): %s", blob, exc)

    def _drop(self, blob: str) -> None:
        with self._lock:
            mirror = self._mirrors.pop(blob, None)
        if mirror is not None:
            mirror.close()

    def close(self) -> None:
        """A clean stop: flush everything, so the next start need not resend."""
        self.flush_all()
        if all(not m.dirty for m in self._mirrors.values()):
            (self.dir / CLEAN_MARKER).write_text("ok")
        self._pool.shutdown(wait=False)
