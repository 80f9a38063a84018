"""The failover jobs of a protected item and their tasks (the real service's task names).

Vault tasks change the item in the job's transaction; the Azure work (disks from the point's
snapshots, the VM and its guest) runs as `azure` tasks outside it (`failover_vm.py`). Every
job records what it made in `job["output"]`, and the item keeps it (`testFailover`,
`failover`), so cleanup, cancel and commit know what to remove.
"""

from __future__ import annotations

from . import failover, failover_vm
from . import recovery_points as points
from .jobs import JobKind, TaskSpec
from .protected_items import STATES, _item_of, _save


def _current_job(job) -> dict:
    return {"scenarioName": job["scenarioName"], "name": job["name"], "start": job["start"]}


def _on_create(vault, job, db) -> None:
    doc = _item_of(vault, job)
    failover.check_allowed(
        doc, job["input"]["action"], STATES.get(doc["protectionState"], ("", []))[1]
    )
    doc["currentJob"] = _current_job(job)
    if job["input"]["action"] == "testFailoverCleanup":
        doc["testFailoverState"] = failover.TEST_CLEANING
    _save(vault, db, doc)


def _prerequisites(vault, job, db) -> None:
    _item_of(vault, job)


def _on_failed(vault, job, db) -> None:
    doc = vault.store.get("protected_items", *_key(job))
    if doc is None:
        return
    doc["currentJob"] = None
    if job["input"]["action"] == "testFailoverCleanup":
        doc["testFailoverState"] = failover.TEST_WAITING  # the test VM is still there
    _save(vault, db, doc)


def _key(job) -> tuple[str, str, str]:
    inp = job["input"]
    return inp["fabric"], inp["container"], inp["item"]


def _finish(vault, job, db, **changes) -> dict:
    doc = _item_of(vault, job)
    doc["currentJob"] = None
    doc.update(changes)
    _save(vault, db, doc)
    return doc


def _kind(name: str, scenario: str, friendly: str, tasks, **hooks) -> JobKind:
    """A failover job of one protected item: checked and marked busy at creation, released
    if it fails."""
    return JobKind(
        name=name,
        scenario=scenario,
        friendly_name=friendly,
        target_type="ProtectionEntity",
        tasks=tuple(tasks),
        on_create=_on_create,
        on_failed=_on_failed,
        provider="InMageAzureV2",
        **hooks,
    )


def _prerequisites_task(what: str) -> TaskSpec:
    return TaskSpec("PrerequisitesCheckTask", f"Prerequisites check for {what}", run=_prerequisites)


START_VM = TaskSpec(
    "StartVmTask", "Start the virtual machine", runner="azure", run=failover_vm.check_booted
)
CREATE_VM = TaskSpec(
    "CreateVmTask",
    "Create the Azure virtual machine",
    runner="azure",
    run=failover_vm.create_failover_vm,
)


# -- test failover ------------------------------------------------------------------------------
def _on_test_failover(vault, job, db) -> None:
    out = job.get("output", {})
    _finish(
        vault,
        job,
        db,
        testFailoverState=failover.TEST_WAITING,
        testFailover=out,
        failoverRecoveryPointName=out.get("point"),
        lastSuccessfulTestFailoverTime=vault.clock.time(),
    )


def _on_test_cleanup(vault, job, db) -> None:
    _finish(
        vault,
        job,
        db,
        testFailoverState=failover.TEST_NONE,
        testFailover=None,
        testFailoverComments=job["input"].get("comments"),
    )


TEST_FAILOVER = _kind(
    "TestFailover",
    "TestFailover",
    "Test failover",
    (
        _prerequisites_task("test failover"),
        TaskSpec(
            "CreateTestVmTask",
            "Create test virtual machine",
            runner="azure",
            run=failover_vm.create_test_vm,
        ),
        TaskSpec(
            "StartTestVmTask",
            "Start the virtual machine",
            runner="azure",
            run=failover_vm.check_booted,
        ),
    ),
    on_succeeded=_on_test_failover,
)

TEST_FAILOVER_CLEANUP = _kind(
    "TestFailoverCleanup",
    "TestFailoverCleanup",
    "Cleanup test failover",
    (
        TaskSpec(
            "CleanupTestEnvironmentTask",
            "Cleaning up test environment",
            runner="azure",
            run=failover_vm.delete_test_vm,
        ),
    ),
    on_succeeded=_on_test_cleanup,
)


