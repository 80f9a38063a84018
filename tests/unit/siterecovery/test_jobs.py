"""The job engine as a state machine: vault, provider and manual tasks, failure and its
compensation, cancel, restart, resume. No sockets, no runner thread (run_pending)."""

import pytest

from fakes.azure.siterecovery.errors import (
    OperationNotAllowed,
    SiteRecoveryError,
    WorkItemCancelled,
)
from fakes.azure.siterecovery.models import jobs
from fakes.azure.siterecovery.models.jobs import JobKind, TaskSpec

CALLS = []


def _ok(vault, job, db):
    CALLS.append(("ok", job["name"]))


def _boom(vault, job, db):
    raise SiteRecoveryError("the prerequisite is not met", code="PrereqFailed")


def _undo(vault, job, db):
    CALLS.append(("undo", job["name"]))


KINDS = [
    JobKind(
        "Plain",
        "PlainScenario",
        "Plain job",
        "Thing",
        (TaskSpec("A", "Task A", run=_ok), TaskSpec("B", "Task B", run=_ok)),
    ),
    JobKind(
        "Remote",
        "RemoteScenario",
        "Remote job",
        "Thing",
        (
            TaskSpec("Check", "Prerequisites check", run=_ok),
            TaskSpec(
                "Install",
                "Installing Mobility Service",
                runner="provider",
                work_item="EnableProtection",
            ),
            TaskSpec(
                "Enable", "Enabling replication", runner="provider", work_item="EnableProtection"
            ),
            TaskSpec("Start", "Starting initial replication", run=_ok),
        ),
        on_failed=_undo,
        work_item_payload=lambda vault, job, kind: {"hello": job["input"]["fabric"]},
        cancellable=True,
    ),
    JobKind(
        "Failing",
        "FailingScenario",
        "Failing job",
        "Thing",
        (TaskSpec("A", "Task A", run=_boom), TaskSpec("B", "Task B", run=_ok)),
        on_failed=_undo,
    ),
    JobKind(
        "Manual",
        "ManualScenario",
        "Manual job",
        "Thing",
        (
            TaskSpec("A", "Task A", run=_ok),
            TaskSpec("Wait", "Shut down the app", runner="manual", instructions="Stop it"),
            TaskSpec("B", "Task B", run=_ok),
        ),
    ),
]


@pytest.fixture
def engine(vault):
    for kind in KINDS:
        vault.jobs.register(kind)
    CALLS.clear()
    return vault.jobs


def start(engine, kind):
    return engine.start(
        kind, input={"fabric": "cs1"}, target_id="t", target_name="thing", fabric="cs1"
    )


def test_vault_tasks_run_in_order_and_the_job_succeeds(engine):
    job = start(engine, "Plain")
    assert job["state"] == jobs.NOT_STARTED
    engine.run_pending()
    job = engine.job(job["name"])
    assert job["state"] == jobs.SUCCEEDED and job["end"] is not None
    assert [t["state"] for t in job["tasks"]] == ["Succeeded", "Succeeded"]
    assert [("ok", job["name"])] * 2 == CALLS
    rendered = jobs.job_json(engine.scope, job, engine.kinds)["properties"]
    assert rendered["stateDescription"] == "Completed" and rendered["allowedActions"] == []


def test_provider_tasks_wait_for_the_work_item_outcome(engine, vault):
    job = start(engine, "Remote")
    engine.run_pending()
    job = engine.job(job["name"])
    assert job["state"] == jobs.IN_PROGRESS
    assert [t["state"] for t in job["tasks"]] == [
        "Succeeded",
        "InProgress",
        "NotStarted",
        "NotStarted",
    ]
    [item] = vault.work_items.claim("cs1", 0)
    assert item["kind"] == "EnableProtection" and item["payload"] == {"hello": "cs1"}
    assert [t["friendlyName"] for t in item["tasks"]] == [
        "Installing Mobility Service",
        "Enabling replication",
    ]
    assert vault.work_items.claim("cs1", 0) == []  # delivered once (until its lease expires)

    engine.report(
        item["id"],
        "cs1",
        {"task": "Installing Mobility Service", "state": "InProgress", "progress": 40},
    )
    assert engine.job(job["name"])["tasks"][1]["stateDescription"] == "InProgress (40%)"
    engine.report(item["id"], "cs1", {"task": "Install", "state": "Succeeded"})
    engine.report(item["id"], "cs1", {"task": "Enabling replication", "state": "Succeeded"})
    engine.run_pending()
    assert engine.job(job["name"])["state"] == jobs.IN_PROGRESS  # the outcome is still due
    engine.report(item["id"], "cs1", {"state": "Succeeded", "result": {"agentVersion": "9.60"}})
    engine.run_pending()
    job = engine.job(job["name"])
    assert job["state"] == jobs.SUCCEEDED
    assert vault.work_items.get(item["id"])["state"] == "Succeeded"


