"""The jobs of a recovery plan: test failover and its cleanup, unplanned and planned failover,
commit and cancel of a whole plan.

A plan's job is made from the plan when it starts (`expand`): for a failover, the points are
chosen for every VM first (one shared point per multi-VM group), then each Boot group in
order runs its start actions, fails its VMs over side by side (a group boots only after the
one before it is up), and runs its end actions. A manual action suspends the job until
`drlab jobs resume JOB` (the SDK's `replication_jobs.begin_resume`); a script action runs a
lab script with the plan's context (`plan_actions.py`). The Shutdown group's planned failover
shuts every source VM down through the configuration server first and waits for each final
point. At the end each item takes the state a failover of that item alone would give it.

The per-VM work is the one protected-item failovers do (`failover_vm.py`), called with a job
of that item; what each made is kept in the plan's job output under `made:<item>`.
"""

from __future__ import annotations

import concurrent.futures

from ..errors import InvalidInput, SiteRecoveryError
from . import failover, failover_jobs, failover_vm, plan_actions, plan_points, plans
from .jobs import JobKind, TaskSpec
from .protected_items import _save

BOOT_WORKERS = 8  # VMs of one group failed over side by side

OPERATION_OF_ACTION = {
    "testFailover": "TestFailover",
    "plannedFailover": "PlannedFailover",
    "unplannedFailover": "UnplannedFailover",
}


def _docs(vault, job) -> list[dict]:
    out = []
    for entry in job["input"]["items"]:
        doc = vault.store.get("protected_items", entry["fabric"], entry["container"], entry["item"])
        if doc is None:
            raise SiteRecoveryError(
                f"The protected item '{entry['item']}' of the plan no longer exists.",
                code="ProtectedItemNotFound",
            )
        out.append(doc)
    return out


def _item_job(job, entry: dict, **extra) -> dict:
    """A job of one item, as the protected-item failover functions take it."""
    inp = job["input"]
    return {
        "name": job["name"],
        "scenarioName": job["scenarioName"],
        "start": job["start"],
        "input": {
            "fabric": entry["fabric"],
            "container": entry["container"],
            "item": entry["item"],
            "action": inp["action"],
            "networkId": inp.get("networkId"),
            "comments": inp.get("comments"),
            **extra,
        },
        "output": dict((job.get("output") or {}).get(f"made:{entry['item']}") or {}),
    }


# -- the job's tasks ------------------------------------------------------------------------------
def expand(vault, inp: dict) -> list[dict]:
    plan = vault.store.get("recovery_plans", inp["plan"])
    action = inp["action"]
    operation = OPERATION_OF_ACTION.get(action)
    tasks = [_task("PlanPrerequisitesTask", "Prerequisites check")]
    if action == "plannedFailover":
        tasks.append(_task("ShutdownVmsTask", "Shut down the virtual machines"))
        tasks.append(_task("FinalSyncTask", "Synchronize the final changes"))
    if operation is not None:
        tasks.append(_task("ChoosePointsTask", "Choose the recovery points"))
        for index, group in enumerate(plan["groups"]):
            boot = group["groupType"] == "Boot"
            number = index - 1  # Boot groups are numbered from 1, after Shutdown and Failover
            label = f"Group {number}" if boot else group["groupType"]
            for phase in ("startGroupActions", "endGroupActions"):
                if phase == "endGroupActions" and boot and group["replicationProtectedItems"]:
                    tasks.append(
                        _task(
                            "BootGroupTask",
                            f"{label}: fail over and start the virtual machines",
                            {"group": index},
                            name=f"BootGroup{number}Task",
                        )
                    )
                for action_spec in group.get(phase) or []:
                    if operation in action_spec["failoverTypes"] and (
                        "PrimaryToRecovery" in action_spec["failoverDirections"]
                    ):
                        tasks.append(_action_task(label, index, phase, action_spec))
    elif action == "testFailoverCleanup":
        tasks.append(_task("CleanupTestVmsTask", "Clean up the test virtual machines"))
    elif action == "failoverCancel":
        tasks.append(_task("DeleteVmsTask", "Delete the Azure virtual machines"))
    elif action == "failoverCommit":
        tasks.append(_task("CommitItemsTask", "Commit the failover of every virtual machine"))
    return tasks


def _task(spec: str, friendly: str, args: dict | None = None, name: str | None = None) -> dict:
    return {"spec": spec, "name": name or spec, "friendlyName": friendly, "args": args or {}}


