"""multi-vm-plan: a recovery plan of two VMs in one consistency group, with a manual action,
test-failed over in boot order — and proof that the group's shared point is consistent.

lin-web-01 sends transfers to lin-db-01 (the ledger workload: a book on each VM's disk; every
transfer received must have been sent). Both are protected in the replication group `web-db`
under a policy with multi-VM sync, so their recovery points share tags. The plan boots
lin-db-01 first, pauses on a manual action ("check the database") until the job is resumed,
then boots lin-web-01 and runs a script action with the plan's context. The test VMs' disks
must equal the sources at the shared point, and the ledger's invariant must hold across the
two test VMs. The same check on points of different instants (sender at one group point,
receiver at the next) must fail: that is what a shared point protects from. Then cleanup.
"""

from __future__ import annotations

import json

import requests
from azure.core.exceptions import ResourceNotFoundError

from lab import failover, plans

from . import _failover as f

NAME = "multi-vm-plan"
SUMMARY = "a 2-VM consistency group in a plan with a manual action; ledger proof of the point"

SENDER, RECEIVER = "lin-web-01", "lin-db-01"
GROUP = "web-db"
PLAN = "web-db-plan"
POLICY = {
    "name": "group-policy",
    "rpo_threshold_minutes": 15,
    "retention_hours": 24,
    "app_consistent_hours": 1,
    "crash_consistent_minutes": 5,
    "multi_vm_sync": True,
}
SCRIPT = "record-plan-context.py"


def run(drill) -> None:
    _run(drill)


def _ensure_group(drill) -> None:
    asr = drill.asr
    try:
        policy = asr.client.replication_policies.get(asr.rg, asr.vault, POLICY["name"])
    except ResourceNotFoundError:
        policy = asr.create_policy(POLICY).result()
        asr.map_policy(policy.id, f"{POLICY['name']}-mapping").result()
    protected = {i.properties.friendly_name: i for i in asr.protected_items()}
    pollers = {}
    for vm in (SENDER, RECEIVER):
        if vm in protected:
            group = protected[vm].properties.provider_specific_details.multi_vm_group_name
            drill.check(
                group == GROUP,
                f"{vm} is protected outside the group {GROUP}: run this drill on a fresh lab",
            )
            continue
        pollers[vm] = asr.enable(vm, policy=POLICY["name"], group=GROUP)
    for vm, poller in pollers.items():
        poller.result()
        drill.say(f"{vm}: replication enabled in group {GROUP}")


def _group_points(drill, vm) -> list:
    return [
        p
        for p in failover.recovery_points(drill.asr, vm)
        if getattr(p.properties.provider_specific_details, "is_multi_vm_sync_point", None)
        in ("True", True)
    ]


def _ledger(drill, sender: dict, receiver: dict) -> dict:
    worker = drill.lab["services"]["sr-worker"]["url"]
    response = requests.post(
        f"{worker}/_lab/verify-ledger",
        json={"sender": {"vm": SENDER, **sender}, "receiver": {"vm": RECEIVER, **receiver}},
        verify=drill.lab["ca_cert"],
        timeout=300,
    )
    drill.check(response.status_code == 200, f"verify-ledger: {response.text[:300]}")
    return response.json()


