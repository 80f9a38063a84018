"""dr-drill: a test failover of every VM into the isolated test network, checked, then
cleaned up — and production never notices.

Each VM fails over from its newest app-consistent point when it has one (the application
quiesces), else from its newest crash-consistent point. The test VMs must boot in the test
VNet with their application data consistent, and their disks, as made, must equal the source
at that point (`drlab verify --failover test`). Meanwhile replication goes on: every item stays
Protected and new recovery points keep coming. Cleanup removes the test VMs and records the
drill's comments.
"""

from __future__ import annotations

from azure.core.exceptions import ResourceNotFoundError

from lab import failover

from . import _failover as f

NAME = "dr-drill"
SUMMARY = "test failover of every VM into the test network, verify, clean up; production untouched"


def run(drill) -> None:
    _run(drill)


def _run(drill) -> None:
    asr = drill.asr
    names = f.vm_names(drill)
    group = f.target_group(drill)
    with drill.step(f"Protect {', '.join(names)} (if not yet) and wait for recovery points"):
        drill.clock.set_speed(f.SPEED)
        f.ensure_protected(drill, names)

    chosen = {}
    with drill.step("Test failover of every VM into the isolated test network"):
        pollers = {}
        for vm in names:
            kinds = {p.properties.recovery_point_type for p in failover.recovery_points(asr, vm)}
            chosen[vm] = "latest-app" if "AppConsistent" in kinds else "latest-crash"
            pollers[vm] = failover.test_failover(asr, vm, chosen[vm])
        started = drill.clock.time()
        for vm, poller in pollers.items():
            props = poller.result().properties
            drill.check(
                props.test_failover_state == "WaitingForCompletion",
                f"{vm}: test failover state {props.test_failover_state}",
            )
            drill.check(
                props.allowed_operations == ["TestFailoverCleanup"],
                f"{vm}: allowed operations {props.allowed_operations}",
            )
            drill.say(f"{vm}: test failover done from its {chosen[vm]} point")

    with drill.step("The test VMs run in the test network with consistent application data"):
        for vm in names:
            got = f.azure_vm(drill, group, f"{vm}-test")
            drill.check(got["power"] == "running", f"{vm}-test is {got['power']}")
            drill.check(got["application_ok"], f"{vm}-test: application check: {got}")
            test_vnet = asr.settings.get("test_network", "vnet-test")
            drill.check(got["vnets"] == [test_vnet], f"{vm}-test is plugged into {got['vnets']}")
            drill.say(
                f"{vm}-test: running; application data checked at boot ({got['application']})"
            )

    with drill.step("Their disks, as made, equal the source at the recovery point"):
        for vm in names:
            result = f.verify_failover(drill, vm, "test")
            drill.say(f"{vm}-test: disks equal the source at tag {result['tag_id']}")
        drill.figure("points", {vm: chosen[vm] for vm in names})

    with drill.step("Production is untouched: replication goes on, new points come"):
        for vm in names:
            drill.check(
                f.item(drill, vm).protection_state == "Protected",
                f"{vm}: {f.item(drill, vm).protection_state} during the drill",
            )

            def newer(vm=vm):
                points = failover.recovery_points(asr, vm)
                return points and points[0].properties.recovery_point_time.timestamp() > started

            drill.wait_for(newer, timeout=300, what=f"a new recovery point of {vm}")
        drill.say("every VM still Protected; a recovery point newer than the drill each")

    with drill.step("Clean up the test failover"):
        comments = "drill passed: test VMs booted, disks verified"
        pollers = {vm: failover.test_failover_cleanup(asr, vm, comments) for vm in names}
        for vm, poller in pollers.items():
            props = poller.result().properties
            drill.check(props.test_failover_state == "None", f"{vm}: {props.test_failover_state}")
            try:
                asr.compute.virtual_machines.get(group, f"{vm}-test")
                drill.check(False, f"{vm}-test still exists after cleanup")
            except ResourceNotFoundError:
                pass
        drill.say("test VMs and their disks removed; comments recorded")
