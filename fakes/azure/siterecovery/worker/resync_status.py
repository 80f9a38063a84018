"""What the vault shows of a VM's resync: required (and why), under way, failed, completed.

The mobility agent's report reaches the vault through the configuration server's heartbeat
(`ProtectedItemView.agent_resync`: required, generation, state, error, per-disk counters keyed
by disk id); the worker knows whether the generation's first recovery point exists. From both,
`view` computes the disk fields (resyncRequired, diskResized, resync progress and byte
counters), the item's stage, the health errors (each with a stable id, so an operator can
resolve it), and the transitions worth an event. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fakes.azure.siterecovery.replication_state import health_error

from .engine import VmReplication

RESYNC_REQUIRED = "ResyncRequired"
DISK_RESIZED = "DiskResized"
RESYNC_FAILED = "ResyncFailed"
FIFTEEN_MINUTES = 900.0


@dataclass
class ResyncView:
    resyncing: bool = False  # the agent's pass runs, or its first point is not made yet
    ran: bool = False  # a resync generation has run: its counters replace the initial copy's
    percent: int | None = None
    disks: dict[str, dict] = field(default_factory=dict)  # disk id -> update_disk fields
    errors: list[dict] = field(default_factory=list)
    transitions: dict = field(default_factory=dict)  # what the events signature records


def _disk_id(vm: VmReplication, key) -> str:
    """A disk named by its id, or by its index (mapped through the seed disks)."""
    ids = {str(s.index): s.disk_id for s in vm.seeds.values()}
    return ids.get(str(key), str(key))


def view(vm: VmReplication, item, now: float, point_made: bool, *, service: str) -> ResyncView:
    report = item.agent_resync or {}
    required = report.get("required")
    state = report.get("state") or "Idle"
    generation = int(report.get("generation") or 0)
    out = ResyncView()
    out.ran = generation > 0 and vm.generation > 0
    out.resyncing = state == "Running" or (
        vm.generation > 0 and not point_made and state != "Failed"
    )
    counters = {_disk_id(vm, k): v for k, v in (report.get("disks") or {}).items()}
    required_disks = {_disk_id(vm, d) for d in (required or {}).get("disks", [])}
    waiting = bool(required) and state != "Running"
    for seed in vm.seeds.values():
        fields = {
            "resync_required": waiting and (not required_disks or seed.disk_id in required_disks),
            "disk_resized": bool(
                required and required.get("code") == DISK_RESIZED and seed.disk_id in required_disks
            ),
        }
        c = counters.get(seed.disk_id)
        if out.ran and c is not None:
            started = report.get("started_at")
            finished = report.get("finished_at")
            last = c.get("last_sent_at")
            percent = int(c.get("percent") or 0)
            if out.resyncing:
                percent = min(percent, 99)  # 100 once the first point after it exists
            elif state == "Completed" and point_made:
                percent = 100
            fields.update(
                resync_progress_percentage=percent,
                resync_processed_bytes=int(c.get("source_scanned") or 0),
                resync_total_transferred_bytes=int(c.get("sent_bytes") or 0),
                # The lab keeps no per-interval history: all of it if the last transfer was
                # within 15 minutes, else nothing.
                resync_last_15_minutes_transferred_bytes=(
                    int(c.get("sent_bytes") or 0)
                    if last is not None and now - last <= FIFTEEN_MINUTES
                    else 0
                ),
                resync_last_data_transfer_time=last,
                resync_start_time=started,
                resync_duration_in_seconds=(
                    int((finished or now) - started) if started is not None else None
                ),
            )
        out.disks[seed.disk_id] = fields
    if out.ran:
        percents = [d.get("resync_progress_percentage", 0) for d in out.disks.values()]
        out.percent = sum(percents) // max(1, len(percents))
    resolved = item.resolved_errors or {}

    def raise_error(kind: str, error_id: str, code: str, message: str, cause, action, since):
        out.transitions[kind] = error_id  # an event once, resolved or not
        if error_id not in resolved:
            out.errors.append(
                health_error(
                    code,
                    message,
                    level="Error",
                    source=service,
                    possible_causes=cause,
                    recommended_action=action,
                    created=since,
                    error_id=error_id,
                )
            )

    if waiting:
        code = required.get("code") or RESYNC_REQUIRED
        raise_error(
            "required",
            f"{code}-{vm.vm_id}-{int(required.get('since') or 0)}",
            code,
            f"Resynchronization of {item.vm_name} is required: {required.get('message')}",
            required.get("message"),
            "Resynchronize the machine (repairReplication), or wait for the automatic resync "
            "in the off-hours window.",
            required.get("since"),
        )
    if state == "Failed":
        raise_error(
            "failed",
            f"{RESYNC_FAILED}-{vm.vm_id}-{generation}",
            RESYNC_FAILED,
            f"The resync of {item.vm_name} failed: {report.get('error')}",
            report.get("error"),
            "Fix the cause, then resynchronize again.",
            report.get("finished_at"),
        )
    if vm.generation > 0 and point_made:
        out.transitions["completed"] = vm.generation
    return out
