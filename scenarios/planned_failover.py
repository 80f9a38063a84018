"""planned-failover: move a VM to Azure with no data lost.

The planned failover shuts the source down cleanly through vCenter; on the way down the
mobility agent tags a final crash-consistent point after the machine's last write and sends
everything up to it; Site Recovery waits for that point and fails over to it. The failed-over
VM's application data must be the source's own, to the last committed transaction (checked
offline on the source's disks), and its disks must equal the source at the final point.
Then the failover is committed.

The VM: `DRLAB_DRILL_VM` if set, else lin-web-01.
"""

from __future__ import annotations

import os

from lab import failover

from . import _failover as f

NAME = "planned-failover"
SUMMARY = "shut the source down, final sync, fail over to that point: no data lost; commit"


def run(drill) -> None:
    _run(drill, os.environ.get("DRLAB_DRILL_VM", "lin-web-01"))


def _run(drill, vm: str) -> None:
    asr = drill.asr
    with drill.step(f"Protect {vm} (if not yet) and wait for a recovery point"):
        drill.clock.set_speed(f.SPEED)
        f.ensure_protected(drill, [vm])

    with drill.step(f"Planned failover of {vm}: shut down, final sync, fail over"):
        item = failover.planned_failover(asr, vm).result().properties
        drill.check(
            item.protection_state == "PlannedFailoverCommitRequired",
            f"{vm}: {item.protection_state} after the planned failover",
        )
        point = item.failover_recovery_point_id.rsplit("/", 1)[-1]
        drill.say(f"{vm}: failed over to its final point {point}")

    with drill.step("No data lost: the Azure VM has every transaction the source committed"):
        source = f.source_application(drill, vm)  # the source is off: its disks, offline
        result = f.verify_failover(drill, vm, "run")
        drill.check(
            str(result["tag_id"]).startswith("shutdown-"),
            f"{vm}: the failover used point {result['tag_id']}, not the shutdown's final one",
        )
        app = result["application"]
        lost = (source.get("committed_txn") or 0) - (app.get("committed_txn") or 0)
        drill.figure("transactions_lost", lost)
        drill.check(lost == 0, f"{vm}: {lost} committed transactions did not reach Azure")
        made = f.azure_vm(drill, f.target_group(drill), vm)
        drill.check(made["power"] == "running" and made["application_ok"], f"{vm}: {made}")
        drill.say(
            f"{vm}: disks equal the source at the final point; committed sequence "
            f"{source.get('committed_seq')} on both sides"
        )

    with drill.step("Commit the failover"):
        item = failover.commit(asr, vm).result().properties
        drill.check(
            item.protection_state == "PlannedFailoverStatesBegin",
            f"{vm}: {item.protection_state} after commit",
        )
        drill.say(f"{vm}: committed; it runs in Azure")
