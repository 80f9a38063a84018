"""Records to page writes: coalescing a segment of a log into few, large Put Page calls.

A segment is the records between two tags; within it, only the final content of each byte
matters (a later record wins over an earlier one at the same offset), so its records are
merged into disjoint extents, split at the Put Page limit (4 MiB). Disjoint extents can be
written in any order and in parallel; the next tag's snapshot waits for all of them.

No I/O here; `PageWriter` calls a `SeedDisks` backend (Azure or in-memory).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, wait

MAX_PAGE_WRITE = 4 * 2**20  # the Put Page limit
Extent = tuple[int, bytes | bytearray | memoryview]


def _sorted_disjoint(records) -> bool:
    end = -1
    for r in records:
        if r.offset < end:
            return False
        end = r.offset + len(r.data)
    return True


def _split(offset: int, data, limit: int) -> Iterable[Extent]:
    view = memoryview(data)
    for start in range(0, len(view), limit):
        yield offset + start, view[start : start + limit]


def coalesce(records, limit: int = MAX_PAGE_WRITE) -> list[Extent]:
    """Disjoint (offset, data) extents, each at most `limit` bytes, with the content the
    records leave behind when applied in order."""
    records = list(records)
    if not records:
        return []
    if _sorted_disjoint(records):
        # The common case (initial replication extents, sequential writes): group adjacent
        # records into runs, copying only where a run has several pieces.
        runs: list[tuple[int, list]] = []
        run_end = -1
        for r in records:
            if r.offset == run_end and sum(len(p) for p in runs[-1][1]) < limit:
                runs[-1][1].append(r.data)
            else:
                runs.append((r.offset, [r.data]))
            run_end = r.offset + len(r.data)
        out: list[Extent] = []
        for offset, pieces in runs:
            data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
            out.extend(_split(offset, data, limit))
        return out
    overlay = Overlay()
    for r in records:
        overlay.add(r.offset, r.data)
    out = []
    for offset, data in overlay.extents():
        out.extend(_split(offset, data, limit))
    return out


class Overlay:
    """Byte runs keyed by offset, disjoint and not touching; a later write wins."""

    def __init__(self):
        self._starts: list[int] = []
        self._runs: dict[int, bytearray] = {}

    def add(self, offset: int, data) -> None:
        end = offset + len(data)
        starts = self._starts
        lo = bisect.bisect_left(starts, offset)
        if lo > 0 and starts[lo - 1] + len(self._runs[starts[lo - 1]]) >= offset:
            lo -= 1
        hi = bisect.bisect_right(starts, end)
        touching = starts[lo:hi]
        if not touching:
            starts.insert(lo, offset)
            self._runs[offset] = bytearray(data)
            return
        first = touching[0]
        if len(touching) == 1 and first + len(self._runs[first]) == offset:
            self._runs[first] += data  # appending to a run: amortised, no rebuild
            return
        last = touching[-1]
        new_start = min(offset, first)
        new_end = max(end, last + len(self._runs[last]))
        buf = bytearray(new_end - new_start)
        for s in touching:
            run = self._runs.pop(s)
            buf[s - new_start : s - new_start + len(run)] = run
        buf[offset - new_start : end - new_start] = data
        del starts[lo:hi]
        starts.insert(lo, new_start)
        self._runs[new_start] = buf

    def extents(self) -> list[Extent]:
        return [(s, self._runs[s]) for s in self._starts]


def is_zero(data) -> bool:
    view = memoryview(data)
    if bytes(view[:512]).count(0) != min(512, len(view)):
        return False  # the usual answer, found in the first sector
    return bytes(view).count(0) == len(view)


class PageWriter:
    """Writes extents into a seed page blob: Put Page, or Clear Pages for all-zero data (the
    blob stays sparse), in parallel on `pool` when given. Every call passes `faults("apply")`
    first, so tests can delay or fail page writes."""

    def __init__(self, seeds, faults: Callable[[str], None], pool: Executor | None = None):
        self.seeds = seeds
        self.faults = faults
        self.pool = pool
        self.bytes_written = 0
        self._lock = threading.Lock()

    def _one(self, blob: str, offset: int, data) -> None:
        self.faults("apply")
        if is_zero(data):
            self.seeds.clear(blob, offset, len(data))
        else:
            self.seeds.write(blob, offset, data)
        with self._lock:
            self.bytes_written += len(data)

    def write(self, blob: str, extents: list[Extent]) -> None:
        if self.pool is None or len(extents) <= 1:
            for offset, data in extents:
                self._one(blob, offset, data)
            return
        futures = [self.pool.submit(self._one, blob, offset, data) for offset, data in extents]
        wait(futures)
        for future in futures:
            future.result()  # the first failure, after every write has finished
