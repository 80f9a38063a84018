"""Process server health, with the seed's thresholds.

Warning: free cache under 30 % or pending data that cannot be uploaded within 30 minutes.
Critical: free cache under 25 % or more than 45 minutes of pending upload. The overall health
is the worst alert. Time here is lab time: backlog minutes are computed from the throughput
the server measures, as the real one does.
"""

from __future__ import annotations

from dataclasses import dataclass

HEALTHY, WARNING, CRITICAL = "Healthy", "Warning", "Critical"

FREE_WARNING, FREE_CRITICAL = 0.30, 0.25
BACKLOG_WARNING_S, BACKLOG_CRITICAL_S = 30 * 60, 45 * 60


@dataclass(frozen=True)
class HealthReport:
    status: str
    alerts: tuple[str, ...]
    free_ratio: float
    backlog_seconds: float | None


def assess(capacity: int, free: int, backlog_bytes: int, throughput_bps: float) -> HealthReport:
    free_ratio = free / capacity if capacity else 0.0
    if backlog_bytes == 0:
        backlog_s = 0.0
    elif throughput_bps > 0:
        backlog_s = backlog_bytes / throughput_bps
    else:
        backlog_s = None  # data waits and nothing is moving: as bad as it gets
    alerts, status = [], HEALTHY
    if free_ratio < FREE_CRITICAL:
        alerts.append(f"cache free space {free_ratio:.0%} is under 25%")
        status = CRITICAL
    elif free_ratio < FREE_WARNING:
        alerts.append(f"cache free space {free_ratio:.0%} is under 30%")
        status = WARNING
    if backlog_s is None or backlog_s > BACKLOG_CRITICAL_S:
        alerts.append("pending data cannot be uploaded within 45 minutes")
        status = CRITICAL
    elif backlog_s > BACKLOG_WARNING_S:
        alerts.append("pending data cannot be uploaded within 30 minutes")
        if status == HEALTHY:
            status = WARNING
    return HealthReport(status, tuple(alerts), free_ratio, backlog_s)
