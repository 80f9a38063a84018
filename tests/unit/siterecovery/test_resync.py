"""Resync (repairReplication) and resolveHealthErrors without sockets: the Resynchronize job
through its work item and its recovery point, refusals that change nothing, the off-hours
window as a pure function, and the automatic scheduler's choices. No runner thread: the tests
advance jobs themselves (run_pending, advance)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fakes.azure.siterecovery.errors import Conflict, InvalidInput, OperationNotAllowed
from fakes.azure.siterecovery.models import jobs, resync
from fakes.azure.siterecovery.models.common import health_error
from fakes.azure.siterecovery.models.protected_item_json import protected_item_json
from fakes.azure.siterecovery.models.resync_schedule import (
    ResyncScheduler,
    in_window,
    minutes_of,
    window_opened_at,
)

FABRIC, CONTAINER = "cs1", "cloud_cs1"


def at(text: str) -> float:
    """'2027-01-15 23:30' (UTC) -> epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _put(vault, table, key, doc, **extra):
    with vault.store.transaction() as db:
        vault.store.put(db, table, key, doc, **extra)


def _item(vault, name="a", state="Protected", **extra) -> dict:
    doc = {
        "name": name,
        "fabric": FABRIC,
        "container": CONTAINER,
        "friendlyName": f"vm-{name}",
        "protectableItemName": f"uuid-{name}",
        "protectionState": state,
        "policy": "p",
        "enableInput": {"processServerId": "PS-1"},
        "replication": {"disks": {}},
        "healthErrors": [],
        **extra,
    }
    _put(vault, "protected_items", (FABRIC, CONTAINER, name), doc)
    return doc


def _doc(vault, name="a") -> dict:
    return vault.store.get("protected_items", FABRIC, CONTAINER, name)


def _agent(vault, name="a", **resync_status):
    status = {"required": None, "generation": 0, "state": "Idle", **resync_status}
    _put(
        vault,
        "mobility_agents",
        (FABRIC, f"uuid-{name}"),
        {"vmId": f"uuid-{name}", "agentVersion": "9.62.0.0", "resync": status},
    )


REQUIRED = {
    "code": "ResyncRequired",
    "reason": "unclean-shutdown",
    "message": "The VM was not shut down cleanly.",
    "disks": ["uuid-a:disk-0"],
    "since": 1.0,
}


def _point(vault, name, tag, t=1_800_000_000.0):
    _put(
        vault,
        "recovery_points",
        (FABRIC, CONTAINER, name, f"p-{tag}"),
        {
            "name": f"p-{tag}",
            "fabric": FABRIC,
            "container": CONTAINER,
            "item": name,
            "time": t,
            "type": "CrashConsistent",
            "details": {"tag_id": tag},
        },
        time=t,
    )


@pytest.fixture
def site(vault):
    _put(vault, "fabrics", (FABRIC,), {"name": FABRIC, "kind": "VMware"}, kind="VMware")
    return vault


def _work_item(vault, job_name: str) -> dict:
    return vault.work_items.get(vault.jobs.job(job_name)["workItem"])


