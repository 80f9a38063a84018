"""Resynchronization of a protected item (repairReplication) and resolving its health errors.

- repairReplication = the "Resynchronize" job (scenarioName `RepairReplication`): Prerequisites
  check (vault) -> Resynchronizing (the configuration server, work item `ResyncProtection`: it
  hands the mobility agent a new resync generation and waits until the agent reports that
  generation Completed or Failed) -> Waiting for a recovery point after resynchronization
  (vault, a `poll` task: the worker makes a crash-consistent point at the tag the configuration
  server names, `rs-complete-<epoch>-<generation>`). A manual resync may be asked whenever the
  item is `Protected`; one item has at most one resync job at a time (409 otherwise). The
  automatic ones are started by `resync_schedule.ResyncScheduler` in the off-hours window.
- resolveHealthErrors = the "Resolve health errors" job: the named errors (by `errorId`) are
  removed from the item at once and recorded in `replication.resolvedHealthErrors` {errorId:
  lab time}; the worker does not raise an error whose id is recorded there.

What the vault keeps on the item: `resyncJob` {name, start, automatic} while a resync job
runs (shown as `currentScenario`), `lastResync` {job, generation, tag, point, automatic, end}
after one succeeded, `automaticResyncFailedAt` (lab time) after an automatic one failed. The
resync fields of the item and its disks (resyncRequired, progress, bytes) are the worker's,
from what the configuration server reports of the agent (`mobility_agents`, `resync`).

Not emulated: cancelling a resync (the agent would finish its pass anyway), resync of a
recovery plan or of a protection cluster.
"""

from __future__ import annotations

import time

from ..errors import Conflict, InvalidInput, OperationNotAllowed, SiteRecoveryError
from . import recovery_points as points
from .failover import allowed_operations
from .jobs import TERMINAL, JobKind, TaskSpec
from .protected_items import STATES, _item_of, _save

REPAIR_JOB = "RepairReplication"
RESOLVE_JOB = "ResolveHealthErrors"
REPAIR_OPERATION = "RepairReplication"  # as allowedOperations names it
WORK_ITEM = "ResyncProtection"
POINT_TIMEOUT = 600.0  # wall seconds for the worker's point after the agent's resync
AFFECTED = {"PrimaryFabricProviderId": "VMware", "RecoveryFabricProviderId": "Azure"}


# -- what the agent reports (through the configuration server's heartbeat) ----------------------
def agent_resync(vault, doc: dict) -> dict:
    """The agent's resync status as the configuration server last reported it ({} if none)."""
    agent = vault.store.get("mobility_agents", doc["fabric"], doc.get("protectableItemName") or "")
    resync = (agent or {}).get("resync")
    return resync if isinstance(resync, dict) else {}


def resync_required(resync: dict) -> bool:
    return bool(resync.get("required"))


def running_job(vault, doc: dict) -> dict | None:
    """The item's resync job that has not finished, if any."""
    current = doc.get("resyncJob")
    if not current:
        return None
    job = vault.jobs.job(current["name"])
    return job if job is not None and job["state"] not in TERMINAL else None


# -- repairReplication ----------------------------------------------------------------------------
def check_repair(vault, doc: dict) -> None:
    """A resync may be asked while the item is Protected, and not twice at once."""
    if doc["protectionState"] != "Protected" or doc.get("activeLocation", "Primary") != "Primary":
        allowed = allowed_operations(doc, list(STATES.get(doc["protectionState"], ("", []))[1]))
        raise OperationNotAllowed(
            f"The operation '{REPAIR_OPERATION}' is not allowed for the protected item "
            f"'{doc['friendlyName']}' in its current state ({doc['protectionState']}): a resync "
            "is only possible while it is Protected. Allowed operations: "
            f"{', '.join(allowed) or 'none while a job runs'}."
        )
    job = running_job(vault, doc)
    if job is not None:
        how = "started automatically" if doc["resyncJob"].get("automatic") else "asked for"
        raise Conflict(
            f"A resynchronization of '{doc['friendlyName']}' is already running (job "
            f"'{job['name']}', {how}); wait for it to finish."
        )


