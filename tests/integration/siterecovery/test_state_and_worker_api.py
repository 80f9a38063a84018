"""Durable state: the ARM process restarted keeps everything (and finishes a job it was running);
the Site Recovery worker's Python API writes replication state that the SDK then reads."""

from __future__ import annotations

import json

import pytest
from azure.mgmt.recoveryservicessiterecovery import models as m

from fakes.azure.siterecovery.replication_state import ReplicationState, health_error
from lab import launcher
from tests.helpers import wait_for

from .conftest import make_cs, unique
from .cs_client import vm
from .test_sdk_vmware_to_azure import Site, policy_input


def test_restarted_arm_keeps_its_state_and_finishes_running_jobs(own_arm_lab, sdk_for, responses):
    lab = own_arm_lab
    sdk = sdk_for(lab)
    vault = (lab.info["resource_group"], lab.info["vault"])
    key_before = json.loads(lab.credentials_file.read_text())["registrationKey"]
    cs = make_cs(lab, responses)
    cs.register()
    cs.heartbeat()
    cs.serve()
    try:
        site = Site(sdk, vault, cs, [vm("lin-keep-01")])
    finally:
        cs.stop()
    item = site.protectable()[0]
    # an enable job waiting for the configuration server when the process goes down
    sdk.replication_protected_items.begin_create(
        *vault,
        site.fabric,
        site.container,
        item.name,
        site.enable_input(item, lab.info["subscription_id"]),
        polling=False,
    )
    launcher.restart_service(lab.state_dir, "arm", kill=True)

    assert json.loads(lab.credentials_file.read_text())["registrationKey"] == key_before
    assert sdk.replication_policies.get(*vault, site.policy.name).name == site.policy.name
    fabric = sdk.replication_fabrics.get(*vault, site.fabric)
    assert fabric.properties.custom_details.process_servers[0].id == cs.ps_id
    assert [i.name for i in site.protectable()] == [item.name]
    rpi = sdk.replication_protected_items.get(*vault, site.fabric, site.container, item.name)
    assert rpi.properties.protection_state == "EnablingProtection"
    # the configuration server comes back and does the work; the job completes
    delivered = wait_for(
        lambda: cs.work_items(wait=1), timeout=15, message="the enable work item after the restart"
    )
    assert delivered[0]["kind"] == "EnableProtection"
    cs.succeed(cs, delivered[0])
    wait_for(
        lambda: (
            sdk.replication_protected_items.get(
                *vault, site.fabric, site.container, item.name
            ).properties.protection_state
            == "InitialReplicationPending"
        ),
        timeout=15,
        message="the enable job to finish after the restart",
    )


@pytest.fixture
def protected(sdk, vault, cs, arm_lab):
    site = Site(sdk, vault, cs, [vm("lin-rep-01", disks=(4, 8))])
    item = site.protectable()[0]
    sdk.replication_protected_items.begin_create(
        *vault,
        site.fabric,
        site.container,
        item.name,
        site.enable_input(item, arm_lab.info["subscription_id"]),
    ).result()
    return site, item