# -- repairReplication ----------------------------------------------------------------------------
def test_resync_runs_through_the_configuration_server_and_waits_for_the_point(site):
    vault = site
    _item(vault)
    job = resync.start_repair(vault, _doc(vault))
    vault.jobs.run_pending()
    job = vault.jobs.job(job["name"])
    assert job["scenarioName"] == "RepairReplication"
    assert job["friendlyName"] == "Resynchronize"
    assert [t["state"] for t in job["tasks"]] == ["Succeeded", "InProgress", "NotStarted"]
    item = _work_item(vault, job["name"])
    assert item["kind"] == "ResyncProtection"
    assert item["payload"] == {
        "protectedItemName": "a",
        "protectedItemId": vault.scope.protected_item(FABRIC, CONTAINER, "a"),
        "vmId": "uuid-a",
        "vmName": "vm-a",
        "processServerId": "PS-1",
        "automatic": False,
    }
    # while it runs: the item's scenario, and a second one is refused
    rendered = protected_item_json(vault, _doc(vault))["properties"]
    assert rendered["currentScenario"]["scenarioName"] == "RepairReplication"
    with pytest.raises(Conflict):
        resync.start_repair(vault, _doc(vault))

    vault.jobs.report(item["id"], FABRIC, {"task": "Resynchronizing", "state": "InProgress"})
    result = {"generation": 1, "epoch": "abc123", "tag": "rs-complete-abc123-1", "counters": {}}
    vault.jobs.report(item["id"], FABRIC, {"state": "Succeeded", "result": result})
    vault.jobs.advance(job["name"])
    job = vault.jobs.job(job["name"])
    assert job["state"] == "InProgress"  # no point at the tag yet
    assert job["tasks"][2]["state"] == "InProgress"

    _point(vault, "a", "rs-complete-abc123-0")  # another generation's: not this one
    vault.jobs.advance(job["name"])
    assert vault.jobs.job(job["name"])["state"] == "InProgress"
    _point(vault, "a", "rs-complete-abc123-1")
    vault.jobs.advance(job["name"])
    job = vault.jobs.job(job["name"])
    assert job["state"] == "Succeeded"
    assert job["output"]["point"] == "p-rs-complete-abc123-1"
    doc = _doc(vault)
    assert doc["resyncJob"] is None
    assert doc["lastResync"]["generation"] == 1
    assert doc["lastResync"]["tag"] == "rs-complete-abc123-1"


def test_a_failed_resync_fails_the_job_with_the_servers_message(site):
    vault = site
    _item(vault)
    job = resync.start_repair(vault, _doc(vault))
    vault.jobs.run_pending()
    item = _work_item(vault, job["name"])
    error = {"code": "ResyncFailed", "message": "resync of disk 1 failed: the replica is gone"}
    vault.jobs.report(item["id"], FABRIC, {"state": "Failed", "error": error})
    vault.jobs.advance(job["name"])
    job = vault.jobs.job(job["name"])
    assert job["state"] == "Failed"
    messages = [e["serviceErrorDetails"]["message"] for e in job["errors"]]
    assert "resync of disk 1 failed: the replica is gone" in messages
    assert _doc(vault)["resyncJob"] is None
    assert "automaticResyncFailedAt" not in _doc(vault)  # it was asked for
    assert resync.start_repair(vault, _doc(vault))  # and may be asked again at once


def test_the_point_wait_gives_up_after_its_deadline(site, monkeypatch):
    vault = site
    _item(vault)
    job = resync.start_repair(vault, _doc(vault))
    vault.jobs.run_pending()
    item = _work_item(vault, job["name"])
    vault.jobs.report(item["id"], FABRIC, {"state": "Succeeded", "result": {"tag": "rs-x-1"}})
    vault.jobs.advance(job["name"])
    monkeypatch.setattr(resync, "POINT_TIMEOUT", -1.0)
    with vault.store.transaction() as db:  # the deadline set at the first ask, now passed
        j = vault.jobs.job(job["name"])
        j["output"].pop("pointDeadline")
        vault.jobs._save(db, j)
    vault.jobs.advance(job["name"])
    job = vault.jobs.job(job["name"])
    assert job["state"] == "Failed"
    assert job["errors"][0]["serviceErrorDetails"]["code"] == "ResyncRecoveryPointTimedOut"


@pytest.mark.parametrize(
    ("state", "extra"),
    [
        ("InitialReplicationInProgress", {}),
        ("DisablingProtection", {}),
        ("UnplannedFailoverCommitPendingStatesBegin", {"activeLocation": "Recovery"}),
    ],
)
def test_resync_is_refused_unless_protected_and_changes_nothing(site, state, extra):
    vault = site
    _item(vault, state=state, **extra)
    before = _doc(vault)
    with pytest.raises(OperationNotAllowed) as info:
        resync.start_repair(vault, before)
    assert "Allowed operations" in str(info.value)
    assert _doc(vault) == before
    assert vault.jobs.list() == []
    assert vault.store.count("work_items") == 0