def start_repair(vault, doc: dict, automatic: bool = False) -> dict:
    """Start the Resynchronize job of one item (the API's and the scheduler's way in)."""
    trigger = "Automatic" if automatic else "Manual"
    return _start(vault, doc, REPAIR_JOB, {"automatic": automatic}, ResyncTrigger=trigger)


def _item_input(doc: dict) -> dict:
    return {"fabric": doc["fabric"], "container": doc["container"], "item": doc["name"]}


def _start(vault, doc: dict, kind: str, extra: dict, **affected) -> dict:
    """A job on one protected item (its input names the item)."""
    path = vault.scope.protected_item(doc["fabric"], doc["container"], doc["name"])
    return vault.jobs.start(
        kind,
        input={**_item_input(doc), **extra},
        target_id=path,
        target_name=doc["friendlyName"],
        result_path=path,
        fabric=doc["fabric"],
        affected={**AFFECTED, **affected},
    )


def _on_create_repair(vault, job, db) -> None:
    doc = _item_of(vault, job)
    check_repair(vault, doc)
    doc["resyncJob"] = {
        "name": job["name"],
        "start": job["start"],
        "automatic": bool(job["input"].get("automatic")),
    }
    _save(vault, db, doc)


def _prerequisites(vault, job, db) -> None:
    doc = _item_of(vault, job)
    if doc["protectionState"] != "Protected":
        raise SiteRecoveryError(
            f"The protected item '{doc['friendlyName']}' is {doc['protectionState']}, no longer "
            "Protected.",
            code="ResyncNotPossible",
        )


def _repair_payload(vault, job, kind) -> dict:
    doc = _item_of(vault, job)
    return {
        "protectedItemName": doc["name"],
        "protectedItemId": vault.scope.protected_item(doc["fabric"], doc["container"], doc["name"]),
        "vmId": doc.get("protectableItemName"),
        "vmName": doc["friendlyName"],
        "processServerId": (doc.get("enableInput") or {}).get("processServerId"),
        "automatic": bool(job["input"].get("automatic")),
    }


def _on_resynced(vault, job, item, result, db) -> None:
    job.setdefault("output", {})["resync"] = result
    # Shown in the job's customDetails.affectedObjectDetails (a free-form string map).
    job["affected"].update(
        ResyncGeneration=str(result.get("generation")), ResyncTag=str(result.get("tag"))
    )


def _wait_for_point(vault, job, db) -> dict | None:
    """Done when the item has the recovery point at the tag the configuration server named."""
    doc = _item_of(vault, job)
    output = job.setdefault("output", {})
    tag = (output.get("resync") or {}).get("tag")
    if not tag:
        raise SiteRecoveryError(
            "The configuration server reported the resync done but named no recovery point tag.",
            code="ResyncTagMissing",
        )
    for p in points.list_points(vault, doc["fabric"], doc["container"], doc["name"]):
        if (p.get("details") or {}).get("tag_id") == tag:
            return {"point": p["name"], "pointTime": p["time"]}
    # Wall time: it is about the worker being alive, whatever the lab clock does.
    deadline = output.setdefault("pointDeadline", time.time() + POINT_TIMEOUT)
    if time.time() > deadline:
        raise SiteRecoveryError(
            f"No recovery point at the resync's tag '{tag}' arrived within "
            f"{POINT_TIMEOUT / 60:g} minutes after the mobility agent finished resynchronizing.",
            code="ResyncRecoveryPointTimedOut",
            possibleCauses="The Site Recovery service is not processing the VM's replication "
            "data (worker down, cache storage account unreachable, upload backlog).",
            recommendedAction="Check the process server's upload backlog and the Site Recovery "
            "worker, then resynchronize again.",
        )
    return None


def _on_repair_succeeded(vault, job, db) -> None:
    out = job.get("output") or {}
    resync = out.get("resync") or {}
    if out.get("point"):
        job["affected"]["RecoveryPointName"] = out["point"]
    doc = vault.store.get("protected_items", *_key(job))
    if doc is None:
        return
    doc["resyncJob"] = None
    doc["lastResync"] = {
        "job": job["name"],
        "generation": resync.get("generation"),
        "tag": resync.get("tag"),
        "point": out.get("point"),
        "automatic": bool(job["input"].get("automatic")),
        "end": vault.clock.time(),
    }
    _save(vault, db, doc)


