"""The vCenter model with real guest processes (`fakes.guest`), driven by pyvmomi in memory:
a hard power-off kills the guest without flushing and its application recovers; a clean
shutdown flushes; a disk grown under a running guest; guest operations reach the guest OS."""

from __future__ import annotations

import os

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from fakes.vcenter.dispatch import Dispatcher
from lab.kit import procs
from tests.helpers import pid_alive, wait_for
from tests.unit.vcenter.conftest import (  # noqa: F401 - fixtures
    PASSWORD,
    USER,
    InMemoryStub,
    lab_dirs,
    make_vcenter,
)

GIB = 2**30
AUTH = vim.vm.guest.NamePasswordAuthentication(username="root", password="Guest1!linux")


@pytest.fixture
def vcenter(make_vcenter, lab_dirs):  # noqa: F811
    from fakes.guest import host

    vc = make_vcenter(backend=host)
    vc.start()
    try:
        wait_for(lambda: vc.ready, 60, message="guests booted")
        yield vc
    finally:
        state = lab_dirs[0]
        procs.stop_all(procs.registered(state), grace=2.0)


@pytest.fixture
def si(vcenter):
    si = vim.ServiceInstance("ServiceInstance", InMemoryStub(Dispatcher(vcenter)))
    si.content.sessionManager.Login(USER, PASSWORD, None)
    return si


def vm_named(si, name):
    folder = si.RetrieveContent().rootFolder.childEntity[0].vmFolder
    return next(vm for vm in folder.childEntity if vm.name == name)


def test_autostarted_guests_run_with_tools(si, vcenter):
    pids = vcenter.guests.running_pids()
    assert len(pids) == 3 and all(pid_alive(p) for p in pids.values())
    vm = vm_named(si, "lin-db-01")
    wait_for(lambda: vm.guest.toolsRunningStatus == "guestToolsRunning", 10, message="tools")
    assert vm.guest.hostName == "lin-db-01" and vm.guest.ipAddress == "10.10.0.22"


def test_hard_power_off_kills_the_guest_and_its_data_recovers(si, vcenter):
    vm = vm_named(si, "lin-web-01")
    pid = vcenter.guests.running_pids()[vm._moId]
    WaitForTask(vm.PowerOffVM_Task())
    assert not pid_alive(pid)
    assert vm.runtime.cleanPowerOff is False
    result = vcenter.guests.verify(vcenter.vms[vm._moId])
    assert result["ok"], result["errors"]
    assert result["system_area"]["state"] != "clean"  # nothing was flushed
    WaitForTask(vm.PowerOnVM_Task())
    assert vcenter.guests.running_pids()[vm._moId] != pid


def test_clean_shutdown_flushes(si, vcenter):
    vm = vm_named(si, "lin-db-01")
    vm.ShutdownGuest()
    wait_for(lambda: vm.runtime.powerState == "poweredOff", 30, message="clean shutdown")
    result = vcenter.guests.verify(vcenter.vms[vm._moId])
    assert result["ok"] and result["system_area"]["state"] == "clean"


def test_growing_a_disk_under_a_running_guest(si, vcenter):
    vm = vm_named(si, "win-app-01")
    disk = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)][1]
    disk.capacityInKB = 12 * GIB // 1024
    spec = vim.vm.ConfigSpec(
        deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)]
    )
    WaitForTask(vm.ReconfigVM_Task(spec))
    flat = vcenter.datastore_by_name("datastore1").file("win-app-01/win-app-01_1-flat.vmdk")
    assert os.path.getsize(flat) == 12 * GIB
    assert vm.guest.toolsRunningStatus == "guestToolsRunning"


def test_guest_operations_reach_the_guest_os(si):
    gom = si.RetrieveContent().guestOperationsManager
    vm = vm_named(si, "lin-web-01")
    spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath="/bin/true", arguments="")
    pid = gom.processManager.StartProgramInGuest(vm, AUTH, spec)
    wait_for(
        lambda: gom.processManager.ListProcessesInGuest(vm, AUTH, [pid])[0].exitCode == 0,
        10,
        message="the program to end",
    )
    missing = vim.vm.guest.ProcessManager.ProgramSpec(programPath="/opt/none", arguments="")
    with pytest.raises(vim.fault.FileNotFound):
        gom.processManager.StartProgramInGuest(vm, AUTH, missing)
    wrong = vim.vm.guest.NamePasswordAuthentication(username="root", password="wrong")
    with pytest.raises(vim.fault.InvalidGuestLogin):
        gom.processManager.ListProcessesInGuest(vm, wrong, [])