def test_repair_replication_is_listed_when_the_agent_says_resync_is_required(site):
    vault = site
    _item(vault)
    _agent(vault)
    assert "RepairReplication" not in _allowed(vault)
    _agent(vault, required=REQUIRED)
    assert _allowed(vault).count("RepairReplication") == 1
    resync.start_repair(vault, _doc(vault))
    assert "RepairReplication" not in _allowed(vault)  # not while one runs


def _allowed(vault) -> list[str]:
    return protected_item_json(vault, _doc(vault))["properties"]["allowedOperations"]


# -- resolveHealthErrors ----------------------------------------------------------------------
def test_resolve_health_errors_removes_them_at_once_and_records_them(site, clock):
    vault = site
    rpo = health_error("78144", "RPO", error_id="vm-a:RpoExceeded")
    resync_error = health_error("ResyncRequired", "resync", error_id="vm-a:ResyncRequired")
    _item(vault, healthErrors=[rpo, resync_error])
    ids = resync.check_resolve(
        _doc(vault), {"properties": {"healthErrors": [{"healthErrorId": "vm-a:RpoExceeded"}]}}
    )
    job = resync.start_resolve(vault, _doc(vault), ids)
    doc = _doc(vault)
    assert [e["errorId"] for e in doc["healthErrors"]] == ["vm-a:ResyncRequired"]
    assert doc["replication"]["resolvedHealthErrors"] == {"vm-a:RpoExceeded": clock.time()}
    vault.jobs.run_pending()
    job = vault.jobs.job(job["name"])
    assert (job["scenarioName"], job["state"]) == ("ResolveHealthErrors", "Succeeded")


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"properties": {}},
        {"properties": {"healthErrors": []}},
        {"properties": {"healthErrors": [{"healthErrorId": ""}]}},
        {"properties": {"healthErrors": [{"id": "x"}]}},
        {"properties": {"healthErrors": [{"healthErrorId": "not-one-of-its"}]}},
    ],
)
def test_bad_resolve_input_is_refused(site, body):
    vault = site
    _item(vault, healthErrors=[health_error("78144", "RPO", error_id="e1")])
    with pytest.raises(InvalidInput):
        resync.check_resolve(_doc(vault), body)


def test_health_error_ids_are_stable_when_given():
    assert health_error("1", "m", error_id="stable")["errorId"] == "stable"
    assert health_error("1", "m")["errorId"] != health_error("1", "m")["errorId"]


# -- the window --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("t", "start", "end", "inside"),
    [
        ("2027-01-15 23:30", "22:00", "06:00", True),
        ("2027-01-15 03:00", "22:00", "06:00", True),
        ("2027-01-15 22:00", "22:00", "06:00", True),  # start is in
        ("2027-01-15 06:00", "22:00", "06:00", False),  # end is out
        ("2027-01-15 05:59:59", "22:00", "06:00", True),
        ("2027-01-15 21:59:59", "22:00", "06:00", False),
        ("2027-01-15 12:00", "22:00", "06:00", False),
        ("2027-01-15 00:00", "22:00", "00:00", False),
        ("2027-01-15 23:59", "22:00", "00:00", True),
        ("2027-01-15 01:30", "01:00", "05:00", True),
        ("2027-01-15 05:00", "01:00", "05:00", False),
        ("2027-01-15 00:30", "01:00", "05:00", False),
        ("2027-01-15 14:00", "03:00", "03:00", True),  # start == end: all day
    ],
)
def test_in_window(t, start, end, inside):
    assert in_window(at(t), start, end) is inside


def test_window_opened_at_wraps_midnight():
    assert window_opened_at(at("2027-01-16 03:00"), "22:00", "06:00") == at("2027-01-15 22:00")
    assert window_opened_at(at("2027-01-15 23:00"), "22:00", "06:00") == at("2027-01-15 22:00")
    assert window_opened_at(at("2027-01-15 22:00"), "22:00", "06:00") == at("2027-01-15 22:00")
    assert window_opened_at(at("2027-01-15 12:00"), "22:00", "06:00") is None
    assert window_opened_at(at("2027-01-15 02:00"), "01:00", "05:00") == at("2027-01-15 01:00")


