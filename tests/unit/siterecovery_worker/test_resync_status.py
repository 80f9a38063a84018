"""What the vault shows of a resync (`resync_status.view`): required and why, under way,
completed, failed, and health errors an operator resolved."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from fakes.azure.siterecovery.replication_state import ProtectedItemKey
from fakes.azure.siterecovery.worker import resync_status
from fakes.azure.siterecovery.worker.engine import SeedDisk, VmReplication
from fakes.azure.siterecovery.worker.plan import parse_plan

VM_ID = "5003c3b1-0000"
PLAN = {
    "kind": "ir-plan",
    "vm_id": VM_ID,
    "epoch": "e1a2b3",
    "protected_item": "item",
    "lab_time": 1796170000.0,
    "disks": [
        {"index": 0, "disk_id": "d0", "size": 1 << 20, "allocated": 1 << 16},
        {"index": 1, "disk_id": "d1", "size": 2 << 20, "allocated": 1 << 16},
    ],
}
NOW = 1_800_000_000.0
SINCE = NOW - 600.0
SERVICE = "siterecovery-worker"


@pytest.fixture
def vm() -> VmReplication:
    plan = parse_plan(PLAN)
    seeds = {
        d.index: SeedDisk(d.index, d.disk_id, f"asrseeddisk-{VM_ID}-e1a2b3-{d.index}", d.size)
        for d in plan.disks
    }
    return VmReplication(VM_ID, plan.epoch, ProtectedItemKey("f", "c", "item"), plan, seeds)


def item(report: dict | None, resolved: dict | None = None):
    return SimpleNamespace(vm_name="vm-under-test", agent_resync=report, resolved_errors=resolved)


def required(code="ResyncRequired", reason="unclean-shutdown", disks=(0, 1)) -> dict:
    return {
        "code": code,
        "reason": reason,
        "message": f"because {reason}",
        "disks": list(disks),
        "since": SINCE,
    }


def counters(percent: int, sent: int = 4096, last: float = NOW - 60) -> dict:
    return {"percent": percent, "source_scanned": 1 << 20, "sent_bytes": sent, "last_sent_at": last}


def running(percents=(100, 100), state="Running", **extra) -> dict:
    return {
        "required": required(),
        "generation": 1,
        "state": state,
        "error": None,
        "started_at": NOW - 300,
        "finished_at": None,
        "disks": {str(i): counters(p) for i, p in enumerate(percents)},
    } | extra


def view(vm, report, point_made=False, resolved=None):
    return resync_status.view(vm, item(report, resolved), NOW, point_made, service=SERVICE)


def test_nothing_reported_shows_nothing(vm):
    out = view(vm, None, point_made=True)
    assert not out.resyncing and not out.ran and out.percent is None
    assert out.errors == [] and out.transitions == {}
    assert out.disks == {
        "d0": {"resync_required": False, "disk_resized": False},
        "d1": {"resync_required": False, "disk_resized": False},
    }


def test_a_required_resync_marks_every_disk_and_raises_an_error(vm):
    report = {"required": required(), "state": "Idle", "generation": 0}
    out = view(vm, report, point_made=True)
    assert not out.resyncing
    assert {d: f["resync_required"] for d, f in out.disks.items()} == {"d0": True, "d1": True}
    assert not any(f["disk_resized"] for f in out.disks.values())
    (error,) = out.errors
    assert error["errorCode"] == "ResyncRequired" and error["errorLevel"] == "Error"
    assert error["errorSource"] == SERVICE
    assert "vm-under-test" in error["summaryMessage"]
    assert "because unclean-shutdown" in error["summaryMessage"]
    assert out.transitions == {"required": error["errorId"]}
    # The same requirement seen again is the same error (an operator can resolve it).
    assert view(vm, report, point_made=True).errors[0]["errorId"] == error["errorId"]


def test_a_resized_disk_is_the_only_one_marked_resized(vm):
    report = {
        "required": required("DiskResized", "disk-resized", disks=[1]),
        "state": "Idle",
        "generation": 0,
    }
    out = view(vm, report, point_made=True)
    assert out.disks["d1"] == {"resync_required": True, "disk_resized": True}
    assert out.disks["d0"] == {"resync_required": False, "disk_resized": False}
    assert [e["errorCode"] for e in out.errors] == ["DiskResized"]


def test_only_the_disk_resized_code_marks_disks_resized(vm):
    report = {"required": required("ResyncRequired", "journal-overflow"), "state": "Idle"}
    out = view(vm, report, point_made=True)
    assert all(f["resync_required"] and not f["disk_resized"] for f in out.disks.values())


def test_a_running_resync_requires_nothing_and_stays_below_100_until_its_point(vm):
    vm1 = replace(vm, generation=1)
    out = view(vm1, running(percents=(100, 60)), point_made=False)
    assert out.resyncing and out.ran
    assert out.errors == [] and "required" not in out.transitions
    assert not any(f["resync_required"] for f in out.disks.values())
    assert out.disks["d0"]["resync_progress_percentage"] == 99
    assert out.disks["d1"]["resync_progress_percentage"] == 60
    assert out.percent == (99 + 60) // 2
    d0 = out.disks["d0"]
    assert d0["resync_processed_bytes"] == 1 << 20
    assert d0["resync_total_transferred_bytes"] == 4096
    assert d0["resync_last_15_minutes_transferred_bytes"] == 4096
    assert d0["resync_start_time"] == NOW - 300 and d0["resync_duration_in_seconds"] == 300
    assert "completed" not in out.transitions


def test_a_finished_pass_is_still_resyncing_until_the_first_point_after_it(vm):
    vm1 = replace(vm, generation=1)
    report = running(state="Completed", required=None, finished_at=NOW - 10)
    out = view(vm1, report, point_made=False)
    assert out.resyncing and out.percent == 99
    assert "completed" not in out.transitions


def test_completed_with_its_point_made_is_100_percent_and_a_transition(vm):
    vm1 = replace(vm, generation=1)
    report = running(state="Completed", required=None, finished_at=NOW - 10)
    out = view(vm1, report, point_made=True)
    assert not out.resyncing and out.ran
    assert out.percent == 100
    assert {f["resync_progress_percentage"] for f in out.disks.values()} == {100}
    assert out.disks["d0"]["resync_duration_in_seconds"] == 290
    assert out.transitions == {"completed": 1}
    assert out.errors == []


def test_old_transfers_do_not_count_in_the_last_15_minutes(vm):
    vm1 = replace(vm, generation=1)
    report = running()
    report["disks"]["0"] = counters(50, sent=8192, last=NOW - 16 * 60)
    out = view(vm1, report)
    assert out.disks["d0"]["resync_total_transferred_bytes"] == 8192
    assert out.disks["d0"]["resync_last_15_minutes_transferred_bytes"] == 0


def test_a_failed_resync_names_the_agents_error(vm):
    vm1 = replace(vm, generation=1)
    report = running(
        state="Failed", error="the process server could not serve the resync", finished_at=NOW
    )
    out = view(vm1, report, point_made=False)
    assert not out.resyncing
    failed = [e for e in out.errors if e["errorCode"] == "ResyncFailed"]
    assert len(failed) == 1
    assert "the process server could not serve the resync" in failed[0]["summaryMessage"]
    assert failed[0]["errorLevel"] == "Error"
    assert out.transitions["failed"] == failed[0]["errorId"]
    assert view(vm1, report).transitions["failed"] == failed[0]["errorId"]
    # Still required: the disks say so again, and so does its own error.
    assert all(f["resync_required"] for f in out.disks.values())
    assert {e["errorCode"] for e in out.errors} == {"ResyncFailed", "ResyncRequired"}


def test_a_resolved_error_is_not_raised_again(vm):
    report = {"required": required(), "state": "Idle", "generation": 0}
    error_id = view(vm, report).errors[0]["errorId"]
    out = view(vm, report, resolved={error_id: NOW})
    assert out.errors == []
    assert out.transitions == {"required": error_id}  # still required: only not shown
    assert all(f["resync_required"] for f in out.disks.values())


def test_a_new_requirement_is_a_new_error_after_one_was_resolved(vm):
    first = {"required": required(), "state": "Idle"}
    error_id = view(vm, first).errors[0]["errorId"]
    later = {"required": required() | {"since": NOW}, "state": "Idle"}
    (error,) = view(vm, later, resolved={error_id: NOW}).errors
    assert error["errorId"] != error_id
