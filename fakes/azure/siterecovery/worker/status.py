"""What the vault shows of a replicating VM, refreshed every couple of seconds: protection
state and stage, initial replication progress, RPO per disk and VM, data rates, replication
health and health errors; and the RPO threshold alarm (event, Service Bus, e-mail).

`summarize` is the arithmetic (no I/O); `StatusReporter.report` writes one VM's status into
the vault in one transaction and raises or resolves its alarm.

The worker only moves an item between InitialReplicationPending, InitialReplicationInProgress
and Protected; while a job owns the item (EnablingProtection, DisablingProtection) it leaves
the state alone and writes only progress.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from fakes.azure.siterecovery.replication_state import health_error

from . import names, resync_status
from . import rpo as rpo_math
from .engine import VmReplication
from .progress import Progress

log = logging.getLogger(__name__)

WORKER_STATES = ("InitialReplicationPending", "InitialReplicationInProgress", "Protected")
DEFAULT_THRESHOLD_MINUTES = 60
# Health error codes of the lab (the real service's numeric codes are not documented for
# these conditions).
RPO_EXCEEDED = "RpoThresholdExceeded"
LOG_MISSING = "ReplicationLogMissing"
LOG_UNREADABLE = "ReplicationLogUnreadable"


def summarize(vm: VmReplication, streams: list[dict], now: float, protected: bool) -> dict:
    """Initial replication progress, RPO per disk and VM, from the progress rows."""
    by_name = {s["stream"]: s for s in streams}
    disks = []
    ir_bytes = 0
    for disk in vm.plan.disks:
        ir = by_name.get(names.ir_stream(vm.epoch, disk.index)) or {}
        journals = [
            by_name.get(names.journal_stream(vm.epoch, disk.index, g)) or {}
            for g in range(vm.generation + 1)
        ]
        journal = journals[-1]
        applied = int(ir.get("payload_bytes") or 0)
        ir_bytes += applied
        ir_done = bool(ir.get("done"))
        percent = 100 if ir_done or not disk.allocated else min(99, applied * 100 // disk.allocated)
        # The replica's freshness: the newest change applied, whichever generation brought it.
        captured = max(
            (j["captured_at"] for j in journals if j.get("applied") and j.get("captured_at")),
            default=None,
        )
        disks.append(
            {
                "index": disk.index,
                "disk_id": disk.disk_id,
                "ir_bytes": applied,
                "ir_done": ir_done,
                "ir_percent": percent,
                "journal_applied": int(journal.get("applied") or 0),
                "journal_bytes": sum(int(j.get("payload_bytes") or 0) for j in journals),
                "rpo": rpo_math.disk_rpo(now, captured),
            }
        )
    total = vm.plan.allocated
    all_done = all(d["ir_done"] for d in disks)
    if all_done or not total:
        percent = 100 if all_done else 0
    else:
        percent = min(99, ir_bytes * 100 // total)
    return {
        "ir_bytes": ir_bytes,
        "ir_allocated": total,
        "ir_percent": percent,
        "ir_done": all_done,
        "protected": protected,
        "state": "Protected" if protected else "InitialReplicationInProgress",
        "rpo": rpo_math.vm_rpo([d["rpo"] for d in disks]),
        "disks": disks,
        "bytes": sum(d["ir_bytes"] + d["journal_bytes"] for d in disks),
    }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


class StatusReporter:
    def __init__(self, progress: Progress, vault, monitor, *, service: str = "sr-worker"):
        self.progress = progress
        self.vault = vault
        self.monitor = monitor
        self.service = service
        self._health: dict[str, tuple] = {}  # vm id -> (health, errors) last written
        self._protected_seen: set[str] = set()

    def report(
        self,
        vm: VmReplication,
        item,  # replication_state.ProtectedItemView
        now: float,
        *,
        rates: tuple[float, float] = (0.0, 0.0),
        last_update: float | None = None,
        issues: list[dict] = (),
    ) -> dict:
        streams = self.progress.streams(vm.vm_id, vm.epoch)
        protected = self.progress.point(vm.vm_id, vm.epoch, vm.first_tag) is not None
        summary = summarize(vm, streams, now, protected)
        known_disks = {d["diskId"] for d in item.disks}
        point_made = (
            vm.generation == 0
            or self.progress.point(vm.vm_id, vm.epoch, vm.generation_tag) is not None
        )
        resync = resync_status.view(vm, item, now, point_made, service=self.service)
        stage = "Protected" if protected and not resync.resyncing else "Resync"
        state = summary["state"] if item.protection_state in WORKER_STATES else None
        if state == item.protection_state:
            state = None
        vm_rpo = summary["rpo"]
        extra = {"last_update_received_time": last_update} if last_update is not None else {}
        with self.vault.store.transaction():
            self.vault.update_item(
                vm.item,
                protection_state=state,
                protection_stage=stage if item.protection_state in WORKER_STATES else None,
                resync_progress_percentage=(
                    resync.percent if resync.ran else summary["ir_percent"]
                ),
                rpo_in_seconds=int(vm_rpo) if vm_rpo is not None else None,
                last_rpo_calculated_time=now,
                uncompressed_data_rate_in_mb=round(rates[0], 3),
                compressed_data_rate_in_mb=round(rates[1], 3),
                total_data_transferred=summary["bytes"],
                total_progress_health="Normal",
                **extra,
            )
            for d in summary["disks"]:
                if d["disk_id"] not in known_disks:
                    continue
                fields = {
                    "resync_progress_percentage": d["ir_percent"],
                    "resync_processed_bytes": d["ir_bytes"],
                    "resync_total_transferred_bytes": d["ir_bytes"],
                }
                fields.update(resync.disks.get(d["disk_id"], {}))
                self.vault.update_disk(
                    vm.item,
                    d["disk_id"],
                    protection_stage=stage,
                    rpo_in_seconds=int(d["rpo"]) if d["rpo"] is not None else None,
                    last_rpo_calculated_time=now,
                    progress_health="Normal",
                    **fields,
                )
        if state == "Protected" and vm.vm_id not in self._protected_seen:
            self._initial_replication_completed(vm, item, now)
        if protected:
            self._protected_seen.add(vm.vm_id)
        alerting = self._alarm(vm, item, vm_rpo, now)
        self._resync_events(vm, item, resync, now)
        self._health_errors(vm, item, alerting, vm_rpo, list(issues), now, resync.errors)
        return summary | {"rpo_alert": alerting, "resyncing": resync.resyncing}

    # -- the RPO alarm ----------------------------------------------------------------------------
    def _threshold(self, item) -> float:
        minutes = item.policy.get("recoveryPointThresholdInMinutes") or DEFAULT_THRESHOLD_MINUTES
        return float(minutes) * 60.0

    def _alarm(self, vm: VmReplication, item, vm_rpo: float | None, now: float) -> bool:
        row = self.progress.vm(vm.vm_id) or {}
        alerting = bool(row.get("rpo_alert"))
        threshold = self._threshold(item)
        change = rpo_math.transition(alerting, vm_rpo, threshold)
        if change is None:
            return alerting
        exceeded = change == rpo_math.EXCEEDED
        minutes, limit = vm_rpo / 60.0, threshold / 60.0
        if exceeded:
            description = (
                f"The RPO of {item.vm_name} is {minutes:.1f} minutes, above the replication "
                f"policy's threshold of {limit:g} minutes."
            )
        else:
            description = (
                f"The RPO of {item.vm_name} is back to {minutes:.1f} minutes, within the "
                f"threshold of {limit:g} minutes."
            )
        self.vault.add_event(
            event_type="VmHealth",
            severity="Warning" if exceeded else "OK",
            description=description,
            time=now,
            item=vm.item,
            health_errors=[self._rpo_error(item, vm_rpo, threshold, now)] if exceeded else [],
            details={
                "component": self.service,
                "rpoInSeconds": round(vm_rpo, 1),
                "thresholdInSeconds": threshold,
                "resolved": not exceeded,
            },
        )
        label = "RpoThresholdExceeded" if exceeded else "RpoThresholdResolved"
        data = {
            "event": label,
            "vm": item.vm_name,
            "vm_id": vm.vm_id,
            "protected_item": vm.item.name,
            "rpo_seconds": round(vm_rpo, 1),
            "threshold_seconds": threshold,
            "time": _iso(now),
            "description": description,
        }
        subject = (
            f"[drlab] RPO threshold exceeded: {item.vm_name}"
            if exceeded
            else f"[drlab] RPO back within threshold: {item.vm_name}"
        )
        self.monitor.alert(label, data, subject, description + "\n", Vm=item.vm_name)
        # Recorded last: a crash before this repeats the alert rather than losing it.
        self.progress.set_alert(vm.vm_id, exceeded, now if exceeded else None)
        log.warning("%s", description) if exceeded else log.info("%s", description)
        return exceeded

    def _rpo_error(self, item, vm_rpo: float, threshold: float, now: float) -> dict:
        return health_error(
            RPO_EXCEEDED,
            f"The RPO of {item.vm_name} ({vm_rpo / 60:.1f} min) exceeds the threshold of "
            f"{threshold / 60:g} min.",
            level="Error",
            source=self.service,
            possible_causes="Replication data is not reaching Azure as fast as it changes: "
            "churn, process server or network limits, or a stopped upload.",
            recommended_action="Check the process server's health and upload backlog.",
            created=now,
        )

    # -- health -------------------------------------------------------------------------------
    def _health_errors(
        self,
        vm: VmReplication,
        item,
        alerting: bool,
        vm_rpo,
        issues: list[dict],
        now: float,
        resync_errors: list[dict] = (),
    ) -> None:
        errors = list(resync_errors)
        if alerting and vm_rpo is not None:
            errors.append(self._rpo_error(item, vm_rpo, self._threshold(item), now))
        for issue in issues:
            errors.append(
                health_error(
                    issue["code"],
                    issue["message"],
                    level="Warning",
                    source=self.service,
                    created=issue.get("since"),
                )
            )
        if alerting or resync_errors:
            health = "Critical"
        else:
            health = "Warning" if issues else "Normal"
        # Written when it changes (not the RPO figure inside the message, which moves).
        signature = (
            health,
            tuple(
                (e["errorCode"], e.get("summaryMessage"))
                for e in errors
                if e["errorCode"] != RPO_EXCEEDED
            ),
            alerting,
        )
        if self._health.get(vm.vm_id) == signature:
            return
        self.vault.set_health_errors(vm.item, errors)
        self.vault.update_item(vm.item, replication_health=health)
        self._health[vm.vm_id] = signature

    # -- resync events ------------------------------------------------------------------------
    def _resync_events(self, vm: VmReplication, item, resync, now: float) -> None:
        """An event (and a Service Bus message) when a resync becomes required, fails or
        completes: once each, across restarts (the last ones are kept in the progress)."""
        key = f"resync-events/{vm.vm_id}"
        seen = json.loads(self.progress.meta(key) or "{}")
        report = item.agent_resync or {}
        changed = False
        for kind, marker in resync.transitions.items():
            if seen.get(kind) == marker:
                continue
            seen[kind] = marker
            changed = True
            self._resync_event(vm, item, kind, report, resync, now)
        if changed:
            self.progress.set_meta(key, json.dumps(seen))

    def _resync_event(self, vm, item, kind: str, report: dict, resync, now: float) -> None:
        name = item.vm_name
        if kind == "required":
            required = report.get("required") or {}
            severity, label = "Warning", "ResyncRequired"
            description = f"Resynchronization of {name} is required: {required.get('message')}"
            data = {"reason": required.get("reason"), "code": required.get("code")}
        elif kind == "failed":
            severity, label = "Warning", "ResyncFailed"
            description = f"The resync of {name} failed: {report.get('error')}"
            data = {"generation": report.get("generation"), "error": report.get("error")}
        else:
            totals = {"sent_bytes": 0, "differing_bytes": 0, "checksum_bytes": 0}
            for disk in (report.get("disks") or {}).values():
                for k in totals:
                    totals[k] += int(disk.get(k) or 0)
            severity, label = "OK", "ResyncCompleted"
            description = (
                f"Resynchronization of {name} completed: {totals['sent_bytes']} bytes sent "
                f"for {totals['differing_bytes']} bytes that differed."
            )
            data = {"generation": vm.generation, **totals}
        self.vault.add_event(
            event_type="VmHealth",
            severity=severity,
            description=description,
            time=now,
            item=vm.item,
            health_errors=[e for e in resync.errors if kind != "completed"],
            details={"component": self.service, **data},
        )
        self.monitor.publish(
            label,
            {
                "vm": name,
                "vm_id": vm.vm_id,
                "protected_item": vm.item.name,
                "time": _iso(now),
                "description": description,
                **data,
            },
            Vm=name,
        )
        log.info("%s", description)

    def _initial_replication_completed(self, vm: VmReplication, item, now: float) -> None:
        self.vault.add_event(
            event_type="VmHealth",
            severity="Info",
            description=f"Initial replication of {item.vm_name} completed; the VM is protected.",
            time=now,
            item=vm.item,
            details={"component": self.service, "epoch": vm.epoch},
        )
        self.monitor.publish(
            "InitialReplicationCompleted",
            {
                "vm": item.vm_name,
                "vm_id": vm.vm_id,
                "protected_item": vm.item.name,
                "epoch": vm.epoch,
                "time": _iso(now),
            },
            Vm=item.vm_name,
        )

    def forget(self, vm_id: str) -> None:
        self._health.pop(vm_id, None)
        self._protected_seen.discard(vm_id)