def _action_task(label: str, index: int, phase: str, action: dict) -> dict:
    details = action["customDetails"]
    where = "start" if phase == "startGroupActions" else "end"
    name = f"{label} {where} action: {action['actionName']}"
    task_name = f"Group{index}{where.title()}Action_{action['actionName']}"
    if details["instanceType"] == "ManualActionDetails":
        task = _task("ManualActionTask", name, {"action": action["actionName"]}, task_name)
        task["instructions"] = details.get("description") or action["actionName"]
        return task
    return _task(
        "ScriptActionTask",
        name,
        {"action": action["actionName"], "group": index, "details": details},
        task_name,
    )


def _prerequisites(vault, job, db) -> None:
    _docs(vault, job)


def _shutdown_payload(vault, job, kind) -> dict:
    return {
        "vms": [
            {"vmId": d.get("protectableItemName"), "vmName": d["friendlyName"]}
            for d in _docs(vault, job)
        ]
    }


def _final_sync(vault, job) -> dict:
    out = {}
    for entry in job["input"]["items"]:
        got = failover_vm.wait_final_sync(vault, _item_job(job, entry))
        out[f"point:{entry['item']}"] = got["final_point"]
    return out


def _choose_points(vault, job) -> dict:
    inp = job["input"]
    if inp["action"] == "plannedFailover":
        chosen = {e["item"]: job["output"][f"point:{e['item']}"] for e in inp["items"]}
    else:
        chosen = plan_points.choose(
            vault, _docs(vault, job), inp["pointType"], inp.get("multiVmSync")
        )
    return {f"point:{name}": point for name, point in chosen.items()}


def _boot_group(vault, job, task) -> dict:
    group = task["args"]["group"]
    entries = [e for e in job["input"]["items"] if e["group"] == group]
    make = (
        failover_vm.create_test_vm
        if job["input"]["action"] == "testFailover"
        else failover_vm.create_failover_vm
    )

    def one(entry):
        point = job["output"][f"point:{entry['item']}"]
        return entry["item"], make(vault, _item_job(job, entry, point=point))

    with concurrent.futures.ThreadPoolExecutor(min(BOOT_WORKERS, len(entries) or 1)) as pool:
        results = list(pool.map(one, entries))
    return {f"made:{item}": made for item, made in results}


def _script_action(vault, job, task) -> dict:
    return plan_actions.run_script(vault, job, task)


def _cleanup_test_vms(vault, job) -> dict:
    for entry in job["input"]["items"]:
        failover_vm.delete_test_vm(vault, _item_job(job, entry))
    return {}


def _delete_vms(vault, job) -> dict:
    for entry in job["input"]["items"]:
        failover_vm.delete_failover_vm(vault, _item_job(job, entry))
    return {}


def _commit_items(vault, job, db) -> None:
    for entry in job["input"]["items"]:
        failover_jobs._commit(vault, _item_job(job, entry), db)


# -- the item and plan states ---------------------------------------------------------------------
def _on_create(vault, job, db) -> None:
    plan = plans.require_plan(vault, job["input"]["plan"])
    plans.check_allowed(vault, plan, job["input"]["action"])
    current = {"scenarioName": job["scenarioName"], "name": job["name"], "start": job["start"]}
    for doc in _docs(vault, job):
        doc["currentJob"] = current
        if job["input"]["action"] == "testFailoverCleanup":
            doc["testFailoverState"] = failover.TEST_CLEANING
        _save(vault, db, doc)
    plan["currentJob"] = current
    vault.store.put(db, "recovery_plans", (plan["name"],), plan)


def _finish_plan(vault, job, db, state: str, **changes) -> None:
    plan = vault.store.get("recovery_plans", job["input"]["plan"])
    if plan is None:
        return
    plan["currentJob"] = None
    plan["lastJob"] = {"name": job["name"], "state": state}
    plan.update(changes)
    vault.store.put(db, "recovery_plans", (plan["name"],), plan)


ITEM_SUCCEEDED = {
    "testFailover": failover_jobs._on_test_failover,
    "testFailoverCleanup": failover_jobs._on_test_cleanup,
    "unplannedFailover": failover_jobs._on_failover,
    "plannedFailover": failover_jobs._on_failover,
    "failoverCancel": failover_jobs._on_cancel,
}
LAST_TIME = {
    "testFailover": "lastTestFailoverTime",
    "unplannedFailover": "lastUnplannedFailoverTime",
    "plannedFailover": "lastPlannedFailoverTime",
}