def test_a_provider_failure_fails_the_job_and_compensates(engine, vault):
    job = start(engine, "Remote")
    engine.run_pending()
    [item] = vault.work_items.claim("cs1", 0)
    engine.report(
        item["id"],
        "cs1",
        {
            "task": "Installing Mobility Service",
            "state": "Failed",
            "error": {"code": "95107", "message": "push install failed"},
        },
    )
    engine.run_pending()
    job = engine.job(job["name"])
    assert job["state"] == jobs.FAILED
    assert [t["state"] for t in job["tasks"]] == ["Succeeded", "Failed", "Skipped", "Skipped"]
    assert job["errors"][0]["providerErrorDetails"]["errorCode"] == 95107
    assert ("undo", job["name"]) in CALLS
    assert vault.work_items.get(item["id"])["state"] == "Cancelled"
    with pytest.raises(WorkItemCancelled):
        engine.report(item["id"], "cs1", {"state": "Succeeded"})
    [event] = vault.store.docs("events")
    assert event["eventType"] == "JobStatus" and event["severity"] == "Critical"


def test_a_vault_task_error_fails_the_job(engine):
    job = start(engine, "Failing")
    engine.run_pending()
    job = engine.job(job["name"])
    assert job["state"] == jobs.FAILED
    assert job["tasks"][0]["errors"][0]["serviceErrorDetails"]["code"] == "PrereqFailed"
    assert job["tasks"][1]["state"] == "Skipped"
    assert jobs.allowed_actions(job, engine.kinds["Failing"]) == ["Restart"]


def test_cancel_restart(engine, vault):
    job = start(engine, "Remote")
    engine.run_pending()
    assert jobs.allowed_actions(engine.job(job["name"]), engine.kinds["Remote"]) == ["Cancel"]
    cancelled = engine.cancel(job["name"])
    assert cancelled["state"] == jobs.CANCELLED
    assert ("undo", job["name"]) in CALLS
    with pytest.raises(OperationNotAllowed):
        engine.cancel(job["name"])
    new = engine.restart(job["name"])
    assert new["restartedFrom"] == job["name"] and new["input"] == cancelled["input"]
    with pytest.raises(OperationNotAllowed):
        engine.restart(job["name"])  # once
    plain = start(engine, "Plain")
    engine.run_pending()
    with pytest.raises(OperationNotAllowed):
        engine.cancel(plain["name"])


def test_manual_task_suspends_until_resumed(engine):
    job = start(engine, "Manual")
    engine.run_pending()
    job = engine.job(job["name"])
    assert job["state"] == jobs.SUSPENDED
    assert jobs.allowed_actions(job, engine.kinds["Manual"]) == ["Resume", "Cancel"]
    rendered = jobs.job_json(engine.scope, job, engine.kinds)["properties"]["tasks"][1]
    assert rendered["customDetails"]["instanceType"] == "ManualActionTaskDetails"
    engine.resume(job["name"], "done by hand")
    engine.run_pending()
    job = engine.job(job["name"])
    assert job["state"] == jobs.SUCCEEDED
    assert job["tasks"][1]["comments"] == "done by hand"
    with pytest.raises(OperationNotAllowed):
        engine.resume(job["name"])


def test_the_transition_tables_forbid_going_back(engine):
    job = {"name": "j", "state": jobs.SUCCEEDED}
    with pytest.raises(jobs.InvalidTransition):
        engine._job_state(job, jobs.IN_PROGRESS)
    task = {"name": "t", "state": jobs.FAILED, "start": 1, "end": 2}
    with pytest.raises(jobs.InvalidTransition):
        engine._task_state(task, jobs.SUCCEEDED)


def test_work_item_leases_redeliver_to_a_restarted_server(engine, vault):
    start(engine, "Remote")
    engine.run_pending()
    [item] = vault.work_items.claim("cs1", 0)
    vault.work_items._wall = lambda: item["deliveredAtWall"] + 10_000
    [again] = vault.work_items.claim("cs1", 0)
    assert again["id"] == item["id"] and again["deliveries"] == 2


def test_reports_are_checked(engine, vault):
    from fakes.azure.siterecovery.errors import InvalidInput

    start(engine, "Remote")
    engine.run_pending()
    [item] = vault.work_items.claim("cs1", 0)
    for bad in (
        {"state": "Done"},
        {"state": "Failed"},
        {"state": "InProgress", "progress": 140},
        {"task": "Nope", "state": "Succeeded"},
    ):
        with pytest.raises(InvalidInput):
            engine.report(item["id"], "cs1", bad)
