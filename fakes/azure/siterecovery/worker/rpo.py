"""RPO arithmetic and the threshold alarm, in lab time; no I/O.

RPO of a disk = lab now - `captured_at` of the last message applied from its change-journal
stream (markers keep it fresh when the guest writes nothing). RPO of a VM = its worst disk;
unknown (None) until every disk has applied journal data, i.e. during initial replication.
The alarm raises when the VM's RPO goes above the policy's threshold and resolves when it is
back at or under it; one transition per crossing, whatever the refresh rate.
"""

from __future__ import annotations

import threading
from collections import deque

EXCEEDED = "exceeded"
RESOLVED = "resolved"
MB = 2**20


def disk_rpo(now: float, captured_at: float | None) -> float | None:
    if captured_at is None:
        return None
    return max(0.0, now - captured_at)


def vm_rpo(disk_rpos: list[float | None]) -> float | None:
    if not disk_rpos or any(r is None for r in disk_rpos):
        return None
    return max(disk_rpos)


def transition(alerting: bool, rpo: float | None, threshold_seconds: float) -> str | None:
    """EXCEEDED, RESOLVED or None for a VM whose alarm is (or is not) raised."""
    if rpo is None:
        return None
    if not alerting and rpo > threshold_seconds:
        return EXCEEDED
    if alerting and rpo <= threshold_seconds:
        return RESOLVED
    return None


class DataRates:
    """Bytes applied per lab second over a sliding window: uncompressed (record payload) and
    compressed (sealed log sizes), in MB/s as the API's *DataRateInMB fields show them."""

    def __init__(self, window: float = 300.0):
        self.window = window
        self._samples: deque[tuple[float, int, int]] = deque()
        self._lock = threading.Lock()

    def add(self, at: float, payload: int, sealed: int) -> None:
        with self._lock:
            self._samples.append((at, payload, sealed))

    def rates(self, now: float) -> tuple[float, float]:
        """(uncompressed MB/s, compressed MB/s)."""
        with self._lock:
            while self._samples and self._samples[0][0] < now - self.window:
                self._samples.popleft()
            if not self._samples:
                return 0.0, 0.0
            payload = sum(s[1] for s in self._samples)
            sealed = sum(s[2] for s in self._samples)
        return payload / self.window / MB, sealed / self.window / MB