def _on_succeeded(vault, job, db) -> None:
    action = job["input"]["action"]
    finish = ITEM_SUCCEEDED.get(action)
    for entry in job["input"]["items"]:
        if finish is not None:
            finish(vault, _item_job(job, entry), db)
        else:  # commit: the items' states were set by the commit task
            doc = vault.store.get(
                "protected_items", entry["fabric"], entry["container"], entry["item"]
            )
            doc["currentJob"] = None
            _save(vault, db, doc)
    changes = {LAST_TIME[action]: vault.clock.time()} if action in LAST_TIME else {}
    _finish_plan(vault, job, db, "Succeeded", **changes)


def _on_failed(vault, job, db) -> None:
    """Release the items; the VMs a failed test failover made stay for its cleanup."""
    action = job["input"]["action"]
    made_any = False
    for entry in job["input"]["items"]:
        doc = vault.store.get("protected_items", entry["fabric"], entry["container"], entry["item"])
        if doc is None:
            continue
        doc["currentJob"] = None
        made = (job.get("output") or {}).get(f"made:{entry['item']}")
        if action == "testFailoverCleanup" or (action == "testFailover" and made):
            doc["testFailoverState"] = failover.TEST_WAITING
            if made:
                doc["testFailover"] = made
            made_any = True
        _save(vault, db, doc)
    if action == "testFailover" and made_any:
        # Cleanup must reach every item: mark the rest as waiting too (deleting nothing).
        for entry in job["input"]["items"]:
            doc = vault.store.get(
                "protected_items", entry["fabric"], entry["container"], entry["item"]
            )
            if doc is not None and doc.get("testFailoverState") != failover.TEST_WAITING:
                doc["testFailoverState"] = failover.TEST_WAITING
                _save(vault, db, doc)
    _finish_plan(vault, job, db, "Failed")


TEMPLATES = (
    TaskSpec("PlanPrerequisitesTask", "Prerequisites check", run=_prerequisites),
    TaskSpec(
        "ShutdownVmsTask",
        "Shut down the virtual machines",
        runner="provider",
        work_item="ShutdownVm",
    ),
    TaskSpec("FinalSyncTask", "Synchronize the final changes", runner="azure", run=_final_sync),
    TaskSpec("ChoosePointsTask", "Choose the recovery points", runner="azure", run=_choose_points),
    TaskSpec(
        "BootGroupTask",
        "Fail over and start the group's virtual machines",
        runner="azure",
        run=_boot_group,
        with_task=True,
    ),
    TaskSpec("ManualActionTask", "Manual action", runner="manual"),
    TaskSpec(
        "ScriptActionTask", "Script action", runner="azure", run=_script_action, with_task=True
    ),
    TaskSpec(
        "CleanupTestVmsTask",
        "Clean up the test virtual machines",
        runner="azure",
        run=_cleanup_test_vms,
    ),
    TaskSpec("DeleteVmsTask", "Delete the Azure virtual machines", runner="azure", run=_delete_vms),
    TaskSpec("CommitItemsTask", "Commit the failover", run=_commit_items),
)


def _kind(name: str, scenario: str, friendly: str) -> JobKind:
    return JobKind(
        name=name,
        scenario=scenario,
        friendly_name=friendly,
        target_type="RecoveryPlan",
        tasks=TEMPLATES,
        on_create=_on_create,
        on_succeeded=_on_succeeded,
        on_failed=_on_failed,
        work_item_payload=_shutdown_payload,
        expand=expand,
        provider="InMageAzureV2",
    )


KINDS = (
    _kind("RecoveryPlanTestFailover", "TestFailover", "Test failover"),
    _kind("RecoveryPlanTestFailoverCleanup", "TestFailoverCleanup", "Cleanup test failover"),
    _kind("RecoveryPlanUnplannedFailover", "UnplannedFailover", "Failover"),
    _kind("RecoveryPlanPlannedFailover", "PlannedFailover", "Planned failover"),
    _kind("RecoveryPlanFailoverCommit", "CommitFailover", "Commit"),
    _kind("RecoveryPlanFailoverCancel", "CancelFailover", "Cancel failover"),
)

JOB_OF_ACTION = {
    "testFailover": "RecoveryPlanTestFailover",
    "testFailoverCleanup": "RecoveryPlanTestFailoverCleanup",
    "unplannedFailover": "RecoveryPlanUnplannedFailover",
    "plannedFailover": "RecoveryPlanPlannedFailover",
    "failoverCommit": "RecoveryPlanFailoverCommit",
    "failoverCancel": "RecoveryPlanFailoverCancel",
}


def check_point_type(value) -> str:
    if value not in plan_points.TYPES:
        raise InvalidInput(f"'recoveryPointType' must be one of {', '.join(plan_points.TYPES)}.")
    return value
