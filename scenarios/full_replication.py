"""full-replication: protect the default VMs under churn and prove the replicas are exact.

Enable replication of every VM of the default lab (push install, initial copy), wait until
each is Protected, check that recovery points come at the policy's crash-consistent interval
and app-consistent frequency (with the lab clock sped up), and verify the latest point of
each VM block by block against the source and for its application data.
"""

from __future__ import annotations

import requests
from azure.core.exceptions import ResourceNotFoundError

NAME = "full-replication"
SUMMARY = "enable replication under churn, wait for Protected, check points, verify them"

SPEED = 120.0  # lab seconds per wall second: 5 lab minutes of crash interval = 2.5 s
POLICY = {
    "name": "drill-policy",
    "rpo_threshold_minutes": 15,
    "retention_hours": 24,
    "app_consistent_hours": 1,  # the shortest the real service allows
    "crash_consistent_minutes": 5,
    "multi_vm_sync": False,
}


def vms(drill) -> list[str]:
    vcenter = drill.asr.topology["vcenter"]
    return [vm["name"] for dc in vcenter["datacenters"] for vm in dc["vms"]]


def points(drill, vm: str) -> list:
    asr = drill.asr
    site = asr.site()
    item = asr.protected(vm)
    return list(
        asr.client.recovery_points.list_by_replication_protected_items(
            asr.rg, asr.vault, site.fabric, site.container, item.name
        )
    )


def verify(drill, vm: str, point: str = "latest", failover: str | None = None) -> dict:
    """The worker's check of a point (or, with failover "test"/"run", of the disks a failover
    made from its point) against the source's manifest, and of the application data."""
    worker = drill.lab["services"]["sr-worker"]["url"]
    body = {"vm": vm, "point": point} if failover is None else {"vm": vm, "failover": failover}
    resp = requests.post(
        f"{worker}/_lab/verify",
        json=body,
        verify=drill.lab["ca_cert"],
        timeout=300,
    )
    if resp.status_code != 200:
        from .runner import DrillFailed

        raise DrillFailed(f"{vm}: verify answered {resp.status_code}: {resp.text[:500]}")
    return resp.json()


def ensure_policy(drill) -> str:
    asr = drill.asr
    try:
        policy = asr.client.replication_policies.get(asr.rg, asr.vault, POLICY["name"])
    except ResourceNotFoundError:
        policy = asr.create_policy(POLICY).result()
    mapping = f"{POLICY['name']}-mapping"
    site = asr.site()
    try:
        asr.client.replication_protection_container_mappings.get(
            asr.rg, asr.vault, site.fabric, site.container, mapping
        )
    except ResourceNotFoundError:
        asr.map_policy(policy.id, mapping).result()
    return POLICY["name"]


def run(drill) -> None:
    _run(drill)


def _run(drill) -> None:
    names = vms(drill)
    with drill.step(f"Speed the lab clock up to {SPEED:g}x and create the drill policy"):
        drill.clock.set_speed(SPEED)
        policy = ensure_policy(drill)
        drill.say(f"policy {policy}: crash-consistent every 5 min, app-consistent every 60 min")

    with drill.step(f"Enable replication of {', '.join(names)}"):
        pollers = {vm: drill.asr.enable(vm, policy=policy) for vm in names}
        for vm, poller in pollers.items():
            item = poller.result()
            drill.say(
                f"{vm}: {item.properties.protection_state}, mobility agent "
                f"{item.properties.provider_specific_details.agent_version}"
            )

    with drill.step("Wait for initial replication to finish (Protected)"):

        def protected():
            states = {vm: drill.asr.protected(vm).properties.protection_state for vm in names}
            return states if all(s == "Protected" for s in states.values()) else None

        drill.wait_for(protected, timeout=300, what="every VM to be Protected")
        for vm in names:
            rpo = drill.asr.protected(vm).properties.provider_specific_details.rpo_in_seconds
            drill.say(f"{vm}: Protected, RPO {rpo} s (lab time)")

    with drill.step("Recovery points at the crash-consistent interval"):
        intervals = {}
        for vm in names:

            def crash_points(vm=vm):
                got = [
                    p
                    for p in points(drill, vm)
                    if p.properties.recovery_point_type == "CrashConsistent"
                ]
                return got if len(got) >= 4 else None

            got = drill.wait_for(crash_points, timeout=120, what=f"4 crash points of {vm}")
            times = sorted(p.properties.recovery_point_time for p in got)
            gaps = [(b - a).total_seconds() / 60 for a, b in zip(times, times[1:])]
            intervals[vm] = [round(g, 1) for g in gaps]
            # The first point is ir-complete; the regular ones follow every 5 lab minutes.
            drill.check(
                all(4.0 <= g <= 8.0 for g in gaps[1:]),
                f"{vm}: crash-consistent points {intervals[vm]} minutes apart, not ~5",
            )
            drill.say(f"{vm}: crash-consistent points {intervals[vm][1:]} lab minutes apart")
        drill.figure("crash_point_intervals_minutes", intervals)

    with drill.step("An app-consistent recovery point after the application quiesces"):
        quiescing = [vm for vm, spec in _workloads(drill).items() if spec.get("quiesce")]
        for vm in quiescing:

            def app_point(vm=vm):
                return [
                    p
                    for p in points(drill, vm)
                    if p.properties.recovery_point_type == "AppConsistent"
                ]

            got = drill.wait_for(app_point, timeout=120, what=f"an app-consistent point of {vm}")
            drill.say(f"{vm}: app-consistent point at {got[0].properties.recovery_point_time}")
        drill.figure("app_consistent_vms", quiescing)

    with drill.step("Verify the latest recovery point of every VM"):
        for vm in names:
            result = verify(drill, vm)
            drill.check(
                result.get("ok"),
                f"{vm}: verify failed: {result.get('first_difference')}"
                f" {result.get('application')}",
            )
            drill.say(
                f"{vm}: point {result.get('tag_id')} equals the source; application data consistent"
            )


def _workloads(drill) -> dict:
    vcenter = drill.asr.topology["vcenter"]
    return {
        vm["name"]: vm.get("workload") or {} for dc in vcenter["datacenters"] for vm in dc["vms"]
    }
