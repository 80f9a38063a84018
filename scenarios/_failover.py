"""What the failover drills share: protect VMs when they are not yet, read a failed-over VM
through azure-mgmt-compute, verify its disks against the source, and the item's state."""

from __future__ import annotations

from lab import failover

from . import full_replication as fr

SPEED = fr.SPEED


def ensure_protected(drill, names: list[str]) -> None:
    """Enable replication of the VMs that are not protected yet, and wait until each is
    Protected with a recovery point (the drill's policy: crash-consistent every 5 min)."""
    asr = drill.asr
    policy = fr.ensure_policy(drill)
    protected = {i.properties.friendly_name for i in asr.protected_items()}
    pollers = {vm: asr.enable(vm, policy=policy) for vm in names if vm not in protected}
    for vm, poller in pollers.items():
        poller.result()
        drill.say(f"{vm}: replication enabled")

    def ready():
        for vm in names:
            if asr.protected(vm).properties.protection_state != "Protected":
                return False
            if not failover.recovery_points(asr, vm):
                return False
        return True

    drill.wait_for(ready, timeout=300, what=f"{', '.join(names)} Protected with a point")


def item(drill, vm: str):
    return drill.asr.protected(vm).properties


def azure_vm(drill, group: str, name: str) -> dict:
    """The failed-over VM as azure-mgmt-compute reads it: power, network, application check."""
    compute = drill.asr.compute
    vm = compute.virtual_machines.get(group, name)
    view = compute.virtual_machines.instance_view(group, name)
    codes = {s.code.split("/")[0]: s for s in view.statuses or []}
    check = codes.get("ApplicationCheck")
    network = drill.asr.network
    subnets = []
    for nic_ref in vm.network_profile.network_interfaces:
        nic = network.network_interfaces.get(group, nic_ref.id.rsplit("/", 1)[-1])
        subnets += [c.subnet.id for c in nic.ip_configurations]
    return {
        "name": vm.name,
        "tags": vm.tags or {},
        "power": codes["PowerState"].code.split("/")[1] if "PowerState" in codes else None,
        "application_ok": check is not None and check.code.endswith("/ok"),
        "application": check.message if check is not None else None,
        "vnets": sorted({s.split("/virtualNetworks/")[1].split("/")[0] for s in subnets}),
    }


def verify_failover(drill, vm: str, which: str) -> dict:
    """The failed-over VM's disks, as made, against the source at their recovery point."""
    result = fr.verify(drill, vm, failover=which)
    drill.check(
        result.get("ok"),
        f"{vm}: the {which} failover VM's disks differ from the source at point "
        f"{result.get('point')}: {result.get('first_difference')} {result.get('application')}",
    )
    return result


def target_group(drill) -> str:
    return drill.asr.settings.get("target_resource_group", "drlab-target")


def vm_names(drill) -> list[str]:
    return fr.vms(drill)