@pytest.mark.parametrize("bad", ["24:00", "7", "07:5", "ab:cd", "12:60"])
def test_bad_times_of_day_are_refused(bad):
    with pytest.raises(ValueError):
        minutes_of(bad)


# -- the scheduler ------------------------------------------------------------------------------
def test_scheduler_starts_a_resync_only_inside_the_window_and_not_twice(site, clock):
    vault = site
    _item(vault)
    _item(vault, "b")
    _agent(vault, required=REQUIRED)
    _agent(vault, "b")  # needs none
    scheduler = ResyncScheduler(vault, window=("22:00", "06:00"))
    clock.t = at("2027-01-15 12:00")
    assert scheduler.tick() == []
    clock.t = at("2027-01-15 22:30")
    started = scheduler.tick()
    assert [j["targetObjectName"] for j in started] == ["vm-a"]
    assert started[0]["input"]["automatic"] is True
    assert started[0]["affected"]["ResyncTrigger"] == "Automatic"
    assert vault.jobs.job(started[0]["name"])["state"] == "NotStarted"
    assert scheduler.tick() == []  # one is open
    vault.jobs.run_pending()
    assert _work_item(vault, started[0]["name"])["payload"]["automatic"] is True


def test_scheduler_skips_a_running_agent_resync_and_a_switched_off_lab(site, clock):
    vault = site
    _item(vault)
    clock.t = at("2027-01-15 23:00")
    _agent(vault, required=REQUIRED, state="Running", generation=1)
    assert ResyncScheduler(vault).tick() == []
    _agent(vault, required=REQUIRED, state="Failed", generation=1)
    assert ResyncScheduler(vault, automatic=False).tick() == []
    assert len(ResyncScheduler(vault).tick()) == 1


def test_an_automatic_failure_waits_for_the_next_window(site, clock):
    vault = site
    _item(vault)
    _agent(vault, required=REQUIRED)
    scheduler = ResyncScheduler(vault, window=("22:00", "06:00"))
    clock.t = at("2027-01-15 22:30")
    job = scheduler.tick()[0]
    vault.jobs.run_pending()
    item = _work_item(vault, job["name"])
    error = {"code": "ResyncFailed", "message": "the process server is unreachable"}
    vault.jobs.report(item["id"], FABRIC, {"state": "Failed", "error": error})
    vault.jobs.advance(job["name"])
    assert vault.jobs.job(job["name"])["state"] == jobs.FAILED
    assert _doc(vault)["automaticResyncFailedAt"] == clock.time()

    clock.t = at("2027-01-16 02:00")  # same window
    assert scheduler.tick() == []
    assert resync.start_repair(vault, _doc(vault))["input"]["automatic"] is False  # by hand: yes


def test_an_automatic_failure_is_tried_again_when_the_next_window_opens(site, clock):
    vault = site
    _item(vault, automaticResyncFailedAt=at("2027-01-15 23:00"))
    _agent(vault, required=REQUIRED)
    scheduler = ResyncScheduler(vault, window=("22:00", "06:00"))
    clock.t = at("2027-01-16 05:59")
    assert scheduler.tick() == []
    clock.t = at("2027-01-16 22:00")
    assert len(scheduler.tick()) == 1


def test_a_report_from_before_the_last_resync_does_not_start_another(site, clock):
    vault = site
    _item(vault, lastResync={"generation": 2, "tag": "rs-complete-e-2"})
    _agent(vault, required=REQUIRED, generation=1, state="Completed")  # not heard since
    clock.t = at("2027-01-15 23:00")
    scheduler = ResyncScheduler(vault)
    assert scheduler.tick() == []
    _agent(vault, required=REQUIRED, generation=2, state="Completed")  # required again since
    assert len(scheduler.tick()) == 1


def test_scheduler_reads_the_topology(vault):
    s = ResyncScheduler.from_topology(
        vault,
        {
            "replication": {
                "automatic_resync": False,
                "resync_window": {"start": "01:00", "end": "02:00"},
            }
        },
    )
    assert (s.automatic, s.window) == (False, ("01:00", "02:00"))
    s = ResyncScheduler.from_topology(vault, {})
    assert (s.automatic, s.window) == (True, ("22:00", "06:00"))
