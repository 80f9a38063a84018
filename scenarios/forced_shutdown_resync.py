"""forced-shutdown-resync: a hard power-off loses the filter's journal; resync brings it back.

The VM is powered off without a clean shutdown (the site loses power) and powered on again.
At boot the mobility agent finds the unclean stop: what its filter tracked in memory is gone,
so the change stream has a hole. Replication stops and the item shows resync required (on its
disks, as a health error, as an event). A resync through the SDK (repairReplication) compares
block checksums of the source and of the seed disks and sends only what differs; a recovery
point after it must verify.

The VM: `DRLAB_DRILL_VM` if set, else lin-db-01.
"""

from __future__ import annotations

from . import _failover as f
from . import _resync as rs

NAME = "forced-shutdown-resync"
SUMMARY = "hard power-off and on: resync required, checksum resync sends only the differences"


def run(drill) -> None:
    _run(drill, rs.drill_vm())


def _run(drill, vm: str) -> None:
    with drill.step(f"Protect {vm} (if not yet) and wait for a recovery point"):
        rs.protect(drill, vm)

    with drill.step(f"Hard power-off of {vm}, then power it on"):
        f.power_off(drill, vm)
        rs.power_on(drill, vm)
        drill.say(f"{vm}: powered off without a clean shutdown, and on again")

    with drill.step("The agent finds the unclean stop: resync required"):
        rs.wait_required(drill, vm, "ResyncRequired")

    with drill.step(f"Resynchronize {vm} (repairReplication)"):
        job = rs.resync(drill, vm)

    with drill.step("Only the differences were sent; a point after the resync verifies"):
        rs.report_and_verify(drill, vm, job)
