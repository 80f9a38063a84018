"""Recovery points: made when every protected disk of a VM has a snapshot at the same tag,
pruned by retention as the real service prunes.

- A tag before the epoch's first tag (`ir-complete-<epoch>`) makes no point (the appliers do
  not even snapshot there).
- A point is recorded in the vault (`ReplicationState.add_recovery_point`) under a name
  derived from (VM, epoch, tag), then in the worker's progress: recording again after a crash
  writes the same row.
- Retention (`retention_keep`): every point of the last hour of lab time; older ones, one per
  clock hour (the latest of that hour) up to the policy's `recoveryPointHistory` minutes; a
  multi-VM group's latest sync point of each hour is kept too, so every VM of the group keeps
  the same group points; the latest point is never pruned. A pruned point's snapshots are
  deleted and the point is marked pruned in the progress (its tag is never snapshotted again).

Not emulated: app-consistent points kept at their own frequency beyond the hourly thinning,
and per-point size accounting.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from lab.kit.wire import TagKind

from . import names
from .engine import Faults, SeedDisks, VmReplication, no_faults
from .progress import Progress

log = logging.getLogger(__name__)

HOUR = 3600.0
RECENT = HOUR  # every point of the last hour is kept


@dataclass(frozen=True)
class PointInfo:
    tag_id: str
    time: float
    multi_vm: bool = False


def retention_keep(points: list[PointInfo], now: float, retention_minutes: float) -> set[str]:
    """The tag ids retention keeps (see the module docstring)."""
    if not points:
        return set()
    keep = {max(points, key=lambda p: p.time).tag_id}
    horizon = now - retention_minutes * 60.0
    latest_of_hour: dict[int, PointInfo] = {}
    latest_group_of_hour: dict[int, PointInfo] = {}
    for p in points:
        if p.time >= now - RECENT:
            keep.add(p.tag_id)
        if p.time < horizon:
            continue
        # Over every point of the hour, recent ones included: the hour's survivor is the
        # same before and after the recent window slides past it.
        hour = int(p.time // HOUR)
        best = latest_of_hour.get(hour)
        if best is None or p.time > best.time:
            latest_of_hour[hour] = p
        if p.multi_vm:
            best = latest_group_of_hour.get(hour)
            if best is None or p.time > best.time:
                latest_group_of_hour[hour] = p
    keep.update(p.tag_id for p in latest_of_hour.values())
    keep.update(p.tag_id for p in latest_group_of_hour.values())
    return keep


def point_type(kind: int) -> str:
    return "AppConsistent" if kind == TagKind.APP_CONSISTENT else "CrashConsistent"


class RecoveryPoints:
    """Makes and prunes the recovery points of every VM the worker replicates."""

    def __init__(
        self,
        progress: Progress,
        vault,  # replication_state.ReplicationState (add_recovery_point, delete_recovery_points)
        seeds: SeedDisks,
        *,
        manifest_exists: Callable[[str], bool] = lambda name: False,
        delete_manifest: Callable[[str], None] = lambda name: None,
        on_point: Callable[[VmReplication, dict], None] = lambda vm, point: None,
        faults: Faults = no_faults,
    ):
        self.progress = progress
        self.vault = vault
        self.seeds = seeds
        self.manifest_exists = manifest_exists
        self.delete_manifest = delete_manifest
        self.on_point = on_point
        self.faults = faults
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self.pinned: dict[str, int] = {}  # point name -> verifications reading it now

    @contextlib.contextmanager
    def pin(self, name: str):
        """Keep a point from retention while it is read (a verify of a sped-up lab's point
        can outlast its hour)."""
        with self._locks_lock:
            self.pinned[name] = self.pinned.get(name, 0) + 1
        try:
            yield
        finally:
            with self._locks_lock:
                self.pinned[name] -= 1
                if not self.pinned[name]:
                    del self.pinned[name]

    def _lock(self, vm_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(vm_id, threading.Lock())

    def tag_reached(self, vm: VmReplication, tag_id: str) -> None:
        """A disk recorded its snapshot at `tag_id`: make the point if every disk has."""
        with self._lock(vm.vm_id):
            snaps = self.progress.tag_snapshots(vm.vm_id, vm.epoch, tag_id)
            if len(snaps) < len(vm.seeds) or self.progress.point(vm.vm_id, vm.epoch, tag_id):
                return
            self._make(vm, tag_id, snaps)

    def catch_up(self, vm: VmReplication) -> int:
        """Make the points a crash left unmade (every disk snapshotted, no point recorded)."""
        made = 0
        with self._lock(vm.vm_id):
            for row in self.progress.tags_without_point(vm.vm_id, vm.epoch, len(vm.seeds)):
                snaps = self.progress.tag_snapshots(vm.vm_id, vm.epoch, row["tag_id"])
                self._make(vm, row["tag_id"], snaps)
                made += 1
        return made

    def _make(self, vm: VmReplication, tag_id: str, snaps: list[dict]) -> None:
        first = snaps[0]
        name = names.recovery_point_name(vm.vm_id, vm.epoch, tag_id)
        manifest = names.manifest_blob(vm.vm_id, tag_id)
        manifest = manifest if self.manifest_exists(manifest) else None
        seeds = {s.index: s for s in vm.seeds.values()}
        details = {
            "tag_id": tag_id,
            "group_id": first["group_id"],
            "epoch": vm.epoch,
            "vm_id": vm.vm_id,
            "snapshots": {
                seeds[s["disk_index"]].disk_id: names.snapshot_ref(
                    seeds[s["disk_index"]].blob, s["snapshot"]
                )
                for s in snaps
            },
            "disk_indexes": {seeds[s["disk_index"]].disk_id: s["disk_index"] for s in snaps},
            "manifest": manifest,
        }
        type_ = point_type(first["kind"])
        self.faults("recovery_point")
        self.vault.add_recovery_point(
            vm.item,
            time=first["lab_time"],
            type=type_,
            multi_vm_sync_point=first["group_id"] is not None,
            details=details,
            name=name,
        )
        self.progress.record_point(
            vm.vm_id,
            vm.epoch,
            tag_id,
            name=name,
            time=first["lab_time"],
            type=type_,
            group_id=first["group_id"],
            manifest=manifest,
        )
        log.info("recovery point %s of %s at tag %s (%s)", name, vm.vm_id, tag_id, type_)
        self.on_point(
            vm,
            {
                "name": name,
                "tag_id": tag_id,
                "time": first["lab_time"],
                "type": type_,
                "multi_vm_sync_point": first["group_id"] is not None,
                "manifest": manifest,
            },
        )

    def prune(
        self, vm: VmReplication, now: float, retention_minutes: float, in_use=frozenset()
    ) -> list[str]:
        """Apply retention, but keep the points named in `in_use` (a failed-over or test VM
        was made from them); returns the names of the points pruned."""
        with self._lock(vm.vm_id):
            points = self.progress.points(vm.vm_id, vm.epoch)
            infos = [PointInfo(p["tag_id"], p["time"], p["group_id"] is not None) for p in points]
            keep = retention_keep(infos, now, retention_minutes)
            pruned = []
            for p in points:
                if p["tag_id"] in keep or p["name"] in in_use or p["name"] in self.pinned:
                    continue
                self.faults("prune")
                self.vault.delete_recovery_points(vm.item, [p["name"]])
                for snap in self.progress.tag_snapshots(vm.vm_id, vm.epoch, p["tag_id"]):
                    seed = vm.seeds[snap["disk_index"]]
                    self.seeds.delete_snapshot(seed.blob, snap["snapshot"])
                self.delete_manifest(names.manifest_blob(vm.vm_id, p["tag_id"]))
                self.progress.mark_pruned(vm.vm_id, vm.epoch, p["tag_id"])
                pruned.append(p["name"])
            return pruned
