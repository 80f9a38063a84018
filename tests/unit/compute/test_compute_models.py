"""Managed disks and VMs through `Compute`, with the disks account and the guest runtime in
memory: creation rules, attachments, power operations, boot results, deletion."""

from __future__ import annotations

import pytest

from fakes.azure.compute.compute import GuestSpec, NicSpec
from fakes.azure.compute.errors import ArmError
from fakes.azure.compute.models.disks import parse_disk_body
from fakes.azure.compute.models.virtual_machines import parse_vm_body

from .conftest import RG, GiB

SNAP = "asr-seed-disks/seed-1?snapshot=t1"


def make_vm(compute, name="vm1", **kw):
    disk = compute.create_disk_from_snapshot(RG, f"{name}-os", SNAP, os_type="Linux")
    kw.setdefault("nics", [NicSpec("vnet-test", "default")])
    return compute.create_vm(RG, name, size="Standard_D2s_v3", os_disk=disk["id"], **kw)


def test_a_disk_from_a_snapshot_is_a_copy(parts):
    disk = parts.compute.create_disk_from_snapshot(RG, "d1", SNAP, tags={"a": "b"})
    props = disk["properties"]
    assert props["diskSizeGB"] == 4 and props["diskSizeBytes"] == 4 * GiB
    assert props["creationData"]["createOption"] == "Import"
    assert props["creationData"]["sourceUri"].endswith(SNAP)
    assert props["diskState"] == "Unattached" and props["provisioningState"] == "Succeeded"
    assert list(parts.storage.blobs.values()) == [4 * GiB]


def test_a_larger_size_grows_the_copy_and_a_smaller_is_refused(parts):
    disk = parts.compute.create_disk_from_snapshot(RG, "d1", SNAP, size_gb=8)
    assert disk["properties"]["diskSizeBytes"] == 8 * GiB
    with pytest.raises(ArmError) as err:
        parts.compute.create_disk_from_snapshot(RG, "d2", SNAP, size_gb=2)
    assert err.value.code == "InvalidParameter" and err.value.target == "diskSizeGB"
    assert parts.compute.disks.find(RG, "d2") is None and len(parts.storage.blobs) == 1


@pytest.mark.parametrize(
    ("creation", "code", "status"),
    [
        ({"createOption": "FromImage"}, "NotImplemented", 501),
        ({"createOption": "Empty"}, "InvalidParameter", 400),
        ({"createOption": "Import", "sourceUri": "asr-seed-disks/none"}, "InvalidParameter", 400),
        ({"createOption": "Copy"}, "InvalidParameter", 400),
        (
            {
                "createOption": "Copy",
                "sourceResourceId": f"/subscriptions/x/resourceGroups/{RG}/providers/"
                "Microsoft.Compute/snapshots/s1",
            },
            "NotImplemented",
            501,
        ),
    ],
)
def test_disk_input_errors_change_nothing(parts, creation, code, status):
    body = {"location": "westeurope", "properties": {"creationData": creation}}
    with pytest.raises(ArmError) as err:
        parts.compute.disks.create(RG, "bad", parse_disk_body(body))
    assert (err.value.code, err.value.status) == (code, status)
    assert parts.compute.disks.list() == [] and parts.storage.blobs == {}


def test_copy_of_a_managed_disk_and_empty_disks(parts):
    src = parts.compute.create_disk_from_snapshot(RG, "src", SNAP)
    body = {
        "location": "westeurope",
        "properties": {"creationData": {"createOption": "Copy", "sourceResourceId": src["id"]}},
    }
    doc, created = parts.compute.disks.create(RG, "copy", parse_disk_body(body))
    assert created and doc["sizeBytes"] == 4 * GiB
    empty = parts.compute.create_empty_disk(RG, "e", 2)
    assert empty["properties"]["creationData"] == {"createOption": "Empty"}
    assert len(parts.storage.blobs) == 3


