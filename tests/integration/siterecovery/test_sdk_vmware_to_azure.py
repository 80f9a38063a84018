"""The real azure-mgmt-recoveryservicessiterecovery 2.0.0 SDK against a running ARM process:
policies, vCenters, protectable items, enable and disable replication, jobs and events, with
an in-test configuration server on the provider channel."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.recoveryservicessiterecovery import models as m

from tests.helpers import wait_for

from .conftest import unique
from .cs_client import vm

LOG_ACCOUNT = (
    "/subscriptions/{sub}/resourceGroups/drlab-rg/providers/Microsoft.Storage/"
    "storageAccounts/drlabcache"
)
TARGET_RG = "/subscriptions/{sub}/resourceGroups/drlab-target"
TARGET_VNET = (
    "/subscriptions/{sub}/resourceGroups/drlab-target/providers/Microsoft.Network/"
    "virtualNetworks/dr-vnet"
)


def policy_input(**kw) -> m.CreatePolicyInput:
    settings = dict(
        recovery_point_history=1440,
        app_consistent_frequency_in_minutes=240,
        crash_consistent_frequency_in_minutes=5,
        recovery_point_threshold_in_minutes=60,
        multi_vm_sync_status="Enable",
    )
    settings.update(kw)
    return m.CreatePolicyInput(
        properties=m.CreatePolicyInputProperties(
            provider_specific_input=m.InMageAzureV2PolicyInput(**settings)
        )
    )


class Site:
    """A registered configuration server with a vCenter, discovered VMs and an associated policy."""

    def __init__(self, sdk, vault, cs, vms):
        self.sdk, self.cs = sdk, cs
        self.rg, self.vault = vault
        self.fabric = cs.fabric
        self.container = next(
            iter(
                sdk.replication_protection_containers.list_by_replication_fabrics(
                    self.rg, self.vault, self.fabric
                )
            )
        ).name
        self.policy = sdk.replication_policies.begin_create(
            self.rg, self.vault, unique("policy"), policy_input()
        ).result()
        sdk.replication_protection_container_mappings.begin_create(
            self.rg,
            self.vault,
            self.fabric,
            self.container,
            unique("mapping"),
            m.CreateProtectionContainerMappingInput(
                properties=m.CreateProtectionContainerMappingInputProperties(
                    target_protection_container_id="Microsoft Azure", policy_id=self.policy.id
                )
            ),
        ).result()
        self.vcenter = sdk.replicationv_centers.begin_create(
            self.rg,
            self.vault,
            self.fabric,
            "vcenter-01",
            m.AddVCenterRequest(
                properties=m.AddVCenterRequestProperties(
                    friendly_name="vcenter-01",
                    ip_address="127.0.0.1",
                    process_server_id=cs.ps_id,
                    port="443",
                    run_as_account_id="1",
                )
            ),
        ).result()
        self.vms = vms
        resp = cs.push_inventory("vcenter-01", vms)
        assert resp.status_code == 200, resp.text

    def protectable(self):
        return list(
            self.sdk.replication_protectable_items.list_by_replication_protection_containers(
                self.rg, self.vault, self.fabric, self.container
            )
        )

    def enable_input(self, item, sub: str) -> m.EnableProtectionInput:
        return m.EnableProtectionInput(
            properties=m.EnableProtectionInputProperties(
                policy_id=self.policy.id,
                protectable_item_id=item.id,
                provider_specific_details=m.InMageAzureV2EnableProtectionInput(
                    process_server_id=self.cs.ps_id,
                    master_target_id=self.cs.mt_id,
                    run_as_account_id="2",
                    disks_to_include=[
                        m.InMageAzureV2DiskInputDetails(disk_id=d.disk_id, disk_type="Standard_LRS")
                        for d in item.properties.custom_details.disk_details
                    ],
                    log_storage_account_id=LOG_ACCOUNT.format(sub=sub),
                    target_azure_v2_resource_group_id=TARGET_RG.format(sub=sub),
                    target_azure_network_id=TARGET_VNET.format(sub=sub),
                    target_azure_subnet_id="default",
                    target_azure_vm_name=item.properties.friendly_name,
                ),
            )
        )


@pytest.fixture
def site(sdk, vault, cs):
    return Site(
        sdk, vault, cs, [vm("lin-web-01"), vm("win-app-01", os_type="Windows", ip="10.10.0.11")]
    )


# -- policies ---------------------------------------------------------------------------------
def test_policy_is_created_with_its_failback_policy(sdk, vault):
    rg, name = vault
    policy_name = unique("policy")
    policy = sdk.replication_policies.begin_create(rg, name, policy_name, policy_input()).result()
    details = policy.properties.provider_specific_details
    assert isinstance(details, m.InMageAzureV2PolicyDetails)
    assert details.app_consistent_frequency_in_minutes == 240
    assert details.recovery_point_history == 1440
    assert details.multi_vm_sync_status == "Enable"
    assert policy.id.startswith("/Subscriptions/")
    failback = sdk.replication_policies.get(rg, name, f"{policy_name}-failback")
    assert failback.properties.provider_specific_details.instance_type == "InMage"
    names = {p.name for p in sdk.replication_policies.list(rg, name)}
    assert {policy_name, f"{policy_name}-failback"} <= names
    jobs = list(sdk.replication_jobs.list(rg, name, filter="JobName eq 'AddProtectionProfile'"))
    assert any(
        j.properties.target_object_name == policy_name and j.properties.state == "Succeeded"
        for j in jobs
    )


def test_app_consistent_frequency_under_an_hour_is_error_15040(sdk, vault):
    rg, name = vault
    policy_name = unique("policy")
    with pytest.raises(HttpResponseError) as info:
        sdk.replication_policies.begin_create(
            rg, name, policy_name, policy_input(app_consistent_frequency_in_minutes=30)
        ).result()
    assert info.value.status_code == 400
    assert info.value.error.code == "15040"
    assert "60 minutes" in info.value.error.message
    with pytest.raises(ResourceNotFoundError):
        sdk.replication_policies.get(rg, name, policy_name)


def test_retention_over_15_days_is_refused(sdk, vault):
    rg, name = vault
    with pytest.raises(HttpResponseError) as info:
        sdk.replication_policies.begin_create(
            rg, name, unique("policy"), policy_input(recovery_point_history=15 * 24 * 60 + 1)
        ).result()
    assert info.value.status_code == 400
    assert "15 days" in info.value.error.message


# -- fabrics, vCenters, protectable items ------------------------------------------------------
def test_registered_configuration_server_reads_back_with_vmware_details(sdk, vault, cs):
    rg, name = vault
    fabric = sdk.replication_fabrics.get(rg, name, cs.fabric)
    details = fabric.properties.custom_details
    assert isinstance(details, m.VMwareDetails)
    assert details.host_name == cs.host_name
    assert [ps.id for ps in details.process_servers] == [cs.ps_id]
    assert details.process_servers[0].health == "Normal"
    assert details.process_servers[0].available_space_in_bytes == 500 * 2**30
    assert [mt.id for mt in details.master_target_servers] == [cs.mt_id]
    containers = list(
        sdk.replication_protection_containers.list_by_replication_fabrics(rg, name, cs.fabric)
    )
    assert len(containers) == 1 and containers[0].properties.fabric_type == "VMware"
    fabrics = {f.properties.friendly_name for f in sdk.replication_fabrics.list(rg, name)}
    assert "Microsoft Azure" in fabrics


def test_process_server_health_follows_heartbeats_and_makes_an_event(sdk, vault, cs):
    rg, name = vault
    ps = cs.heartbeat()["fabric"]
    body = cs.heartbeat(
        processServers=[
            {
                "id": cs.ps_id,
                "name": "ps-warn",
                "health": "Warning",
                "cacheTotalBytes": 100,
                "cacheFreeBytes": 28,
            }
        ]
    )
    assert body["fabric"] == ps
    details = sdk.replication_fabrics.get(rg, name, cs.fabric).properties.custom_details
    assert details.process_servers[0].health == "Warning"
    assert details.process_servers[0].space_usage_status == "Yellow"
    events = list(
        sdk.replication_events.list(
            rg, name, filter="EventType eq 'ServerHealth' and Severity eq 'Warning'"
        )
    )
    assert any("ps-warn" in e.properties.description for e in events)


def test_vcenter_discovery_is_a_job_the_configuration_server_completes(site):
    vc = site.sdk.replicationv_centers.get(site.rg, site.vault, site.fabric, "vcenter-01")
    assert vc.properties.discovery_status == "Completed"
    assert vc.properties.process_server_id == site.cs.ps_id
    kinds = [item["kind"] for item in site.cs.handled]
    assert "AddVCenter" in kinds


def test_protectable_items_follow_the_inventory(site):
    items = {i.properties.friendly_name: i for i in site.protectable()}
    assert set(items) == {"lin-web-01", "win-app-01"}
    win = items["win-app-01"]
    assert win.properties.protection_status == "Unprotected"
    assert win.properties.custom_details.os_type == "Windows"
    assert len(win.properties.custom_details.disk_details) == 2
    new_vm = vm("lin-db-01", ip="10.10.0.22")
    answer = site.cs.push_inventory("vcenter-01", [*site.vms, new_vm]).json()
    assert answer["added"] == 1 and answer["unchanged"] == 2
    assert "lin-db-01" in {i.properties.friendly_name for i in site.protectable()}
    answer = site.cs.push_inventory("vcenter-01", [new_vm]).json()
    assert answer["removed"] == 2
    assert {i.properties.friendly_name for i in site.protectable()} == {"lin-db-01"}


def test_inventory_for_an_unknown_vcenter_is_refused(site):
    resp = site.cs.push_inventory("no-such-vcenter", [vm("x")])
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "ResourceNotFound"


# -- enable and disable replication -----------------------------------------------------------
def test_enable_replication_runs_the_enable_job_through_the_configuration_server(site, arm_lab):
    sub = arm_lab.info["subscription_id"]
    item = next(i for i in site.protectable() if i.properties.friendly_name == "lin-web-01")
    name = item.name
    rpi = site.sdk.replication_protected_items.begin_create(
        site.rg, site.vault, site.fabric, site.container, name, site.enable_input(item, sub)
    ).result()
    assert rpi.name == name
    assert rpi.properties.protection_state == "InitialReplicationPending"
    assert rpi.properties.allowed_operations == ["DisableProtection"]
    assert rpi.properties.current_scenario.scenario_name == "None"
    details = rpi.properties.provider_specific_details
    assert isinstance(details, m.InMageAzureV2ReplicationDetails)
    assert details.process_server_id == site.cs.ps_id
    assert details.process_server_name == f"{site.cs.host_name} (built-in)"
    assert details.agent_version == "9.60.0.0"
    assert [d.disk_id for d in details.protected_disks] == [
        d.disk_id for d in item.properties.custom_details.disk_details
    ]
    assert details.protected_disks[0].protection_stage == "InitialReplicationPending"
    assert details.recovery_azure_resource_group_id == TARGET_RG.format(sub=sub)

    work = next(w for w in site.cs.handled if w["kind"] == "EnableProtection")
    assert work["payload"]["processServerId"] == site.cs.ps_id
    assert work["payload"]["vm"]["instanceUuid"] == item.name
    job = site.sdk.replication_jobs.get(site.rg, site.vault, work["jobName"])
    assert job.properties.scenario_name == "EnableDr"
    assert job.properties.state == "Succeeded"
    assert [t.friendly_name for t in job.properties.tasks] == [
        "Prerequisites check",
        "Installing Mobility Service",
        "Enabling replication",
        "Starting initial replication",
    ]
    assert all(t.state == "Succeeded" for t in job.properties.tasks)
    protectable = site.sdk.replication_protectable_items.get(
        site.rg, site.vault, site.fabric, site.container, name
    )
    assert protectable.properties.protection_status == "Protected"
    listed = list(site.sdk.replication_protected_items.list(site.rg, site.vault))
    assert name in {r.name for r in listed}

    # disable: the configuration server stops replication, the item goes away
    site.sdk.replication_protected_items.begin_delete(
        site.rg,
        site.vault,
        site.fabric,
        site.container,
        name,
        m.DisableProtectionInput(
            properties=m.DisableProtectionInputProperties(disable_protection_reason="NotSpecified")
        ),
    ).result()
    with pytest.raises(ResourceNotFoundError):
        site.sdk.replication_protected_items.get(
            site.rg, site.vault, site.fabric, site.container, name
        )
    assert "DisableProtection" in [w["kind"] for w in site.cs.handled]
    again = site.sdk.replication_protectable_items.get(
        site.rg, site.vault, site.fabric, site.container, name
    )
    assert again.properties.protection_status == "Unprotected"


def test_enable_fails_when_the_configuration_server_reports_a_failure(sdk, vault, cs, arm_lab):
    def fail_install(server, item):
        if item["kind"] != "EnableProtection":
            return server.succeed(server, item)
        server.report(
            item["id"],
            task="Installing Mobility Service",
            state="Failed",
            error={"code": "95107", "message": "Push installation of the Mobility service failed."},
        )

    cs.stop()
    failing = type(cs)(
        cs.arm_url,
        cs.ca,
        cs.credential,
        arm_lab.credentials_file,
        fabric=cs.fabric,
        recorder=cs.recorder,
    )
    failing.ps_id, failing.mt_id = cs.ps_id, cs.mt_id
    failing.serve(fail_install)
    try:
        site = Site(sdk, vault, failing, [vm("lin-bad-01")])
        item = site.protectable()[0]
        with pytest.raises(HttpResponseError):
            sdk.replication_protected_items.begin_create(
                site.rg,
                site.vault,
                site.fabric,
                site.container,
                item.name,
                site.enable_input(item, arm_lab.info["subscription_id"]),
            ).result()
        with pytest.raises(ResourceNotFoundError):
            sdk.replication_protected_items.get(
                site.rg, site.vault, site.fabric, site.container, item.name
            )
        work = next(w for w in failing.handled if w["kind"] == "EnableProtection")
        job = sdk.replication_jobs.get(site.rg, site.vault, work["jobName"])
        assert job.properties.state == "Failed"
        assert job.properties.allowed_actions == ["Restart"]
        install = job.properties.tasks[1]
        assert (
            install.state == "Failed"
            and install.errors[0].provider_error_details.error_code == 95107
        )
        events = list(
            sdk.replication_events.list(site.rg, site.vault, filter="EventType eq 'JobStatus'")
        )
        assert any(e.properties.affected_object_friendly_name == "lin-bad-01" for e in events)
    finally:
        failing.stop()


def test_enable_waits_for_the_configuration_server_and_can_be_cancelled(sdk, vault, cs, arm_lab):
    cs.stop()  # nobody works the queue
    site = Site.__new__(Site)
    # set up by hand: the fixture's server no longer answers, so add the vCenter with a helper
    rg, name = vault
    helper = type(cs)(
        cs.arm_url,
        cs.ca,
        cs.credential,
        arm_lab.credentials_file,
        fabric=cs.fabric,
        recorder=cs.recorder,
    )
    helper.ps_id, helper.mt_id = cs.ps_id, cs.mt_id
    helper.serve()
    site.__init__(sdk, vault, helper, [vm("lin-slow-01")])
    helper.stop()
    item = site.protectable()[0]
    # polling=False: the 202 is the answer; nobody answers the work item yet
    sdk.replication_protected_items.begin_create(
        rg,
        name,
        site.fabric,
        site.container,
        item.name,
        site.enable_input(item, arm_lab.info["subscription_id"]),
        polling=False,
    )
    rpi = sdk.replication_protected_items.get(rg, name, site.fabric, site.container, item.name)
    assert rpi.properties.protection_state == "EnablingProtection"
    job_id = rpi.properties.current_scenario.job_id.rsplit("/", 1)[-1]

    def install_waiting():
        job = sdk.replication_jobs.get(rg, name, job_id)
        return job.properties.tasks[1].state == "InProgress" and job

    job = wait_for(
        install_waiting, timeout=10, message="the install task waiting for the configuration server"
    )
    assert job.properties.state == "InProgress"
    assert job.properties.allowed_actions == ["Cancel"]
    cancelled = sdk.replication_jobs.begin_cancel(rg, name, job_id).result()
    assert cancelled.properties.state == "Cancelled"
    with pytest.raises(ResourceNotFoundError):
        sdk.replication_protected_items.get(rg, name, site.fabric, site.container, item.name)
    # the configuration server learns it when it reports
    items = cs.work_items()
    assert items == []  # the cancelled item is not delivered
    sdk.replication_jobs.begin_restart(rg, name, job_id, polling=False)
    rpi = sdk.replication_protected_items.get(rg, name, site.fabric, site.container, item.name)
    restarted = rpi.properties.current_scenario.job_id.rsplit("/", 1)[-1]
    assert restarted != job_id
    old = sdk.replication_jobs.get(rg, name, job_id)
    assert old.properties.allowed_actions == []  # restarted once already
    delivered = wait_for(
        lambda: cs.work_items(wait=1), timeout=10, message="the restarted job's work item"
    )
    cs.succeed(cs, delivered[0])
    wait_for(
        lambda: sdk.replication_jobs.get(rg, name, restarted).properties.state == "Succeeded",
        timeout=10,
        message="the restarted enable job to succeed",
    )


def test_resume_of_a_job_that_is_not_suspended_is_refused(sdk, vault, cs):
    rg, name = vault
    job = next(iter(sdk.replication_jobs.list(rg, name)))
    with pytest.raises(HttpResponseError) as info:
        sdk.replication_jobs.begin_resume(
            rg,
            name,
            job.name,
            m.ResumeJobParams(properties=m.ResumeJobParamsProperties(comments="go")),
        ).result()
    assert info.value.error.code == "OperationNotAllowed"


def test_purge_forgets_the_item_and_tells_the_configuration_server(site, arm_lab):
    item = site.protectable()[0]
    site.sdk.replication_protected_items.begin_create(
        site.rg,
        site.vault,
        site.fabric,
        site.container,
        item.name,
        site.enable_input(item, arm_lab.info["subscription_id"]),
    ).result()
    site.sdk.replication_protected_items.begin_purge(
        site.rg, site.vault, site.fabric, site.container, item.name
    ).result()
    with pytest.raises(ResourceNotFoundError):
        site.sdk.replication_protected_items.get(
            site.rg, site.vault, site.fabric, site.container, item.name
        )
    wait_for(
        lambda: "PurgeProtection" in [w["kind"] for w in site.cs.handled],
        timeout=10,
        message="the purge notification",
    )


def test_enable_refuses_a_policy_that_is_not_associated(site, arm_lab):
    other = site.sdk.replication_policies.begin_create(
        site.rg, site.vault, unique("policy"), policy_input()
    ).result()
    item = site.protectable()[0]
    body = site.enable_input(item, arm_lab.info["subscription_id"])
    body.properties.policy_id = other.id
    with pytest.raises(HttpResponseError) as info:
        site.sdk.replication_protected_items.begin_create(
            site.rg, site.vault, site.fabric, site.container, item.name, body
        ).result()
    assert info.value.status_code == 400
    assert "not associated" in info.value.error.message
