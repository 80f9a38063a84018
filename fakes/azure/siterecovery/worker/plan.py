"""The initial replication plan a process server uploads before the initial copy starts
(`manifests/<vm id>/ir-plan-<epoch>.json`): which epoch is current, which protected item it
replicates, each disk's size and how many bytes its initial copy will send.

Parsing and validation only; an invalid plan is an `InvalidPlan` and is ignored (logged) by
the worker, never half-used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from lab.kit.wire import SECTOR


class InvalidPlan(ValueError):
    """The plan's JSON breaks the contract (docs/data-path.md)."""


@dataclass(frozen=True)
class PlanDisk:
    index: int
    disk_id: str  # the ASR disk id (disksToInclude[].diskId)
    size: int  # bytes
    allocated: int  # bytes the initial copy sends


@dataclass(frozen=True)
class IrPlan:
    vm_id: str
    epoch: str
    protected_item: str  # the ARM name of the protected item
    lab_time: float
    disks: tuple[PlanDisk, ...]

    @property
    def allocated(self) -> int:
        return sum(d.allocated for d in self.disks)

    def disk(self, index: int) -> PlanDisk:
        return next(d for d in self.disks if d.index == index)

    def to_json(self) -> dict:
        return {
            "kind": "ir-plan",
            "vm_id": self.vm_id,
            "epoch": self.epoch,
            "protected_item": self.protected_item,
            "lab_time": self.lab_time,
            "disks": [
                {"index": d.index, "disk_id": d.disk_id, "size": d.size, "allocated": d.allocated}
                for d in self.disks
            ],
        }


def _document(data: bytes | str | dict, kind: str) -> dict:
    try:
        doc = data if isinstance(data, dict) else json.loads(data)
    except ValueError as exc:
        raise InvalidPlan(f"the {kind} is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("kind") != kind:
        raise InvalidPlan(f"the plan's kind is not '{kind}'")
    return doc


def parse_plan(data: bytes | str | dict) -> IrPlan:
    doc = _document(data, "ir-plan")
    try:
        disks = tuple(
            PlanDisk(int(d["index"]), str(d["disk_id"]), int(d["size"]), int(d["allocated"]))
            for d in doc["disks"]
        )
        plan = IrPlan(
            str(doc["vm_id"]),
            str(doc["epoch"]),
            str(doc["protected_item"]),
            float(doc["lab_time"]),
            tuple(sorted(disks, key=lambda d: d.index)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidPlan(f"the plan misses or mistypes a field: {exc}") from exc
    if not plan.disks:
        raise InvalidPlan("the plan has no disks")
    if len({d.index for d in plan.disks}) != len(plan.disks):
        raise InvalidPlan("the plan lists a disk index twice")
    for d in plan.disks:
        if d.size <= 0 or d.size % SECTOR:
            raise InvalidPlan(f"disk {d.index}: size {d.size} is not a positive multiple of 512")
        if not 0 <= d.allocated <= d.size:
            raise InvalidPlan(f"disk {d.index}: allocated {d.allocated} is outside 0..size")
    if not plan.epoch or "/" in plan.epoch:
        raise InvalidPlan("the plan's epoch is empty or has a '/'")
    return plan


def current_plan(plans: list[IrPlan], vm_id: str, retired: set[str]) -> IrPlan | None:
    """The plan that names a VM's current epoch: the newest (by lab time) of that VM's plans
    whose epoch is not retired."""
    live = [p for p in plans if p.vm_id == vm_id and p.epoch not in retired]
    return max(live, key=lambda p: p.lab_time, default=None)


@dataclass(frozen=True)
class ResyncPlan:
    """`manifests/<vm id>/rs-plan-<epoch>-<g>.json`: the agent begins resync generation g of
    an epoch; each disk's current size (a grown disk grows its seed disk)."""

    vm_id: str
    epoch: str
    generation: int
    lab_time: float
    reason: str
    sizes: dict[int, int]


def parse_resync_plan(data: bytes | str | dict) -> ResyncPlan:
    doc = _document(data, "rs-plan")
    try:
        plan = ResyncPlan(
            str(doc["vm_id"]),
            str(doc["epoch"]),
            int(doc["generation"]),
            float(doc["lab_time"]),
            str(doc.get("reason") or "manual"),
            {int(d["index"]): int(d["size"]) for d in doc["disks"]},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidPlan(f"the resync plan misses or mistypes a field: {exc}") from exc
    if plan.generation < 1:
        raise InvalidPlan("a resync plan's generation is 1 or more")
    for index, size in plan.sizes.items():
        if size <= 0 or size % SECTOR:
            raise InvalidPlan(f"disk {index}: size {size} is not a positive multiple of 512")
    return plan