def test_create_vm_boots_the_guest_with_its_network(parts):
    view = make_vm(parts.compute, tags={"drill": "1"})
    assert view["power_state"] == "running" and view["provisioning_state"] == "Succeeded"
    assert view["guest_running"] and view["application_check"]["ok"]
    assert view["application_check"]["committed_seq"] == 12
    assert view["ip"] == "10.30.1.4" and view["network"]["isolated"] is True
    config = parts.backend.configs[-1]
    assert config.network["vnet"] == "vnet-test" and config.network["isolated"] is True
    assert config.hostname == "lin-db-01" and config.accounts == {"root": "pw"}
    assert config.workload == {"churn_mb_s": 0.0, "app_tps": 5.0}  # the topology VM's
    assert config.process_name == "azure-vm-drlab-target-vm1"
    assert config.disks[0].kind == "page_blob" and config.disks[0].url.endswith("?sas")
    disk = parts.compute.disk(RG, "vm1-os")
    assert disk["managedBy"].endswith("/virtualMachines/vm1")
    assert disk["properties"]["diskState"] == "Attached"


def test_guest_spec_overrides_the_topology(parts):
    make_vm(parts.compute, guest=GuestSpec(workload={"churn_mb_s": 1.0}, accounts={"u": "p"}))
    config = parts.backend.configs[-1]
    assert config.workload == {"churn_mb_s": 1.0} and config.accounts == {"u": "p"}


def test_a_disk_without_an_os_is_a_boot_result(parts):
    disk = parts.compute.create_empty_disk(RG, "blank", 1)
    parts.backend.blank_disks.add(
        parts.storage.guest_url(parts.compute.disks.find(RG, "blank")["blob"])
    )
    view = parts.compute.create_vm(
        RG, "vm0", size="Standard_B1s", os_disk=disk["id"], nics=[NicSpec("vnet-prod", "default")]
    )
    assert view["power_state"] == "running" and not view["guest_running"]
    assert view["boot"]["ok"] is False and "no OS" in view["boot"]["error"]
    assert view["application_check"]["ok"] is False
    iv = parts.compute.vm(RG, "vm0", instance_view=True)["properties"]["instanceView"]
    assert iv["statuses"][2]["code"] == "GuestBoot/failed"
    assert iv["vmAgent"]["statuses"][0]["displayStatus"] == "Not Ready"


def test_power_operations_drive_the_guest(parts):
    c = parts.compute
    make_vm(c)
    assert c.power_off_vm(RG, "vm1")["power_state"] == "stopped"
    assert parts.backend.events[-1] == ("shutdown", "vm1")
    assert c.start_vm(RG, "vm1")["guest_running"]
    assert c.restart_vm(RG, "vm1")["power_state"] == "running"
    assert parts.backend.events[-1] == ("reboot", "vm1")
    assert c.deallocate_vm(RG, "vm1")["power_state"] == "deallocated"
    assert c.disk(RG, "vm1-os")["properties"]["diskState"] == "Reserved"
    assert c.deallocate_vm(RG, "vm1")["power_state"] == "deallocated"  # nothing to do
    with pytest.raises(ArmError) as err:
        c.restart_vm(RG, "vm1")
    assert err.value.code == "OperationNotAllowed"
    assert c.start_vm(RG, "vm1")["power_state"] == "running"
    assert c.power_off_vm(RG, "vm1", skip_shutdown=True)["power_state"] == "stopped"
    assert parts.backend.events[-1] == ("power_off", "vm1")


def test_one_operation_at_a_time(parts):
    c = parts.compute
    make_vm(c)
    op = c.begin_action(RG, "vm1", "powerOff", run=False)
    assert c.vms.get(RG, "vm1")["powerState"] == "stopping"
    with pytest.raises(ArmError) as err:
        c.begin_action(RG, "vm1", "start")
    assert err.value.status == 409
    done = c.power.execute(op)
    assert done["status"] == "Succeeded" and c.vms.get(RG, "vm1")["operation"] is None
    assert c.operations.status_body(done)["status"] == "Succeeded"


