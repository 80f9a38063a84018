"""The control plane end to end: the default lab's vault setup, discovery through pyvmomi,
enable replication with push install, the agent's registration and heartbeats, disable —
driven with the real SDKs, pyvmomi and the drlab CLI."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import uuid

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.recoveryservicessiterecovery import models as m
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from lab import launcher
from lab.asr import Asr
from tests.conftest import LabHandle
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    state = tmp_path_factory.mktemp("control-lab")
    handle = LabHandle(state, launcher.up("default", state))
    try:
        yield handle
    finally:
        launcher.down(state)


@pytest.fixture
def asr(lab):
    with Asr(lab.state_dir) as client:
        yield client


@pytest.fixture
def vsphere(lab):
    port = lab.info["services"]["vcenter"]["port"]
    si = SmartConnect(
        host="127.0.0.1",
        port=port,
        user=lab.env["DRLAB_VCENTER_USER"],
        pwd=lab.env["DRLAB_VCENTER_PASSWORD"],
        sslContext=ssl.create_default_context(cafile=lab.ca),
    )
    yield si
    Disconnect(si)


def find_vm(si, name):
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next(vm for vm in view.view if vm.name == name)
    finally:
        view.DestroyView()


def test_the_default_lab_has_its_vcenter_policy_and_mapping(asr):
    site = asr.site()
    vcenter = asr.client.replicationv_centers.get(asr.rg, asr.vault, site.fabric, "vcenter-01")
    assert vcenter.properties.friendly_name == "vcenter-01"
    policy = asr.client.replication_policies.get(asr.rg, asr.vault, "default-policy")
    details = policy.properties.provider_specific_details
    assert details.recovery_point_threshold_in_minutes == 15
    assert details.recovery_point_history == 24 * 60
    assert details.app_consistent_frequency_in_minutes == 4 * 60
    assert details.multi_vm_sync_status == "Enable"
    names = [p.name for p in asr.client.replication_policies.list(asr.rg, asr.vault)]
    assert "default-policy-failback" in names  # the InMage policy made alongside
    mapping = asr.client.replication_protection_container_mappings.get(
        asr.rg, asr.vault, site.fabric, site.container, "default-policy-mapping"
    )
    assert mapping.properties.policy_id.lower() == policy.id.lower()


def test_fabric_lists_the_process_server_and_master_target_with_their_health(asr):
    def reported():
        details = asr.fabric_details()
        ps = details.process_servers[0] if details.process_servers else None
        ok = ps is not None and ps.total_space_in_bytes and details.master_target_servers
        return details if ok else None

    details = wait_for(reported, timeout=30, message="process server health in the fabric")
    ps = details.process_servers[0]
    assert ps.friendly_name == "ps-01"
    assert int(ps.total_space_in_bytes) == 4 << 30
    assert ps.health == "Normal"
    mt = details.master_target_servers[0]
    assert mt.name == "mt-01" and mt.retention_volumes[0].capacity_in_bytes == 100 << 30


def test_protectable_items_follow_vcenter(asr, vsphere):
    def names():
        return {asr_item.properties.friendly_name for asr_item in _protectable(asr)}

    assert {"win-app-01", "lin-web-01", "lin-db-01"} <= names()
    # A VM created in vCenter appears, and disappears when it is destroyed.
    name = f"new-{uuid.uuid4().hex[:6]}"
    content = vsphere.RetrieveContent()
    datacenter = content.rootFolder.childEntity[0]
    pool = datacenter.hostFolder.childEntity[0].resourcePool
    disk = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        fileOperation="create",
        device=vim.vm.device.VirtualDisk(
            capacityInKB=1024 * 1024,
            controllerKey=1000,
            unitNumber=0,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                diskMode="persistent", thinProvisioned=True
            ),
        ),
    )
    controller = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.ParaVirtualSCSIController(
            key=1000, busNumber=0, sharedBus="noSharing"
        ),
    )
    spec = vim.vm.ConfigSpec(
        name=name,
        guestId="rhel8_64Guest",
        numCPUs=1,
        memoryMB=1024,
        files=vim.vm.FileInfo(vmPathName="[datastore1]"),
        deviceChange=[controller, disk],
    )
    WaitForTask(datacenter.vmFolder.CreateVM_Task(config=spec, pool=pool))
    wait_for(lambda: name in names(), timeout=30, message=f"{name} to be protectable")
    WaitForTask(find_vm(vsphere, name).Destroy_Task())
    wait_for(lambda: name not in names(), timeout=30, message=f"{name} to disappear")


def _protectable(asr):
    site = asr.site()
    return list(
        asr.client.replication_protectable_items.list_by_replication_protection_containers(
            asr.rg, asr.vault, site.fabric, site.container
        )
    )


def test_enable_push_installs_the_agent_and_disable_stops_replication(lab, asr, vsphere):
    # .result() with the SDK's default polling: the lab's Retry-After keeps it to seconds.
    item = asr.enable("lin-db-01").result()
    assert item.properties.protection_state in (
        "InitialReplicationPending",
        "InitialReplicationInProgress",
        "Protected",
    )
    details = item.properties.provider_specific_details
    assert details.instance_type == "InMageAzureV2"
    assert details.agent_version and details.process_server_name == "ps-01"

    job = next(
        j
        for j in asr.jobs()
        if j.properties.scenario_name == "EnableDr"
        and j.properties.target_object_name == "lin-db-01"
    )
    assert job.properties.state == "Succeeded"
    tasks = {t.friendly_name: t.state for t in job.properties.tasks}
    assert tasks["Installing Mobility Service"] == "Succeeded"
    assert tasks["Enabling replication"] == "Succeeded"

    # The mobility service runs in the guest, as vSphere guest operations show it.
    vm = find_vm(vsphere, "lin-db-01")
    auth = vim.vm.guest.NamePasswordAuthentication(username="root", password="Guest1!linux")
    processes = vsphere.RetrieveContent().guestOperationsManager.processManager
    names = [p.name for p in processes.ListProcessesInGuest(vm, auth)]
    assert "svagentsd" in names

    # Its heartbeats reach the vault through the configuration server.
    first = details.last_heartbeat
    wait_for(
        lambda: (
            asr.protected("lin-db-01").properties.provider_specific_details.last_heartbeat > first
        ),
        timeout=30,
        message="a later agent heartbeat",
    )

    asr.disable("lin-db-01").result()
    assert "lin-db-01" not in {i.properties.friendly_name for i in asr.protected_items()}
    disable = next(j for j in asr.jobs() if j.properties.scenario_name == "DisableDr")
    assert disable.properties.state == "Succeeded"
    cs_state = requests.get(f"{lab.url('cs-01')}/_lab/state", verify=lab.ca, timeout=10).json()
    assert not any(p["vm_id"] == item.name for p in cs_state["protections"])


def test_push_install_with_the_wrong_guest_account_fails_the_job(asr):
    site = asr.site()
    details = asr.fabric_details()
    accounts = {a.account_name: a.account_id for a in details.run_as_accounts}
    linux = next(v for k, v in accounts.items() if k.startswith("linux"))
    policy = asr.client.replication_policies.get(asr.rg, asr.vault, "default-policy")
    win = next(i for i in _protectable(asr) if i.properties.friendly_name == "win-app-01")
    enable = m.EnableProtectionInput(
        properties=m.EnableProtectionInputProperties(
            policy_id=policy.id,
            protectable_item_id=win.id,
            provider_specific_details=m.InMageAzureV2EnableProtectionInput(
                process_server_id=details.process_servers[0].id,
                master_target_id=details.master_target_servers[0].id,
                run_as_account_id=linux,  # a Linux account for a Windows VM
                log_storage_account_id=asr._arm_id(
                    f"{asr.rg}/providers/Microsoft.Storage/storageAccounts/drlabcache"
                ),
                target_azure_v2_resource_group_id=asr._arm_id("drlab-target"),
                target_azure_network_id=asr._arm_id(
                    "drlab-target/providers/Microsoft.Network/virtualNetworks/vnet-prod"
                ),
                target_azure_subnet_id="default",
            ),
        )
    )
    with pytest.raises(HttpResponseError) as info:
        asr.client.replication_protected_items.begin_create(
            asr.rg, asr.vault, site.fabric, site.container, win.name, enable
        ).result()
    assert "95103" in str(info.value) and "InvalidGuestLogin" in str(info.value)
    assert "win-app-01" not in {i.properties.friendly_name for i in asr.protected_items()}
    job = next(
        j
        for j in asr.jobs()
        if j.properties.scenario_name == "EnableDr"
        and j.properties.target_object_name == "win-app-01"
    )
    assert job.properties.state == "Failed"


def test_an_agent_with_a_wrong_passphrase_registers_nothing(lab):
    cs = lab.url("cs-01")
    before = requests.get(f"{cs}/_lab/state", verify=lab.ca, timeout=10).json()["agents"]
    secret = f"not-the-passphrase-{uuid.uuid4().hex[:6]}"
    resp = requests.post(
        f"{cs}/v1/agents/register",
        json={
            "passphrase": secret,
            "vm_id": str(uuid.uuid4()),
            "hostname": "intruder",
            "os_family": "linux",
            "agent_version": "9.62.0.0",
        },
        verify=lab.ca,
        timeout=10,
    )
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "InvalidPassphrase"
    after = requests.get(f"{cs}/_lab/state", verify=lab.ca, timeout=10).json()["agents"]
    assert after == before
    log = (lab.state_dir / "logs" / "cs-01.log").read_text()
    assert "intruder" in log and secret not in log


def test_cli_replicate_jobs_events(lab):
    def drlab(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "lab.cli", *args, "--state-dir", str(lab.state_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    drlab("replicate", "enable", "lin-web-01")
    status = json.loads(drlab("replicate", "status", "lin-web-01", "--json"))
    assert status["vm"] == "lin-web-01" and status["agent_version"]
    jobs = json.loads(drlab("jobs", "--json"))
    assert any(j["scenario"] == "EnableDr" and j["state"] == "Succeeded" for j in jobs)
    events = json.loads(drlab("events", "--json"))
    assert any(e["type"] == "ServerHealth" for e in events)
    drlab("replicate", "disable", "lin-web-01")
    listing = json.loads(drlab("replicate", "status", "--json"))
    assert all(row["vm"] != "lin-web-01" for row in listing)
