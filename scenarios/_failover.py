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


# -- the on-premises site -------------------------------------------------------------------
def _vcenter(drill):
    import ssl
    from urllib.parse import urlsplit

    from pyVim.connect import SmartConnect

    env = drill.lab["env"]
    url = urlsplit(env["DRLAB_VCENTER_URL"])
    return SmartConnect(
        host=url.hostname,
        port=url.port,
        user=env["DRLAB_VCENTER_USER"],
        pwd=env["DRLAB_VCENTER_PASSWORD"],
        sslContext=ssl.create_default_context(cafile=drill.lab["ca_cert"]),
    )


def power_off(drill, vm_name: str) -> None:
    """A hard power-off through pyvmomi (the site loses power; no clean shutdown)."""
    from pyVim.connect import Disconnect
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    si = _vcenter(drill)
    try:
        view = si.content.viewManager.CreateContainerView(
            si.content.rootFolder, [vim.VirtualMachine], True
        )
        vm = next(v for v in view.view if v.name == vm_name)
        view.DestroyView()
        if vm.runtime.powerState != "poweredOff":
            WaitForTask(vm.PowerOffVM_Task())
    finally:
        Disconnect(si)


def source_application(drill, vm_name: str) -> dict:
    """The application's data on the source VM's own disks (`drlab vm verify`): committed
    transaction and sequence, checked offline when the VM is off."""
    import requests

    url = f"{drill.lab['services']['vcenter']['url']}/_lab/vms/{vm_name}/verify"
    response = requests.post(url, verify=drill.lab["ca_cert"], timeout=120)
    response.raise_for_status()
    return response.json()


def set_link(drill, name: str, enabled: bool) -> None:
    """Take one of the lab's network links down or up (`drlab link down|up`)."""
    import requests

    url = f"{drill.lab['services']['links']['url']}/proxies/{name}"
    response = requests.post(
        url, json={"enabled": enabled}, verify=drill.lab["ca_cert"], timeout=30
    )
    response.raise_for_status()


def site_links(drill) -> list[str]:
    """The links that carry the on-premises site's replication (agent and process server)."""
    import requests

    url = f"{drill.lab['services']['links']['url']}/proxies"
    response = requests.get(url, verify=drill.lab["ca_cert"], timeout=30)
    response.raise_for_status()
    return sorted(n for n in response.json() if n != "vpn")


def policy_rpo_threshold(drill, vm: str) -> int | None:
    """The RPO threshold (seconds) of the policy that protects `vm`."""
    asr = drill.asr
    policy_id = drill.asr.protected(vm).properties.policy_id
    policy = asr.client.replication_policies.get(asr.rg, asr.vault, policy_id.rsplit("/", 1)[-1])
    minutes = policy.properties.provider_specific_details.recovery_point_threshold_in_minutes
    return minutes * 60 if minutes is not None else None