def test_worker_api_writes_what_the_sdk_reads(protected, sdk, vault, arm_lab):
    site, item = protected
    state = ReplicationState.for_lab(arm_lab.state_dir)
    try:
        view = next(v for v in state.protected_items() if v.vm_id == item.name)
        assert view.protection_state == "InitialReplicationPending"
        assert view.policy["crashConsistentFrequencyInMinutes"] == 5
        assert [d["capacityInBytes"] for d in view.disks] == [4 * 2**30, 8 * 2**30]
        assert view.process_server_id == site.cs.ps_id
        disk0 = view.disks[0]["diskId"]

        state.update_item(
            view.key,
            protection_state="InitialReplicationInProgress",
            protection_stage="Resync",
            resync_progress_percentage=40,
        )
        state.update_disk(
            view.key,
            disk0,
            protection_stage="Resync",
            resync_progress_percentage=40,
            resync_required=False,
        )
        rpi = sdk.replication_protected_items.get(
            *vault, site.fabric, site.container, view.key.name
        )
        details = rpi.properties.provider_specific_details
        assert rpi.properties.protection_state == "InitialReplicationInProgress"
        assert details.resync_progress_percentage == 40
        assert details.protected_disks[0].resync_progress_percentage == 40
        assert details.protected_disks[0].resync_required == "False"

        t = 1_800_000_000.0
        state.update_item(
            view.key,
            protection_state="Protected",
            protection_stage="Protected",
            rpo_in_seconds=37,
            last_rpo_calculated_time=t,
            seed_managed_disks={
                disk0: "/subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/disks/seed-0"
            },
        )
        first = state.add_recovery_point(view.key, time=t - 300, type="CrashConsistent")
        second = state.add_recovery_point(
            view.key,
            time=t,
            type="AppConsistent",
            multi_vm_sync_point=True,
            details={"snapshot": "s1"},
        )
        state.set_health_errors(
            view.key,
            [
                health_error(
                    "78144",
                    "No app-consistent recovery point in the last 4 hours.",
                    level="Warning",
                )
            ],
        )
        state.add_event(
            event_type="VmHealth",
            severity="Warning",
            description="Virtual machine health is warning",
            time=t,
            item=view.key,
        )

        rpi = sdk.replication_protected_items.get(
            *vault, site.fabric, site.container, view.key.name
        )
        details = rpi.properties.provider_specific_details
        assert rpi.properties.protection_state == "Protected"
        assert rpi.properties.allowed_operations == [
            "PlannedFailover",  # as the real service lists them (its Get example)
            "UnplannedFailover",
            "DisableProtection",
            "TestFailover",
        ]
        assert details.rpo_in_seconds == 37
        assert details.last_recovery_point_received.timestamp() == t
        assert details.protected_managed_disks[0].seed_managed_disk_id.endswith("/seed-0")
        assert rpi.properties.health_errors[0].error_code == "78144"
        points = list(
            sdk.recovery_points.list_by_replication_protected_items(
                *vault, site.fabric, site.container, view.key.name
            )
        )
        assert [p.name for p in points] == [second, first]  # newest first
        assert points[0].properties.recovery_point_type == "AppConsistent"
        assert points[0].properties.provider_specific_details.is_multi_vm_sync_point == "True"
        one = sdk.recovery_points.get(*vault, site.fabric, site.container, view.key.name, first)
        assert one.properties.recovery_point_type == "CrashConsistent"
        events = list(sdk.replication_events.list(*vault, filter="EventType eq 'VmHealth'"))
        assert any(e.properties.affected_object_friendly_name == "lin-rep-01" for e in events)

        state.update_disk(view.key, disk0, resync_required=True)
        rpi = sdk.replication_protected_items.get(
            *vault, site.fabric, site.container, view.key.name
        )
        assert "RepairReplication" in rpi.properties.allowed_operations

        assert state.prune_recovery_points(view.key, keep=lambda p: p["time"] >= t) == [first]
        with pytest.raises(ValueError):
            state.update_item(view.key, protection_state="Sunny")
    finally:
        state.close()


def test_agent_heartbeat_fills_the_protected_item(protected, sdk, vault):
    site, item = protected
    site.cs.heartbeat(
        mobilityAgents=[
            {
                "vmId": item.name,
                "agentVersion": "9.61.0.0",
                "lastHeartbeat": "2027-01-15T08:00:00Z",
                "registered": True,
            }
        ]
    )
    rpi = sdk.replication_protected_items.get(*vault, site.fabric, site.container, item.name)
    details = rpi.properties.provider_specific_details
    assert details.agent_version == "9.61.0.0"
    assert details.last_heartbeat.isoformat().startswith("2027-01-15T08:00:00")
    protectable = sdk.replication_protectable_items.get(
        *vault, site.fabric, site.container, item.name
    )
    assert protectable.properties.custom_details.agent_installed == "True"


def test_a_second_enable_of_the_same_vm_is_refused(protected, sdk, vault, arm_lab):
    site, item = protected
    from azure.core.exceptions import ResourceExistsError

    with pytest.raises(ResourceExistsError) as info:
        sdk.replication_protected_items.begin_create(
            *vault,
            site.fabric,
            site.container,
            unique("again"),
            site.enable_input(item, arm_lab.info["subscription_id"]),
        ).result()
    assert info.value.error.code == "ProtectionAlreadyEnabled"
    jobs = list(
        sdk.replication_jobs.list(
            *vault, filter="JobName eq 'EnableDr' and JobStatus eq 'Succeeded'"
        )
    )
    assert any(j.properties.target_object_name == "lin-rep-01" for j in jobs)
    assert m.Job  # the SDK's model type, for readers


def test_policy_put_on_an_existing_name_replaces_its_settings(sdk, vault):
    name = unique("policy")
    sdk.replication_policies.begin_create(*vault, name, policy_input()).result()
    sdk.replication_policies.begin_create(
        *vault, name, policy_input(app_consistent_frequency_in_minutes=120)
    ).result()
    assert (
        sdk.replication_policies.get(
            *vault, name
        ).properties.provider_specific_details.app_consistent_frequency_in_minutes
        == 120
    )
    assert (
        sdk.replication_policies.get(
            *vault, f"{name}-failback"
        ).properties.provider_specific_details.app_consistent_frequency_in_minutes
        == 120
    )
