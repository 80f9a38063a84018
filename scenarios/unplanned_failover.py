"""unplanned-failover: the on-premises site goes down; fail over to what reached Azure and
measure the data lost against the RPO.

The disaster: the site's links to Azure go down (nothing more is replicated) and the VM loses
power. Site Recovery fails over to the latest processed recovery point. The data lost is
measured two ways — in lab time, from that point to the disaster, and in committed
transactions, from the source's disks (read offline) to the failed-over VM's — and reported
against the policy's RPO threshold and the RPO the item showed before the disaster. The
failed-over VM's disks must equal the source at its point, and its application data be
consistent at boot. Then the failover is committed and the links come back.

The VM: `DRLAB_DRILL_VM` if set, else lin-db-01.
"""

from __future__ import annotations

import os

from lab import failover

from . import _failover as f

NAME = "unplanned-failover"
SUMMARY = "site down: fail over to the latest processed point; data loss against the RPO"


def run(drill) -> None:
    links = []
    try:
        _run(drill, os.environ.get("DRLAB_DRILL_VM", "lin-db-01"), links)
    finally:
        for name in links:
            f.set_link(drill, name, True)


def _run(drill, vm: str, links: list) -> None:
    asr = drill.asr
    with drill.step(f"Protect {vm} (if not yet) and wait for a recovery point"):
        drill.clock.set_speed(f.SPEED)
        f.ensure_protected(drill, [vm])
        details = f.item(drill, vm).provider_specific_details
        rpo_before = details.rpo_in_seconds
        threshold = f.policy_rpo_threshold(drill, vm)
        drill.say(f"{vm}: RPO {rpo_before} s (threshold {threshold} s)")

    with drill.step("Disaster: the site's links to Azure go down and the VM loses power"):
        links.extend(f.site_links(drill))
        for name in links:
            f.set_link(drill, name, False)
        disaster = drill.clock.time()
        f.power_off(drill, vm)
        drill.say(f"links down: {', '.join(links)}; {vm} powered off")

    with drill.step(f"Unplanned failover of {vm} to the latest processed point"):
        item = failover.unplanned_failover(asr, vm).result().properties
        drill.check(
            item.protection_state == "UnplannedFailoverCommitPendingStatesBegin",
            f"{vm}: {item.protection_state} after the failover",
        )
        made = f.azure_vm(drill, f.target_group(drill), vm)
        drill.check(made["power"] == "running" and made["application_ok"], f"{vm}: {made}")
        drill.say(f"{vm}: running in Azure; application data consistent at boot")

    with drill.step("Measure the data lost against the RPO"):
        result = f.verify_failover(drill, vm, "run")
        source = f.source_application(drill, vm)
        lost_seconds = max(0.0, disaster - result["time"])
        lost_txn = (source.get("committed_txn") or 0) - (
            result["application"].get("committed_txn") or 0
        )
        drill.figure("data_loss_lab_seconds", round(lost_seconds, 1))
        drill.figure("transactions_lost", lost_txn)
        drill.figure("rpo_before_seconds", rpo_before)
        drill.figure("rpo_threshold_seconds", threshold)
        drill.say(
            f"{vm}: point {result['tag_id']} ({result['type']}) is {lost_seconds:.0f} lab s "
            f"before the disaster; {lost_txn} committed transactions lost; RPO threshold "
            f"{threshold} s: {'within' if lost_seconds <= threshold else 'OVER'}"
        )
        drill.check(lost_txn >= 0, f"{vm}: Azure has transactions the source never committed")

    with drill.step("Commit the failover"):
        item = failover.commit(asr, vm).result().properties
        drill.check(
            item.protection_state == "UnplannedFailoverCommitted",
            f"{vm}: {item.protection_state} after commit",
        )
        drill.say(f"{vm}: committed; its recovery points are gone")
