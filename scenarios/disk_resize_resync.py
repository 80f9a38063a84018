"""disk-resize-resync: a protected disk grows (ReconfigVM_Task); resync takes the new size.

The VM's last disk is grown to twice its size through pyvmomi, as an administrator grows a
disk in vCenter (sparse disks: growing costs nothing). The agent sees the disk grow, stops the
change stream and reports the resync as required with `diskResized` on that disk. The resync
grows the seed disk and sends only the blocks that differ; a recovery point after it verifies,
with the disk at its new size.

The VM: `DRLAB_DRILL_VM` if set, else lin-db-01.
"""

from __future__ import annotations

from . import _resync as rs

NAME = "disk-resize-resync"
SUMMARY = "grow a protected disk: diskResized, resync to the new size, only differences sent"


def run(drill) -> None:
    _run(drill, rs.drill_vm())


def _run(drill, vm: str) -> None:
    with drill.step(f"Protect {vm} (if not yet) and wait for a recovery point"):
        rs.protect(drill, vm)

    with drill.step(f"Grow {vm}'s last disk (ReconfigVM_Task)"):
        label, before, after = rs.grow_disk(drill, vm)
        drill.figure("disk_bytes_before", before)
        drill.figure("disk_bytes_after", after)
        drill.say(f"{vm}: {label} grew from {before / 2**30:g} GiB to {after / 2**30:g} GiB")

    with drill.step("The agent sees the disk grow: diskResized, resync required"):
        _item, _error, disks = rs.wait_required(drill, vm, "DiskResized")
        resized = [d.disk_id for d in disks if d.disk_resized == "True"]
        if _item != "running":
            drill.check(resized, f"{vm}: no disk shows diskResized")

    with drill.step(f"Resynchronize {vm} (repairReplication)"):
        job = rs.resync(drill, vm)

    with drill.step("The seed disk has the new size; only the differences were sent"):
        rs.report_and_verify(drill, vm, job)
        sizes = rs.seed_sizes(drill, vm)
        drill.check(after in sizes, f"{vm}: no seed disk of {after} bytes (seed disks: {sizes})")
        drill.say(f"{vm}: the seed disk is {after / 2**30:g} GiB")