# -- failover, planned and unplanned ------------------------------------------------------------
def _on_failover(vault, job, db) -> None:
    out = job.get("output", {})
    planned = job["input"]["action"] == "plannedFailover"
    _finish(
        vault,
        job,
        db,
        protectionState=failover.PLANNED_PENDING if planned else failover.UNPLANNED_PENDING,
        activeLocation="Recovery",
        failover=out,
        failoverRecoveryPointName=out.get("point"),
        lastSuccessfulFailoverTime=vault.clock.time(),
    )


UNPLANNED_FAILOVER = _kind(
    "UnplannedFailover",
    "UnplannedFailover",
    "Failover",
    (_prerequisites_task("failover"), CREATE_VM, START_VM),
    on_succeeded=_on_failover,
)

PLANNED_FAILOVER = _kind(
    "PlannedFailover",
    "PlannedFailover",
    "Planned failover",
    (
        _prerequisites_task("planned failover"),
        TaskSpec(
            "ShutdownVmTask",
            "Shut down the virtual machine",
            runner="provider",
            work_item="ShutdownVm",
        ),
        TaskSpec(
            "FinalSyncTask",
            "Synchronize the final changes",
            runner="azure",
            run=failover_vm.wait_final_sync,
        ),
        CREATE_VM,
        START_VM,
    ),
    on_succeeded=_on_failover,
    work_item_payload=failover_vm.shutdown_payload,
)


# -- after a failover ---------------------------------------------------------------------------
def _commit(vault, job, db) -> None:
    doc = _item_of(vault, job)
    # Commit ends the choice of recovery point: the points go.
    for p in points.list_points(vault, doc["fabric"], doc["container"], doc["name"]):
        vault.store.delete(
            db, "recovery_points", doc["fabric"], doc["container"], doc["name"], p["name"]
        )
    planned = doc["protectionState"] == failover.PLANNED_PENDING
    doc["protectionState"] = failover.PLANNED_COMMITTED if planned else failover.UNPLANNED_COMMITTED
    doc["currentJob"] = None
    _save(vault, db, doc)


def _on_cancel(vault, job, db) -> None:
    _finish(
        vault,
        job,
        db,
        protectionState=failover.PROTECTED,
        activeLocation="Primary",
        failover=None,
        failoverRecoveryPointName=None,
    )


def _on_change_point(vault, job, db) -> None:
    out = job.get("output", {})
    doc = _item_of(vault, job)
    _finish(
        vault,
        job,
        db,
        failover={**(doc.get("failover") or {}), **out},
        failoverRecoveryPointName=out.get("point"),
    )


FAILOVER_COMMIT = _kind(
    "FailoverCommit",
    "CommitFailover",
    "Commit",
    (TaskSpec("CommitFailoverTask", "Committing the failover", run=_commit),),
)

FAILOVER_CANCEL = _kind(
    "FailoverCancel",
    "CancelFailover",
    "Cancel failover",
    (
        TaskSpec(
            "DeleteVmTask",
            "Delete the Azure virtual machine",
            runner="azure",
            run=failover_vm.delete_failover_vm,
        ),
    ),
    on_succeeded=_on_cancel,
)

APPLY_RECOVERY_POINT = _kind(
    "ApplyRecoveryPoint",
    "ChangePit",
    "Change recovery point",
    (
        TaskSpec(
            "ChangeRecoveryPointTask",
            "Changing the recovery point",
            runner="azure",
            run=failover_vm.change_point,
        ),
        START_VM,
    ),
    on_succeeded=_on_change_point,
)

KINDS = (
    TEST_FAILOVER,
    TEST_FAILOVER_CLEANUP,
    UNPLANNED_FAILOVER,
    PLANNED_FAILOVER,
    FAILOVER_COMMIT,
    FAILOVER_CANCEL,
    APPLY_RECOVERY_POINT,
)

JOB_OF_ACTION = {
    "testFailover": "TestFailover",
    "testFailoverCleanup": "TestFailoverCleanup",
    "unplannedFailover": "UnplannedFailover",
    "plannedFailover": "PlannedFailover",
    "failoverCommit": "FailoverCommit",
    "failoverCancel": "FailoverCancel",
    "applyRecoveryPoint": "ApplyRecoveryPoint",
}
