"""What the resync drills share: wait for a VM to need a resync (and say why), resynchronize
it through the SDK (or wait for the automatic one), and report what the resync cost — bytes
sent against bytes that differed — and that a recovery point after it verifies."""

from __future__ import annotations

import os

import requests

from . import _failover as f
from . import full_replication as fr

DEFAULT_VM = "lin-db-01"


def drill_vm() -> str:
    return os.environ.get("DRLAB_DRILL_VM", DEFAULT_VM)


def protect(drill, vm: str) -> None:
    drill.clock.set_speed(f.SPEED)
    f.ensure_protected(drill, [vm])
    wait_idle(drill, vm)


def wait_idle(drill, vm: str) -> None:
    """No resync required or running (e.g. an earlier drill's, or the automatic one)."""

    def idle():
        p = drill.asr.protected(vm).properties
        disks = p.provider_specific_details.protected_disks or []
        running = p.current_scenario is not None and (
            p.current_scenario.scenario_name == "RepairReplication"
        )
        return not running and not any(d.resync_required == "True" for d in disks)

    drill.wait_for(idle, timeout=300, what=f"{vm} with no resync required or running")


def wait_required(drill, vm: str, code: str):
    """The item shows the resync as required with `code` (ResyncRequired or DiskResized):
    on its disks, as a health error, and as a replication event."""

    def shown():
        p = drill.asr.protected(vm).properties
        errors = [e for e in p.health_errors or [] if e.error_code == code]
        disks = p.provider_specific_details.protected_disks or []
        if errors and any(d.resync_required == "True" for d in disks):
            return p, errors[0], disks
        running = p.current_scenario is not None and (
            p.current_scenario.scenario_name == "RepairReplication"
        )
        return ("running", None, disks) if running else None

    found = drill.wait_for(shown, timeout=180, what=f"{vm} to show {code}")
    if found[0] == "running":  # the automatic resync (off-hours window) was quicker
        drill.say(f"{vm}: the automatic resync began before the requirement was read")
        return found
    item, error, disks = found
    drill.say(f"{vm}: {error.error_code}: {error.summary_message}")
    events = [
        e
        for e in drill.asr.events()
        if e.properties.affected_object_friendly_name == vm
        and "Resynchronization" in (e.properties.description or "")
        and "required" in (e.properties.description or "")
    ]
    drill.check(events, f"{vm}: no replication event says the resync is required")
    return found


def resync(drill, vm: str) -> dict:
    """Resynchronize (repairReplication) and wait for its job; an automatic resync already
    running is waited for instead. Returns the job's properties."""
    asr = drill.asr
    current = asr.protected(vm).properties.current_scenario
    if current is not None and current.scenario_name == "RepairReplication":
        name = current.job_id.rsplit("/", 1)[-1]
        drill.say(f"{vm}: waiting for the resync already running ({name})")
        job = drill.wait_for(
            lambda: (j := asr.job(name)).properties.state in ("Succeeded", "Failed") and j,
            timeout=600,
            what=f"resync job {name}",
        )
        return job.properties
    poller, _ = asr.resync(vm)
    poller.result()
    return asr.job(asr.resync_job_name(vm)).properties


def agent_counters(drill, vm: str) -> dict:
    """What the agent's last resync cost, summed over its disks (the configuration server's
    view of the agent, through the lab's control API)."""
    url = f"{drill.lab['services'][cs_name(drill)]['url']}/_lab/state"
    state = requests.get(url, verify=drill.lab["ca_cert"], timeout=30).json()
    agent = next(a for a in state["agents"] if a["hostname"] == vm)
    resync = ((agent.get("status") or {}).get("replication") or {}).get("resync") or {}
    totals = dict.fromkeys(
        ("source_scanned", "checksum_bytes", "differing_bytes", "sent_bytes", "blocks_sent"), 0
    )
    for disk in (resync.get("disks") or {}).values():
        for k in totals:
            totals[k] += int(disk.get(k) or 0)
    return {"generation": resync.get("generation"), "state": resync.get("state"), **totals}


def seed_sizes(drill, vm: str) -> list[int]:
    """The sizes of the VM's seed disks (the Site Recovery worker's view, its control API)."""
    url = f"{drill.lab['services']['sr-worker']['url']}/_lab/state"
    state = requests.get(url, verify=drill.lab["ca_cert"], timeout=30).json()
    vm_id = drill.asr.protected(vm).properties.provider_specific_details.vm_id
    row = next(v for v in state["vms"] if v["vm_id"].lower() == vm_id.lower())
    return sorted(int(size) for size in row["seed_disk_sizes"].values())