def _on_repair_failed(vault, job, db) -> None:
    doc = vault.store.get("protected_items", *_key(job))
    if doc is None:
        return
    if (doc.get("resyncJob") or {}).get("name") == job["name"]:
        doc["resyncJob"] = None
    if job["input"].get("automatic"):
        # Not tried again automatically before the next window opens (resync_schedule).
        doc["automaticResyncFailedAt"] = vault.clock.time()
    _save(vault, db, doc)


def _key(job) -> tuple[str, str, str]:
    inp = job["input"]
    return inp["fabric"], inp["container"], inp["item"]


REPAIR = JobKind(
    name=REPAIR_JOB,
    scenario="RepairReplication",
    friendly_name="Resynchronize",
    target_type="ProtectionEntity",
    tasks=(
        TaskSpec("PrerequisitesCheckTask", "Prerequisites check", run=_prerequisites),
        TaskSpec("ResynchronizeTask", "Resynchronizing", runner="provider", work_item=WORK_ITEM),
        TaskSpec(
            "WaitForResyncRecoveryPointTask",
            "Waiting for a recovery point after resynchronization",
            runner="poll",
            run=_wait_for_point,
        ),
    ),
    on_create=_on_create_repair,
    on_succeeded=_on_repair_succeeded,
    on_failed=_on_repair_failed,
    work_item_payload=_repair_payload,
    on_work_item_succeeded=_on_resynced,
    provider="InMageAzureV2",
)


# -- resolveHealthErrors --------------------------------------------------------------------------
def check_resolve(doc: dict, body) -> list[str]:
    """The health error ids of a ResolveHealthInput, each one the item shows; errors change
    nothing."""
    props = body.get("properties") if isinstance(body, dict) else None
    errors = props.get("healthErrors") if isinstance(props, dict) else None
    if not isinstance(errors, list) or not errors:
        raise InvalidInput(
            'The request body must be {"properties": {"healthErrors": [{"healthErrorId": '
            '"..."}]}} naming at least one health error.'
        )
    wanted = []
    for i, e in enumerate(errors):
        error_id = e.get("healthErrorId") if isinstance(e, dict) else None
        if not isinstance(error_id, str) or not error_id.strip():
            raise InvalidInput(f"'healthErrors[{i}].healthErrorId' must be a health error id.")
        if error_id not in wanted:
            wanted.append(error_id)
    known = [e.get("errorId") for e in doc.get("healthErrors") or [] if e.get("errorId")]
    unknown = [i for i in wanted if i not in known]
    if unknown:
        raise InvalidInput(
            f"The protected item '{doc['friendlyName']}' has no health error "
            f"{', '.join(repr(i) for i in unknown)} (its health errors: "
            f"{', '.join(known) or 'none'})."
        )
    return wanted


def start_resolve(vault, doc: dict, error_ids: list[str]) -> dict:
    return _start(vault, doc, RESOLVE_JOB, {"healthErrorIds": error_ids})


def _on_create_resolve(vault, job, db) -> None:
    # At once, with the job: the next GET of the item no longer shows them.
    doc = _item_of(vault, job)
    ids = job["input"]["healthErrorIds"]
    now = vault.clock.time()
    resolved = doc.setdefault("replication", {"disks": {}}).setdefault("resolvedHealthErrors", {})
    for error_id in ids:
        resolved[error_id] = now
    doc["healthErrors"] = [e for e in doc.get("healthErrors") or [] if e.get("errorId") not in ids]
    _save(vault, db, doc)


def _check_resolved(vault, job, db) -> None:
    _item_of(vault, job)


RESOLVE = JobKind(
    name=RESOLVE_JOB,
    scenario="ResolveHealthErrors",
    friendly_name="Resolve health errors",
    target_type="ProtectionEntity",
    tasks=(TaskSpec("ResolveHealthErrorsTask", "Resolving health errors", run=_check_resolved),),
    on_create=_on_create_resolve,
    restartable=False,
    provider="InMageAzureV2",
)

KINDS = (REPAIR, RESOLVE)