def test_disks_and_nics_are_taken_by_one_vm(parts):
    c = parts.compute
    make_vm(c)
    os_id = c.disk(RG, "vm1-os")["id"]
    nic_id = c.vm_view(RG, "vm1")["nics"][0]
    with pytest.raises(ArmError) as err:
        c.create_vm(
            RG, "vm2", size="Standard_B1s", os_disk=os_id, nics=[NicSpec("vnet-test", "default")]
        )
    assert err.value.code == "OperationNotAllowed"
    assert c.vms.find(RG, "vm2") is None
    assert parts.network.network_interfaces.find(RG, "vm2-nic0") is None  # made, then undone
    other = c.create_disk_from_snapshot(RG, "vm2-os", SNAP)
    with pytest.raises(ArmError) as err:
        c.create_vm(RG, "vm2", size="Standard_B1s", os_disk=other["id"], nics=[nic_id])
    assert err.value.code == "NicInUse"
    with pytest.raises(ArmError) as err:
        c.delete_disk(RG, "vm1-os")
    assert err.value.code == "OperationNotAllowed"


def test_delete_powers_off_and_removes_what_it_should(parts):
    c = parts.compute
    make_vm(c, "keep")
    make_vm(c, "gone")
    assert c.delete_vm(RG, "keep", delete_disks=False, delete_nics=False)
    assert parts.backend.events[-1] == ("power_off", "keep")
    assert c.disk(RG, "keep-os")["properties"]["diskState"] == "Unattached"
    assert parts.network.nic(RG, "keep-nic0")["properties"].get("virtualMachine") is None
    assert c.delete_vm(RG, "gone")
    assert c.disks.find(RG, "gone-os") is None
    assert parts.network.network_interfaces.find(RG, "gone-nic0") is None
    assert len(parts.storage.blobs) == 1  # keep-os only
    assert not c.delete_vm(RG, "gone")


def test_vm_body_rules():
    base = {
        "location": "westeurope",
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_D2s_v3"},
            "storageProfile": {"osDisk": {"createOption": "Attach", "managedDisk": {"id": "/d"}}},
            "networkProfile": {"networkInterfaces": [{"id": "/n"}]},
        },
    }
    inp = parse_vm_body(base)
    assert inp.nics[0].primary and inp.os_disk.delete_option == "Detach"
    bad = [
        ({"osProfile": {"computerName": "x"}}, "InvalidParameter", 400),
        ({"hardwareProfile": {"vmSize": "huge"}}, "InvalidParameter", 400),
        ({"storageProfile": {"imageReference": {"offer": "x"}}}, "NotImplemented", 501),
        ({"storageProfile": {"osDisk": {"createOption": "FromImage"}}}, "NotImplemented", 501),
        ({"networkProfile": {"networkInterfaces": []}}, "InvalidParameter", 400),
    ]
    for change, code, status in bad:
        body = {**base, "properties": {**base["properties"], **change}}
        with pytest.raises(ArmError) as err:
            parse_vm_body(body)
        assert (err.value.code, err.value.status) == (code, status), change


def test_an_interrupted_operation_is_run_again(parts):
    c = parts.compute
    make_vm(c)
    c.begin_action(RG, "vm1", "deallocate", run=False)  # the process "dies" here
    c.autostart_done.clear()
    c.start()
    assert c.autostart_done.wait(10)
    doc = c.vms.get(RG, "vm1")
    assert doc["powerState"] == "deallocated" and doc["operation"] is None
    assert c.operations.pending() == []


def test_autostart_brings_running_vms_back(parts):
    c = parts.compute
    make_vm(c)
    parts.backend.running.clear()  # the guest died with the lab
    c.guests.handles.clear()
    c.start()
    assert c.autostart_done.wait(10)
    assert c.vm_view(RG, "vm1")["guest_running"]
    assert parts.backend.events[-1] == ("start", "vm1")


def test_reset_and_state(parts):
    c = parts.compute
    make_vm(c)
    state = c.state()
    assert state["virtual_machines"][0]["guest_pid"] and state["disks"][0]["state"] == "Attached"
    c.reset()
    assert c.vms.list() == [] and c.disks.list() == [] and parts.storage.blobs == {}