def cs_name(drill) -> str:
    return drill.asr.topology["onprem"]["configuration_server"]["name"]


def report_and_verify(drill, vm: str, job) -> dict:
    """The resync's figures (sent against differing), the item back to Protected, and a
    recovery point after the resync that verifies."""
    drill.check(job.state == "Succeeded", f"{vm}: the resync job ended {job.state}: {job.errors}")

    def protected_again():
        p = drill.asr.protected(vm).properties
        d = p.provider_specific_details
        disks = d.protected_disks or []
        done = (
            d.protection_stage == "Protected"
            and not any(x.resync_required == "True" for x in disks)
            and not any(e.error_code.startswith("Resync") for e in p.health_errors or [])
        )
        return done and disks

    disks = drill.wait_for(protected_again, timeout=120, what=f"{vm} Protected after the resync")
    counters = agent_counters(drill, vm)
    sent, differing = counters["sent_bytes"], counters["differing_bytes"]
    drill.figure("bytes_differed", differing)
    drill.figure("bytes_sent", sent)
    drill.figure("checksum_bytes", counters["checksum_bytes"])
    drill.figure("source_bytes_scanned", counters["source_scanned"])
    drill.figure(
        "transferred_bytes_on_item", sum(int(d.resync_total_transferred_bytes or 0) for d in disks)
    )
    drill.say(
        f"{vm}: {sent / 2**20:.1f} MiB sent for {differing / 2**20:.1f} MiB that differed "
        f"({counters['source_scanned'] / 2**20:.0f} MiB scanned, checksums "
        f"{counters['checksum_bytes'] / 2**10:.0f} KiB)"
    )
    # Blocks travel compressed; random data does not compress, and the wire adds a little.
    drill.check(
        sent <= 1.1 * differing + (64 << 10),
        f"{vm}: {sent} bytes sent for {differing} bytes that differed (more than 1.1x)",
    )
    result = fr.verify(drill, vm, "latest")
    drill.check(
        result.get("ok"),
        f"{vm}: the recovery point after the resync differs from the source: "
        f"{result.get('first_difference')} {result.get('application')}",
    )
    drill.say(f"{vm}: recovery point {result.get('tag_id')} after the resync verifies")
    return counters


def power_on(drill, vm_name: str) -> None:
    from pyVim.connect import Disconnect
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    si = f._vcenter(drill)
    try:
        vm = _find(si, vim, vm_name)
        if vm.runtime.powerState != "poweredOn":
            WaitForTask(vm.PowerOnVM_Task())
    finally:
        Disconnect(si)


def grow_disk(drill, vm_name: str, factor: int = 2) -> tuple[str, int, int]:
    """ReconfigVM_Task: the VM's last disk grows `factor` times; (label, before, after)."""
    from pyVim.connect import Disconnect
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    si = f._vcenter(drill)
    try:
        vm = _find(si, vim, vm_name)
        disks = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        disk = disks[-1]
        before = disk.capacityInBytes
        disk.capacityInBytes = before * factor
        disk.capacityInKB = disk.capacityInBytes // 1024
        change = vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)
        WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[change])))
        return disk.deviceInfo.label, before, before * factor
    finally:
        Disconnect(si)


def run_in_guest(drill, vm_name: str, program: str, arguments: str, timeout: float = 300) -> int:
    """Start a program in the guest (vSphere guest operations) and wait for its exit code."""
    from pyVim.connect import Disconnect
    from pyVmomi import vim

    accounts = drill.asr.topology["vcenter"]["guest_accounts"]["linux"]
    si = f._vcenter(drill)
    try:
        vm = _find(si, vim, vm_name)
        auth = vim.vm.guest.NamePasswordAuthentication(
            username=accounts["user"], password=accounts["password"]
        )
        pm = si.content.guestOperationsManager.processManager
        spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath=program, arguments=arguments)
        pid = pm.StartProgramInGuest(vm, auth, spec)
        ended = drill.wait_for(
            lambda: [p for p in pm.ListProcessesInGuest(vm, auth, [pid]) if p.exitCode is not None],
            timeout=timeout,
            what=f"{program} in {vm_name}",
            interval=0.5,
        )
        return ended[0].exitCode
    finally:
        Disconnect(si)


def _find(si, vim, name: str):
    view = si.content.viewManager.CreateContainerView(
        si.content.rootFolder, [vim.VirtualMachine], True
    )
    try:
        return next(v for v in view.view if v.name == name)
    finally:
        view.DestroyView()
