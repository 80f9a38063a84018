"""The Azure side of a resync: switching a VM to a new generation, and its checksums.

When an agent begins resync generation g it uploads a resync plan
(`manifests/<vm>/rs-plan-<epoch>-<g>.json`). At the next pass the worker, with no run of the
VM in flight:

1. grows any seed disk the plan says is larger (a disk resize);
2. computes the block checksums of each seed disk over the ranges it ever wrote (its local
   mirror's allocated extents: the lab's own record) and publishes them in the cache storage
   account, batch by batch, then the index last (`components.resync` names them) — the
   process server reads them for the agent;
3. records the switch: the VM's disks now apply generation g's pass, then its journal.

A crash before step 3 repeats the switch at the next start (the seed disks have not changed:
nothing of generation g is applied before the switch). What the old streams still held is
dropped: the resync brings those blocks over by their checksums.
"""

from __future__ import annotations

import json
import logging

from components import resync as engine

from . import names
from .engine import VmReplication
from .plan import InvalidPlan, ResyncPlan, parse_resync_plan

log = logging.getLogger(__name__)


def latest_plan(cache, vm: VmReplication, known: dict) -> ResyncPlan | None:
    """The newest resync plan of the VM's epoch past its current generation. `known` caches
    parsed plans by blob name (None for an invalid one)."""
    best = None
    for name, _size in cache.list(names.resync_plan_prefix(vm.vm_id, vm.epoch)):
        if name not in known:
            try:
                known[name] = parse_resync_plan(cache.read(name))
            except InvalidPlan as exc:
                log.warning("resync plan %s ignored: %s", name, exc)
                known[name] = None
            except Exception as exc:  # deleted meanwhile, storage hiccup: next pass
                log.debug("resync plan %s not read: %s", name, exc)
                continue
        plan = known[name]
        if plan is None or plan.vm_id.lower() != vm.vm_id.lower() or plan.epoch != vm.epoch:
            continue
        if plan.generation > vm.generation and (best is None or plan.generation > best.generation):
            best = plan
    return best


def publish_checksums(seeds, cache, vm: VmReplication, plan: ResyncPlan, sizes: dict) -> dict:
    """Every seed disk's checksums as blobs, then the index; returns the index."""
    index = {"vm_id": vm.vm_id, "epoch": vm.epoch, "generation": plan.generation, "disks": {}}
    scanned = 0
    for i, seed in sorted(vm.seeds.items()):
        size = sizes[i]
        extents, read = seeds.written(seed.blob)
        scan = engine.Scan(read, engine.blocks_of(extents, size), size)
        batches = []
        for first, stop in scan.batches():
            sums = scan.batch(first, stop)
            name = engine.sums_blob(vm.vm_id, vm.epoch, plan.generation, i, first)
            cache.write(name, engine.encode_batch(sums))
            batches.append(first)
        scanned += scan.bytes_read
        index["disks"][str(i)] = {"size": size, "batches": batches}
    cache.write(engine.index_blob(vm.vm_id, vm.epoch, plan.generation), json.dumps(index).encode())
    log.info(
        "resync %d of %s: checksums of %d disk(s) published (%d bytes scanned)",
        plan.generation,
        vm.vm_id,
        len(vm.seeds),
        scanned,
    )
    return index


def stale_sums_prefixes(cache, vm: VmReplication, keep_current: bool) -> list[str]:
    """The checksum 'directories' of the VM's epoch no agent will read again: earlier
    generations', and the current one's once its pass is done (`keep_current` False). A
    newer generation's are never stale (a caller may hold the VM from before its switch)."""
    out = []
    for prefix in cache.prefixes(f"{engine.SUMS_PREFIX}/{vm.vm_id}/"):
        epoch, _, generation = prefix.rstrip("/").rsplit("/", 1)[-1].rpartition(".")
        if epoch != vm.epoch or not generation.isdigit():
            continue  # another epoch's: retiring that epoch deletes them
        if int(generation) < vm.generation or (
            int(generation) == vm.generation and not keep_current
        ):
            out.append(prefix)
    return out
