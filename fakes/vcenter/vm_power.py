"""Power operations of a VM, each one moving the VM and its guest process together.

PowerOnVM_Task starts the guest (first boot installs the OS on disk 0); PowerOffVM_Task is the
hard power-off (the guest process is killed, nothing is flushed: crash-consistent disks);
ShutdownGuest and RebootGuest ask the guest to stop or restart cleanly (it flushes first);
ResetVM_Task is a hard reset. A power operation in the wrong state fails its task with
InvalidPowerState; ShutdownGuest/RebootGuest without running tools answer ToolsUnavailable.
"""

from __future__ import annotations

import logging

from .errors import InvalidPowerState, ToolsUnavailable
from .registry import Call

log = logging.getLogger(__name__)

POWERED_ON, POWERED_OFF = "poweredOn", "poweredOff"
GUEST_SHUTDOWN_SECONDS = 60.0


def _require(vm, state: str, requested: str) -> None:
    if vm.power_state != state:
        raise InvalidPowerState(vm.power_state, requested)


def set_power(vm, state: str, *, clean: bool | None = None) -> None:
    """The one place a VM's power state changes (under the registry lock)."""
    vc = vm.vcenter
    with vc.registry.lock:
        vm.power_state = state
        if state == POWERED_ON:
            vm.boot_time = vc.clock.now()
            vm.clean_power_off = None
        else:
            vm.boot_time = None
            vm.clean_power_off = clean
            vm.guest_status = None
        vm.changed("runtime", "guest", "config", "guestHeartbeatStatus")


def boot(vm, task=None) -> None:
    """Start the VM's guest and mark the VM powered on (caller holds the entity lock)."""
    vc = vm.vcenter
    status = vc.guests.start(vm, progress=task.set_progress if task else None)
    with vc.registry.lock:
        vm.guest_status = status
        set_power(vm, POWERED_ON)
        vc.events.post_vm(vm, "VmPoweredOnEvent", f"{vm.name} on {vm.host.name} is powered on")


def power_on_task(vm, call: Call):
    def work(task):
        with vm.vcenter.registry.lock:
            _require(vm, POWERED_OFF, POWERED_ON)
            vm.vcenter.events.post_vm(
                vm,
                "VmStartingEvent",
                f"{vm.name} on {vm.host.name} is starting",
                chain=task.chain_id,
            )
        boot(vm, task)

    return vm.vcenter.tasks.submit(call, "PowerOnVM_Task", "VirtualMachine.powerOn", vm, work)


def power_off_task(vm, call: Call):
    def work(task):
        vc = vm.vcenter
        with vc.registry.lock:
            _require(vm, POWERED_ON, POWERED_OFF)
            vc.events.post_vm(
                vm,
                "VmStoppingEvent",
                f"{vm.name} on {vm.host.name} is stopping",
                chain=task.chain_id,
            )
        vc.guests.power_off(vm)
        with vc.registry.lock:
            set_power(vm, POWERED_OFF, clean=False)
            vc.events.post_vm(
                vm,
                "VmPoweredOffEvent",
                f"{vm.name} on {vm.host.name} is powered off",
                chain=task.chain_id,
            )

    return vm.vcenter.tasks.submit(call, "PowerOffVM_Task", "VirtualMachine.powerOff", vm, work)


def reset_task(vm, call: Call):
    def work(task):
        vc = vm.vcenter
        with vc.registry.lock:
            _require(vm, POWERED_ON, POWERED_ON)
            vc.events.post_vm(
                vm, "VmResettingEvent", f"{vm.name} on {vm.host.name} is reset", chain=task.chain_id
            )
        vc.guests.power_off(vm)
        with vc.registry.lock:
            vm.guest_status = None
            vm.changed("guest", "guestHeartbeatStatus")
        status = vc.guests.start(vm, progress=task.set_progress)
        with vc.registry.lock:
            vm.guest_status = status
            set_power(vm, POWERED_ON)

    return vm.vcenter.tasks.submit(call, "ResetVM_Task", "VirtualMachine.reset", vm, work)


def _require_tools(vm) -> None:
    _require(vm, POWERED_ON, POWERED_OFF)
    if not vm.tools_running:
        raise ToolsUnavailable()


def shutdown_guest(vm, call: Call) -> None:
    """Ask the guest OS to shut down; returns at once, the VM powers off when it has."""
    vc = vm.vcenter
    _require_tools(vm)
    vc.events.post_vm(
        vm, "VmGuestShutdownEvent", f"Guest OS shut down for {vm.name} on {vm.host.name}"
    )

    def work():
        if vm.power_state != POWERED_ON:
            return
        stopped = vc.guests.shutdown(vm, GUEST_SHUTDOWN_SECONDS)
        if not stopped:
            log.warning(
                "guest of %s did not shut down within %.0f s", vm.name, GUEST_SHUTDOWN_SECONDS
            )
            return
        with vc.registry.lock:
            set_power(vm, POWERED_OFF, clean=True)
            vc.events.post_vm(
                vm, "VmPoweredOffEvent", f"{vm.name} on {vm.host.name} is powered off"
            )

    vc.tasks.in_background(vm, f"shutdown-{vm.name}", work)


def reboot_guest(vm, call: Call) -> None:
    """Ask the guest OS to restart; the VM stays powered on."""
    vc = vm.vcenter
    _require_tools(vm)
    vc.events.post_vm(vm, "VmGuestRebootEvent", f"Guest OS reboot for {vm.name} on {vm.host.name}")

    def work():
        if vm.power_state != POWERED_ON:
            return
        with vc.registry.lock:
            vm.guest_status = None
            vm.changed("guest", "guestHeartbeatStatus")
        status = vc.guests.reboot(vm, GUEST_SHUTDOWN_SECONDS)
        with vc.registry.lock:
            vm.guest_status = status
            vm.changed("guest", "guestHeartbeatStatus")

    vc.tasks.in_background(vm, f"reboot-{vm.name}", work)
