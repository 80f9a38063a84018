"""Recovery plans through the public SDK, as a user's script would write them: create one from
boot groups of VMs with manual and script actions, read it, and run its failovers.

A group is given as `{"vms": [...], "start": [actions], "end": [actions]}` where an action is
`{"name": ..., "manual": "instructions"}` or `{"name": ..., "script": "path", "timeout":
"PT5M"}`; group 1 boots first. Point types: Latest, LatestProcessed,
LatestApplicationConsistent, LatestCrashConsistent (`latest`, `latest-processed`,
`latest-app`, `latest-crash` in the CLI's words).
"""

from __future__ import annotations

from azure.mgmt.recoveryservicessiterecovery import models as m

from . import failover
from .asr import Asr
from .errors import AsrError

POINT_TYPES = {
    "latest": "Latest",
    "latest-processed": "LatestProcessed",
    "latest-app": "LatestApplicationConsistent",
    "latest-crash": "LatestCrashConsistent",
}
FAILOVER_TYPES = ["TestFailover", "PlannedFailover", "UnplannedFailover"]


def point_type(choice: str | None) -> str:
    if choice is None:
        return "LatestProcessed"
    if choice in POINT_TYPES.values():
        return choice
    try:
        return POINT_TYPES[choice.lower()]
    except KeyError:
        raise AsrError(
            f"a plan fails over to a point type ({', '.join(POINT_TYPES)}), not {choice!r}"
        ) from None


def _action(spec: dict) -> m.RecoveryPlanAction:
    if "script" in spec:
        details = m.RecoveryPlanScriptActionDetails(
            path=spec["script"], timeout=spec.get("timeout"), fabric_location="Recovery"
        )
    elif "manual" in spec:
        details = m.RecoveryPlanManualActionDetails(description=spec["manual"])
    else:
        raise AsrError(f"action {spec.get('name')!r}: give 'manual' instructions or a 'script'")
    return m.RecoveryPlanAction(
        action_name=spec["name"],
        failover_types=spec.get("failover_types") or FAILOVER_TYPES,
        failover_directions=["PrimaryToRecovery"],
        custom_details=details,
    )


def create(asr: Asr, name: str, groups: list[dict]):
    """Create (or replace) the plan; returns the poller."""
    site = asr.site()
    boot = []
    for group in groups:
        items = [asr.protected(vm) for vm in group["vms"]]
        boot.append(
            m.RecoveryPlanGroup(
                group_type="Boot",
                replication_protected_items=[
                    m.RecoveryPlanProtectedItem(
                        id=i.id, virtual_machine_id=i.properties.provider_specific_details.vm_id
                    )
                    for i in items
                ],
                start_group_actions=[_action(a) for a in group.get("start") or []],
                end_group_actions=[_action(a) for a in group.get("end") or []],
            )
        )
    fabric_id = (
        f"/subscriptions/{asr.subscription}/resourceGroups/{asr.rg}/providers/"
        f"Microsoft.RecoveryServices/vaults/{asr.vault}/replicationFabrics/{site.fabric}"
    )
    return asr.client.replication_recovery_plans.begin_create(
        asr.rg,
        asr.vault,
        name,
        m.CreateRecoveryPlanInput(
            properties=m.CreateRecoveryPlanInputProperties(
                primary_fabric_id=fabric_id,
                recovery_fabric_id="Microsoft Azure",
                failover_deployment_model="ResourceManager",
                groups=boot,
            )
        ),
    )


def get(asr: Asr, name: str):
    return asr.client.replication_recovery_plans.get(asr.rg, asr.vault, name)


def _provider(point: str | None, multi_vm_sync: bool | None):
    return [
        m.RecoveryPlanInMageAzureV2FailoverInput(
            recovery_point_type=point_type(point),
            use_multi_vm_sync_point=None
            if multi_vm_sync is None
            else ("True" if multi_vm_sync else "False"),
        )
    ]


def test_failover(asr: Asr, name: str, point: str | None = None, multi_vm_sync=None):
    return asr.client.replication_recovery_plans.begin_test_failover(
        asr.rg,
        asr.vault,
        name,
        m.RecoveryPlanTestFailoverInput(
            properties=m.RecoveryPlanTestFailoverInputProperties(
                failover_direction="PrimaryToRecovery",
                network_type="VmNetworkAsInput",
                network_id=failover.test_network_id(asr),
                provider_specific_details=_provider(point, multi_vm_sync),
            )
        ),
    )


def test_failover_cleanup(asr: Asr, name: str, comments: str | None = None):
    return asr.client.replication_recovery_plans.begin_test_failover_cleanup(
        asr.rg,
        asr.vault,
        name,
        m.RecoveryPlanTestFailoverCleanupInput(
            properties=m.RecoveryPlanTestFailoverCleanupInputProperties(comments=comments)
        ),
    )


def unplanned_failover(asr: Asr, name: str, point: str | None = None, multi_vm_sync=None):
    return asr.client.replication_recovery_plans.begin_unplanned_failover(
        asr.rg,
        asr.vault,
        name,
        m.RecoveryPlanUnplannedFailoverInput(
            properties=m.RecoveryPlanUnplannedFailoverInputProperties(
                failover_direction="PrimaryToRecovery",
                source_site_operations="NotRequired",
                provider_specific_details=_provider(point, multi_vm_sync),
            )
        ),
    )


def planned_failover(asr: Asr, name: str):
    return asr.client.replication_recovery_plans.begin_planned_failover(
        asr.rg,
        asr.vault,
        name,
        m.RecoveryPlanPlannedFailoverInput(
            properties=m.RecoveryPlanPlannedFailoverInputProperties(
                failover_direction="PrimaryToRecovery"
            )
        ),
    )


def commit(asr: Asr, name: str):
    return asr.client.replication_recovery_plans.begin_failover_commit(asr.rg, asr.vault, name)


def cancel(asr: Asr, name: str):
    return asr.client.replication_recovery_plans.begin_failover_cancel(asr.rg, asr.vault, name)


def running_job(asr: Asr, name: str):
    """The plan's job in progress or suspended (a manual action waits), or None."""
    plan = get(asr, name)
    current = plan.properties.current_scenario
    if current is None or not current.job_id:
        return None
    return asr.client.replication_jobs.get(asr.rg, asr.vault, current.job_id.rsplit("/", 1)[-1])


def resume(asr: Asr, job_name: str, comments: str | None = None):
    return asr.client.replication_jobs.begin_resume(
        asr.rg,
        asr.vault,
        job_name,
        m.ResumeJobParams(properties=m.ResumeJobParamsProperties(comments=comments)),
    )
