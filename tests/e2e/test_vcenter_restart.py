"""What survives a restart of the vCenter process: inventory, identities, power states as
clients saw them, VMs created through the API; running guests are re-adopted, and after
`drlab down` + `drlab up` the VMs recorded powered on boot again (ESXi autostart)."""

from __future__ import annotations

import ssl
from urllib.parse import urlparse

import pytest
import requests
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from lab import launcher
from lab.kit.labinfo import read_lab
from tests.helpers import pid_alive

from .vcenter_lab import vcenter_topology

pytestmark = pytest.mark.e2e


def connect(lab):
    env = lab["env"]
    url = urlparse(env["DRLAB_VCENTER_URL"])
    return SmartConnect(
        host=url.hostname,
        port=url.port,
        user=env["DRLAB_VCENTER_USER"],
        pwd=env["DRLAB_VCENTER_PASSWORD"],
        sslContext=ssl.create_default_context(cafile=lab["ca_cert"]),
    )


def snapshot(lab) -> dict:
    url = lab["services"]["vcenter"]["url"]
    state = requests.get(f"{url}/_lab/state", verify=lab["ca_cert"], timeout=10).json()
    return {vm["name"]: vm for vm in state["vms"]}


def create_vm(si, name):
    content = si.RetrieveContent()
    dc = content.rootFolder.childEntity[0]
    spec = vim.vm.ConfigSpec(
        name=name,
        guestId="rhel8_64Guest",
        numCPUs=1,
        memoryMB=512,
        files=vim.vm.FileInfo(vmPathName="[datastore1]"),
        deviceChange=[
            vim.vm.device.VirtualDeviceSpec(
                operation="add",
                device=vim.vm.device.ParaVirtualSCSIController(
                    key=-1, busNumber=0, sharedBus="noSharing"
                ),
            ),
            vim.vm.device.VirtualDeviceSpec(
                operation="add",
                fileOperation="create",
                device=vim.vm.device.VirtualDisk(key=-2, controllerKey=-1, capacityInKB=1024**2),
            ),
        ],
    )
    task = dc.vmFolder.CreateVM_Task(spec, dc.hostFolder.childEntity[0].resourcePool)
    WaitForTask(task)
    return task.info.result


def test_state_survives_restarts_of_the_vcenter(lab_factory, tmp_path):
    topology = vcenter_topology(tmp_path)
    lab = lab_factory(topology).info
    state_dir = lab["state_dir"]
    si = connect(lab)
    create_vm(si, "failback-target")
    vms = {
        vm.name: vm for vm in si.RetrieveContent().rootFolder.childEntity[0].vmFolder.childEntity
    }
    WaitForTask(vms["lin-web-01"].PowerOffVM_Task())
    before = snapshot(lab)
    Disconnect(si)

    # 1. The vCenter process dies (SIGKILL): guests keep running and are re-adopted.
    launcher.restart_service(state_dir, "vcenter", kill=True)
    after = snapshot(lab)
    for name, vm in before.items():
        for key in ("moid", "uuid", "instance_uuid", "power_state", "disks"):
            assert after[name][key] == vm[key], (name, key)
    assert after["lin-db-01"]["guest_pid"] == before["lin-db-01"]["guest_pid"]
    assert after["failback-target"]["power_state"] == "poweredOff"
    si = connect(lab)  # sessions do not survive, as with a real vpxd restart
    vm = si.RetrieveContent().searchIndex.FindByUuid(None, before["lin-db-01"]["uuid"], True)
    assert vm.name == "lin-db-01" and vm.guest.toolsRunningStatus == "guestToolsRunning"
    Disconnect(si)

    # 2. drlab down + drlab up on the same state directory: guests were stopped, so the VMs
    #    recorded powered on boot again; the others stay off.
    launcher.down(state_dir)
    assert not pid_alive(before["lin-db-01"]["guest_pid"])
    lab = launcher.up(topology, state_dir)
    again = snapshot(lab)
    assert again["lin-web-01"]["power_state"] == "poweredOff"
    assert again["failback-target"]["uuid"] == before["failback-target"]["uuid"]
    for name in ("win-app-01", "lin-db-01"):
        assert (
            again[name]["power_state"] == "poweredOn"
            and again[name]["tools"] == "guestToolsRunning"
        )
        assert again[name]["guest_pid"] != before[name]["guest_pid"]
    assert read_lab(state_dir)["status"] == "running"
