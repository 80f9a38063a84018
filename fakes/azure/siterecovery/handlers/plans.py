"""replicationRecoveryPlans: create, update, get, list, delete, and the plan's failovers (each
a job; see models/plans.py and models/plan_jobs.py). Reprotect (failback) is not emulated."""

from __future__ import annotations

from ..errors import InvalidInput, ProviderNotEmulated
from ..models import plan_jobs, plans
from . import operation
from .common import accepted_job, ok, paged
from .failover import (
    check_direction,
    comments_of,
    properties,
    source_site_operations,
    test_network,
)


@operation("ReplicationRecoveryPlans_Get")
def get_plan(service, req):
    vault = service.vault
    return ok(plans.plan_json(vault, plans.require_plan(vault, req.params["recoveryPlanName"])))


@operation("ReplicationRecoveryPlans_List")
def list_plans(service, req):
    vault = service.vault
    docs = vault.store.docs("recovery_plans", order="name")
    return paged(
        req, docs, key=lambda d: d["name"].lower(), render=lambda d: plans.plan_json(vault, d)
    )


def _start(service, req, kind: str, plan_name: str, **inp):
    vault = service.vault
    job = vault.jobs.start(
        kind,
        input={"plan": plan_name, **inp},
        target_id=vault.scope.recovery_plan(plan_name),
        target_name=plan_name,
        result_path=vault.scope.recovery_plan(plan_name),
        fabric=inp.get("fabric"),
        affected={"RecoveryPlan": plan_name},
    )
    return accepted_job(service, req, job)


@operation("ReplicationRecoveryPlans_Create")
def create_plan(service, req):
    name = req.params["recoveryPlanName"]
    doc = plans.check_create_input(service.vault, name, req.json())
    return _start(service, req, "CreateRecoveryPlan", name, doc=doc)


@operation("ReplicationRecoveryPlans_Update")
def update_plan(service, req):
    vault = service.vault
    name = req.params["recoveryPlanName"]
    plan = plans.require_plan(vault, name)
    body = req.json()
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict) or "groups" not in props:
        raise InvalidInput('The request body must be {"properties": {"groups": [...]}}.')
    doc = {**plan, "groups": plans.check_groups(vault, plan["fabric"], props["groups"])}
    return _start(service, req, "UpdateRecoveryPlan", name, doc=doc)


@operation("ReplicationRecoveryPlans_Delete")
def delete_plan(service, req):
    name = req.params["recoveryPlanName"]
    plans.require_plan(service.vault, name)
    return _start(service, req, "DeleteRecoveryPlan", name)


# -- the plan's failovers -----------------------------------------------------------------
def _provider_input(props: dict) -> tuple[str, bool | None]:
    """(recoveryPointType, useMultiVmSyncPoint) from the InMageAzureV2 provider input."""
    point_type, sync = "LatestProcessed", None
    for entry in props.get("providerSpecificDetails") or []:
        kind = entry.get("instanceType") if isinstance(entry, dict) else entry
        if kind != "InMageAzureV2":
            raise ProviderNotEmulated(f"The plan provider input '{kind}' is not emulated.")
        point_type = plan_jobs.check_point_type(entry.get("recoveryPointType") or point_type)
        value = entry.get("useMultiVmSyncPoint")
        if value is not None:
            if str(value) not in ("True", "False"):
                raise InvalidInput("'useMultiVmSyncPoint' must be 'True' or 'False'.")
            sync = str(value) == "True"
    return point_type, sync


def _run(service, req, action: str, **inp):
    vault = service.vault
    name = req.params["recoveryPlanName"]
    plan = plans.require_plan(vault, name)
    return _start(
        service,
        req,
        plan_jobs.JOB_OF_ACTION[action],
        name,
        fabric=plan["fabric"],
        action=action,
        items=plans.items_of(vault, plan),
        **inp,
    )


@operation("ReplicationRecoveryPlans_TestFailover")
def test_failover(service, req):
    props = properties(req)
    check_direction(props, default=None)  # required in a plan's input
    network = test_network(props)
    point_type, sync = _provider_input(props)
    return _run(
        service,
        req,
        "testFailover",
        networkId=network,
        pointType=point_type,
        multiVmSync=sync,
    )


@operation("ReplicationRecoveryPlans_TestFailoverCleanup")
def test_failover_cleanup(service, req):
    return _run(service, req, "testFailoverCleanup", comments=comments_of(properties(req)))


@operation("ReplicationRecoveryPlans_UnplannedFailover")
def unplanned_failover(service, req):
    props = properties(req)
    check_direction(props, default=None)
    source_site_operations(props)  # checked; the lab never needs the source site
    point_type, sync = _provider_input(props)
    return _run(service, req, "unplannedFailover", pointType=point_type, multiVmSync=sync)


@operation("ReplicationRecoveryPlans_PlannedFailover")
def planned_failover(service, req):
    props = properties(req)
    check_direction(props, default=None)
    _provider_input(props)  # checked; the final point after shutdown is what is used
    return _run(service, req, "plannedFailover", pointType="Latest", multiVmSync=None)


@operation("ReplicationRecoveryPlans_FailoverCommit")
def failover_commit(service, req):
    return _run(service, req, "failoverCommit")


@operation("ReplicationRecoveryPlans_FailoverCancel")
def failover_cancel(service, req):
    return _run(service, req, "failoverCancel")