def _run(drill) -> None:
    asr = drill.asr
    group = f.target_group(drill)
    with drill.step(f"Protect {SENDER} and {RECEIVER} in the consistency group {GROUP}"):
        drill.clock.set_speed(f.SPEED)
        _ensure_group(drill)

        def shared():
            both = [_group_points(drill, vm) for vm in (SENDER, RECEIVER)]
            return all(len(points) >= 2 for points in both)

        drill.wait_for(shared, timeout=300, what="two group recovery points of each VM")
        drill.say("both VMs Protected with shared (multi-VM) recovery points")

    with drill.step("Proof: the ledger holds at a shared point, not across two instants"):
        at_shared = _ledger(drill, {"point": "latest"}, {"point": "latest"})
        drill.check(at_shared["shared_point"], f"the latest points differ: {at_shared}")
        drill.check(at_shared["ok"], f"the ledger is inconsistent at a shared point: {at_shared}")
        drill.say(
            f"shared point {at_shared['sender_point']['tag_id']}: {at_shared['sent']} sent, "
            f"{at_shared['received']} received, {at_shared['in_flight']} in flight: consistent"
        )
        older = _group_points(drill, SENDER)[-1].name
        mixed = _ledger(drill, {"point": older}, {"point": "latest"})
        drill.check(
            not mixed["ok"] and mixed["violations"],
            f"the ledger held across two instants (no transfers between them?): {mixed}",
        )
        drill.figure("violations_at_independent_points", len(mixed["violations"]))
        drill.say(
            f"sender at an earlier point, receiver at the latest: {len(mixed['violations'])} "
            "transfers received but never sent — independent points are not consistent"
        )

    with drill.step(
        f"Create the plan {PLAN}: {RECEIVER} boots first, a manual action, then {SENDER}"
    ):
        plans.create(
            asr,
            PLAN,
            [
                {"vms": [RECEIVER], "end": [{"name": "check-db", "manual": "Check the database"}]},
                {"vms": [SENDER], "end": [{"name": "record", "script": SCRIPT}]},
            ],
        ).result()
        plan = plans.get(asr, PLAN)
        drill.check(
            "TestFailover" in plan.properties.allowed_operations,
            f"the plan allows {plan.properties.allowed_operations}",
        )

    with drill.step("Test failover of the plan (latest crash-consistent, multi-VM sync)"):
        poller = plans.test_failover(asr, PLAN, "latest-crash", multi_vm_sync=True)

        def suspended():
            job = plans.running_job(asr, PLAN)
            return job if job is not None and job.properties.state == "Suspended" else None

        job = drill.wait_for(
            suspended, timeout=300, what="the plan's job to reach its manual action"
        )
        f.azure_vm(drill, group, f"{RECEIVER}-test")  # group 1 is up
        try:
            asr.compute.virtual_machines.get(group, f"{SENDER}-test")
            drill.check(False, f"{SENDER}-test booted before the manual action of group 1")
        except ResourceNotFoundError:
            pass
        drill.say(
            f"job {job.name} waits on the manual action; {RECEIVER}-test is up, {SENDER} not yet"
        )
        plans.resume(asr, job.name, "database checked").result()
        poller.result()
        drill.wait_for(
            lambda: plans.get(asr, PLAN).properties.current_scenario is None,
            timeout=300,
            what="the plan's test failover to finish",
        )
        plan = plans.get(asr, PLAN)
        drill.check(
            plan.properties.allowed_operations == ["TestFailoverCleanup"],
            f"after the test failover the plan allows {plan.properties.allowed_operations}",
        )

    with drill.step("The test VMs: booted, disks equal the sources, the ledger consistent"):
        for vm in (RECEIVER, SENDER):
            made = f.azure_vm(drill, group, f"{vm}-test")
            drill.check(made["power"] == "running" and made["application_ok"], f"{vm}: {made}")
            f.verify_failover(drill, vm, "test")
        proof = _ledger(drill, {"failover": "test"}, {"failover": "test"})
        drill.check(proof["shared_point"], f"the plan used different points: {proof}")
        drill.check(proof["ok"], f"the failed-over pair is inconsistent: {proof}")
        drill.figure("shared_point", proof["sender_point"]["tag_id"])
        drill.figure("transfers_in_flight", proof["in_flight"])
        output = drill.state_dir / "scripts" / "output" / f"{PLAN}.jsonl"
        context = json.loads(output.read_text().splitlines()[-1])
        drill.check(
            {v["vm"] for v in context["vms"]} == {SENDER, RECEIVER},
            f"the script action saw {context['vms']}",
        )
        drill.say(
            f"both at shared point {proof['sender_point']['tag_id']}: {proof['sent']} sent, "
            f"{proof['received']} received; the script action saw both VMs"
        )

    with drill.step("Clean up the plan's test failover"):
        poller = plans.test_failover_cleanup(asr, PLAN, "multi-VM drill passed")
        poller.result()
        for vm in (SENDER, RECEIVER):
            try:
                asr.compute.virtual_machines.get(group, f"{vm}-test")
                drill.check(False, f"{vm}-test still exists after cleanup")
            except ResourceNotFoundError:
                pass
        drill.say("test VMs removed")
