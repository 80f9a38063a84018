"""VMs in memory (guests are in-memory stand-ins): power operations and their state checks,
disk growth and its rules, CreateVM/Destroy with their files, events, guest operations,
persistence across a restart and the control API's reset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from fakes.vcenter.dispatch import Dispatcher
from tests.helpers import wait_for

from .conftest import PASSWORD, USER, InMemoryStub
from .fakes_guest import FakeGuestBackend

GIB = 2**30


def vm_named(si, name):
    content = si.RetrieveContent()
    for vm in content.rootFolder.childEntity[0].vmFolder.childEntity:
        if vm.name == name:
            return vm
    raise LookupError(name)


def disks_of(vm):
    return [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]


def flat_file(vcenter, disk) -> str:
    ds_name, rel = disk.backing.fileName[1:].split("] ")
    return str(vcenter.datastore_by_name(ds_name).file(rel.replace(".vmdk", "-flat.vmdk")))


def edit(disk):
    return vim.vm.ConfigSpec(
        deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)]
    )


# -- inventory ------------------------------------------------------------------------------
def test_seeded_vms_have_the_topology_hardware_and_real_disk_files(si, vcenter):
    vm = vm_named(si, "win-app-01")
    config = vm.config
    assert config.guestId == "windows2019srv_64Guest" and config.hardware.numCPU == 4
    assert config.hardware.memoryMB == 8192
    disks = disks_of(vm)
    assert [d.capacityInBytes for d in disks] == [4 * GIB, 8 * GIB]
    assert disks[0].backing.fileName == "[datastore1] win-app-01/win-app-01.vmdk"
    for d in disks:
        path = flat_file(vcenter, d)
        assert os.path.getsize(path) == d.capacityInBytes == d.capacityInKB * 1024
        assert os.stat(path).st_blocks == 0  # sparse: nothing written yet
        assert 'createType="vmfs"' in Path(path.replace("-flat.vmdk", ".vmdk")).read_text()
    nic = next(
        d for d in config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)
    )
    assert nic.macAddress.startswith("00:50:56:") and nic.backing.deviceName == "VM Network"
    assert vm.guest.ipAddress == "10.10.0.11" and vm.guest.toolsRunningStatus == "guestToolsRunning"
    assert vm.runtime.host.name == "esxi-01.lab.local"


def test_datastores_report_capacity_and_free_space(si):
    content = si.RetrieveContent()
    ds = content.rootFolder.childEntity[0].datastore[0]
    assert ds.summary.capacity == 2 * 2**40
    assert 0 < ds.summary.freeSpace <= ds.summary.capacity
    assert {vm.name for vm in ds.vm} == {"win-app-01", "lin-web-01"}


# -- power ----------------------------------------------------------------------------------
def test_power_off_is_hard_and_power_on_boots_again(si, vcenter):
    backend = vcenter.guests.backend
    vm = vm_named(si, "lin-web-01")
    WaitForTask(vm.PowerOffVM_Task())
    assert vm.runtime.powerState == "poweredOff" and vm.runtime.cleanPowerOff is False
    assert ("power_off", "lin-web-01") in backend.log
    assert vm.guest.toolsRunningStatus == "guestToolsNotRunning"
    WaitForTask(vm.PowerOnVM_Task())
    assert vm.runtime.powerState == "poweredOn" and vm.runtime.bootTime is not None
    assert "lin-web-01" in backend.running


def test_power_operations_in_the_wrong_state_fail_their_task(si):
    vm = vm_named(si, "lin-db-01")
    with pytest.raises(vim.fault.InvalidPowerState) as info:
        WaitForTask(vm.PowerOnVM_Task())
    assert info.value.existingState == "poweredOn"
    WaitForTask(vm.PowerOffVM_Task())
    for call in (vm.PowerOffVM_Task, vm.ResetVM_Task):
        with pytest.raises(vim.fault.InvalidPowerState):
            WaitForTask(call())
    with pytest.raises(vim.fault.InvalidPowerState):
        vm.ShutdownGuest()


def test_shutdown_guest_is_clean_and_returns_at_once(si, vcenter):
    vm = vm_named(si, "lin-db-01")
    vm.ShutdownGuest()
    wait_for(lambda: vm.runtime.powerState == "poweredOff", 10, message="shutdown")
    assert vm.runtime.cleanPowerOff is True
    assert ("shutdown", "lin-db-01") in vcenter.guests.backend.log


def test_reboot_guest_keeps_the_vm_on(si, vcenter):
    vm = vm_named(si, "lin-db-01")
    vm.RebootGuest()
    wait_for(lambda: ("reboot", "lin-db-01") in vcenter.guests.backend.log, 10, message="reboot")
    assert vm.runtime.powerState == "poweredOn"


def test_tasks_show_in_recent_tasks_with_their_states(si):
    content = si.RetrieveContent()
    vm = vm_named(si, "lin-db-01")
    task = vm.PowerOffVM_Task()
    WaitForTask(task)
    info = task.info
    assert info.state == "success" and info.name.info.wsdlName == "PowerOffVM_Task"
    assert info.descriptionId == "VirtualMachine.powerOff" and info.entity._moId == vm._moId
    assert info.startTime and info.completeTime and info.reason.userName == USER
    assert task._moId in [t._moId for t in content.taskManager.recentTask]
    assert task._moId in [t._moId for t in vm.recentTask]


# -- disks ----------------------------------------------------------------------------------
def test_growing_a_disk_grows_its_file_and_tells_the_guest(si, vcenter):
    vm = vm_named(si, "lin-web-01")
    disk = disks_of(vm)[1]
    disk.capacityInKB = 6 * GIB // 1024  # the common idiom: KB changed, old bytes sent back
    WaitForTask(vm.ReconfigVM_Task(edit(disk)))
    grown = disks_of(vm)[1]
    assert grown.capacityInBytes == 6 * GIB and grown.capacityInKB == 6 * GIB // 1024
    assert os.path.getsize(flat_file(vcenter, grown)) == 6 * GIB
    assert vcenter.guests.backend.running["lin-web-01"].resized == [(1, 6 * GIB)]


def test_bytes_win_when_only_bytes_changed(si, vcenter):
    vm = vm_named(si, "lin-web-01")
    disk = disks_of(vm)[0]
    disk.capacityInBytes = 5 * GIB
    WaitForTask(vm.ReconfigVM_Task(edit(disk)))
    assert disks_of(vm)[0].capacityInKB == 5 * GIB // 1024


@pytest.mark.parametrize(
    "change",
    [
        {"capacityInKB": 1024},  # a shrink
        {"capacityInKB": 6 * GIB // 1024, "capacityInBytes": 7 * GIB},  # disagreeing
    ],
)
def test_a_shrink_or_an_inconsistent_size_is_invalid_device_operation(si, vcenter, change):
    vm = vm_named(si, "lin-web-01")
    disk = disks_of(vm)[1]
    for key, value in change.items():
        setattr(disk, key, value)
    with pytest.raises(vim.fault.InvalidDeviceOperation):
        WaitForTask(vm.ReconfigVM_Task(edit(disk)))
    assert disks_of(vm)[1].capacityInBytes == 4 * GIB
    assert os.path.getsize(flat_file(vcenter, disks_of(vm)[1])) == 4 * GIB


def test_an_unsupported_field_is_not_supported_and_changes_nothing(si):
    vm = vm_named(si, "lin-web-01")
    spec = vim.vm.ConfigSpec(cpuHotAddEnabled=True)
    with pytest.raises(vmodl.fault.NotSupported, match="cpuHotAddEnabled"):
        WaitForTask(vm.ReconfigVM_Task(spec))


def test_reconfigure_posts_an_event_queryable_by_entity(si):
    content = si.RetrieveContent()
    vm = vm_named(si, "lin-web-01")
    WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(annotation="hello")))
    assert vm.config.annotation == "hello"
    spec = vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"),
        eventTypeId=["VmReconfiguredEvent"],
    )
    events = content.eventManager.QueryEvents(spec)
    assert len(events) == 1 and events[0].vm.vm._moId == vm._moId
    assert events[0].configSpec.annotation == "hello"
    other = vm_named(si, "lin-db-01")
    spec.entity.entity = other
    assert content.eventManager.QueryEvents(spec) == []


def test_an_event_collector_pages_the_latest_events(si):
    content = si.RetrieveContent()
    vm = vm_named(si, "lin-db-01")
    WaitForTask(vm.PowerOffVM_Task())
    WaitForTask(vm.PowerOnVM_Task())
    spec = vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self")
    )
    collector = content.eventManager.CreateCollectorForEvents(spec)
    latest = collector.latestPage
    assert type(latest[0]).__name__ == "vim.event.VmPoweredOnEvent"
    assert collector.ReadPreviousEvents(10) == []  # all of them fit in the latest page
    collector.RewindCollector()
    oldest_first = [type(e).__name__.split(".")[-1] for e in collector.ReadNextEvents(2)]
    assert oldest_first == ["VmStoppingEvent", "VmPoweredOffEvent"]
    collector.DestroyCollector()


# -- create and destroy ---------------------------------------------------------------------
def create_spec(name, size=GIB):
    scsi = vim.vm.device.ParaVirtualSCSIController(key=-100, busNumber=0, sharedBus="noSharing")
    disk = vim.vm.device.VirtualDisk(
        key=-101,
        controllerKey=-100,
        unitNumber=0,
        capacityInKB=size // 1024,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            diskMode="persistent", thinProvisioned=True
        ),
    )
    nic = vim.vm.device.VirtualVmxnet3(
        key=-102,
        addressType="generated",
        backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network"),
    )
    return vim.vm.ConfigSpec(
        name=name,
        guestId="rhel8_64Guest",
        numCPUs=2,
        memoryMB=2048,
        files=vim.vm.FileInfo(vmPathName="[datastore2]"),
        deviceChange=[
            vim.vm.device.VirtualDeviceSpec(operation="add", device=scsi),
            vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk),
            vim.vm.device.VirtualDeviceSpec(operation="add", device=nic),
        ],
    )


def test_create_vm_makes_files_and_destroy_removes_them(si, vcenter):
    content = si.RetrieveContent()
    dc = content.rootFolder.childEntity[0]
    pool = dc.hostFolder.childEntity[0].resourcePool
    task = dc.vmFolder.CreateVM_Task(create_spec("restore-01"), pool)
    WaitForTask(task)
    vm = task.info.result
    assert vm.name == "restore-01" and vm.runtime.powerState == "poweredOff"
    disk = disks_of(vm)[0]
    assert disk.backing.fileName == "[datastore2] restore-01/restore-01.vmdk"
    path = flat_file(vcenter, disk)
    assert os.path.getsize(path) == GIB
    assert os.path.exists(path.replace("restore-01-flat.vmdk", "restore-01.vmx"))
    nic = next(
        d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)
    )
    assert nic.macAddress.startswith("00:50:56:")
    with pytest.raises(vim.fault.DuplicateName):
        WaitForTask(dc.vmFolder.CreateVM_Task(create_spec("restore-01"), pool))
    WaitForTask(vm.Destroy_Task())
    assert not os.path.exists(os.path.dirname(path))
    assert "restore-01" not in [v.name for v in dc.vmFolder.childEntity]


def test_destroying_a_powered_on_vm_is_refused(si):
    vm = vm_named(si, "lin-db-01")
    with pytest.raises(vim.fault.InvalidPowerState):
        WaitForTask(vm.Destroy_Task())


def test_a_created_vm_without_an_os_powers_on_with_tools_not_running(si):
    content = si.RetrieveContent()
    dc = content.rootFolder.childEntity[0]
    task = dc.vmFolder.CreateVM_Task(
        create_spec("blank-01"), dc.hostFolder.childEntity[0].resourcePool
    )
    WaitForTask(task)
    vm = task.info.result
    WaitForTask(vm.PowerOnVM_Task())
    assert vm.runtime.powerState == "poweredOn"
    assert vm.guest.toolsRunningStatus == "guestToolsNotRunning"


# -- guest operations -----------------------------------------------------------------------
def test_guest_operations_check_credentials_and_power(si, vcenter):
    content = si.RetrieveContent()
    gom = content.guestOperationsManager
    vm = vm_named(si, "lin-web-01")
    auth = vim.vm.guest.NamePasswordAuthentication(username="root", password="Guest1!linux")
    spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath="/bin/install", arguments="-q")
    pid = gom.processManager.StartProgramInGuest(vm, auth, spec)
    [proc] = gom.processManager.ListProcessesInGuest(vm, auth, [pid])
    assert proc.pid == pid and proc.exitCode == 0 and proc.cmdLine == "/bin/install -q"
    bad = vim.vm.guest.NamePasswordAuthentication(username="root", password="nope")
    with pytest.raises(vim.fault.InvalidGuestLogin):
        gom.processManager.StartProgramInGuest(vm, bad, spec)
    url = gom.fileManager.InitiateFileTransferToGuest(
        vm, auth, "/opt/agent.bin", vim.vm.guest.FileManager.FileAttributes(), 3, True
    )
    assert url.startswith("https://127.0.0.1:9/guestFile?id=")
    ticket = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
    assert vcenter.guest_ops.upload(ticket["id"], ticket["token"], b"abc") == (200, "")
    assert vcenter.guest_ops.upload(ticket["id"], ticket["token"], b"abc")[0] == 404  # one use
    info = gom.fileManager.InitiateFileTransferFromGuest(vm, auth, "/opt/agent.bin")
    ticket = dict(p.split("=", 1) for p in info.url.split("?", 1)[1].split("&"))
    assert info.size == 3 and vcenter.guest_ops.download(ticket["id"], ticket["token"]) == b"abc"
    with pytest.raises(vim.fault.FileNotFound):
        gom.fileManager.InitiateFileTransferFromGuest(vm, auth, "/nope")
    WaitForTask(vm.PowerOffVM_Task())
    with pytest.raises(vim.fault.InvalidPowerState):
        gom.processManager.ListProcessesInGuest(vm, auth, [])


# -- persistence and reset ------------------------------------------------------------------
def test_state_survives_a_restart(make_vcenter):
    backend = FakeGuestBackend()
    first = make_vcenter(backend=backend)
    first.start()
    wait_for(lambda: first.ready, 10, message="first start")
    si = vim.ServiceInstance("ServiceInstance", InMemoryStub(Dispatcher(first)))
    si.content.sessionManager.Login(USER, PASSWORD, None)
    vm = vm_named(si, "lin-web-01")
    uuid, instance_uuid, moid = vm.config.uuid, vm.config.instanceUuid, vm._moId
    WaitForTask(vm.PowerOffVM_Task())
    dc = si.RetrieveContent().rootFolder.childEntity[0]
    WaitForTask(
        dc.vmFolder.CreateVM_Task(create_spec("kept-01"), dc.hostFolder.childEntity[0].resourcePool)
    )
    running_db = backend.running["lin-db-01"]
    first.stop()

    second = make_vcenter(backend=backend)
    second.start()
    wait_for(lambda: second.ready, 10, message="second start")
    si = vim.ServiceInstance("ServiceInstance", InMemoryStub(Dispatcher(second)))
    si.content.sessionManager.Login(USER, PASSWORD, None)
    vm = vm_named(si, "lin-web-01")
    assert (vm._moId, vm.config.uuid, vm.config.instanceUuid) == (moid, uuid, instance_uuid)
    assert vm.runtime.powerState == "poweredOff"
    assert vm_named(si, "kept-01").config.hardware.numCPU == 2
    assert backend.running["lin-db-01"] is running_db  # re-adopted, not booted again
    events = si.RetrieveContent().eventManager.QueryEvents(vim.event.EventFilterSpec())
    assert any(isinstance(e, vim.event.VmCreatedEvent) for e in events)


def test_a_vm_recorded_on_whose_guest_is_gone_boots_at_start(make_vcenter):
    backend = FakeGuestBackend()
    first = make_vcenter(backend=backend)
    first.start()
    wait_for(lambda: first.ready, 10, message="first start")
    first.stop()
    backend.running.clear()  # `drlab down` stopped every guest
    second = make_vcenter(backend=backend)
    second.start()
    wait_for(lambda: second.ready, 10, message="second start")
    assert set(backend.running) == {"win-app-01", "lin-web-01", "lin-db-01"}


def test_reset_returns_to_the_seeded_inventory(si, vcenter):
    content = si.RetrieveContent()
    dc = content.rootFolder.childEntity[0]
    WaitForTask(
        dc.vmFolder.CreateVM_Task(
            create_spec("extra-01"), dc.hostFolder.childEntity[0].resourcePool
        )
    )
    WaitForTask(vm_named(si, "lin-web-01").PowerOffVM_Task())
    moids = sorted(vcenter.vms)
    vcenter.reset()
    assert sorted(vm.name for vm in vcenter.vms.values()) == [
        "lin-db-01",
        "lin-web-01",
        "win-app-01",
    ]
    assert all(vm.power_state == "poweredOn" for vm in vcenter.vms.values())
    assert sorted(vcenter.vms) == moids[:3]
    assert not vcenter.datastore_by_name("datastore2").file("extra-01").exists()
    assert vm_named(si, "lin-web-01").runtime.powerState == "poweredOn"  # session kept
