"""A worker harness without sockets: in-memory cache and disks, the real progress database,
the real vault API (`ReplicationState`) over a temporary SQLite with one protected item."""

from __future__ import annotations

import os

import pytest

from fakes.azure.siterecovery import ids
from fakes.azure.siterecovery.replication_state import ProtectedItemKey, ReplicationState
from fakes.azure.siterecovery.worker import names
from fakes.azure.siterecovery.worker.engine import DiskApplier, SeedDisk, VmReplication
from fakes.azure.siterecovery.worker.pages import PageWriter
from fakes.azure.siterecovery.worker.plan import parse_plan
from fakes.azure.siterecovery.worker.points import RecoveryPoints
from fakes.azure.siterecovery.worker.progress import Progress
from lab.kit import wire

from .memory import MemoryCache, MemorySeeds
from .source import SourceVm, blob_name

MiB = 2**20
KEY = os.urandom(32)
SCOPE = ids.VaultScope("sub-1", "rg-1", "vault-1")


class LabClock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def seed_vault(path, vm: SourceVm, policy: dict | None = None) -> tuple[ReplicationState, object]:
    vault = ReplicationState(path, SCOPE)
    key = ProtectedItemKey("fabric-1", "cloud_1", vm.protected_item)
    store = vault.store
    with store.transaction() as db:
        store.put(db, "policies", ("policy-1",), {"name": "policy-1", "settings": policy or {}})
        store.put(
            db,
            "protected_items",
            (key.fabric, key.container, key.name),
            {
                "fabric": key.fabric,
                "container": key.container,
                "name": key.name,
                "friendlyName": "vm-under-test",
                "protectionState": "InitialReplicationPending",
                "policy": "policy-1",
                "protectableItemName": vm.vm_id,
                "enableInput": {
                    "disksToInclude": [{"diskId": d} for d in vm.disk_ids],
                },
                "vm": {
                    "disks": [
                        {"id": d, "name": d, "capacityInBytes": len(disk)}
                        for d, disk in zip(vm.disk_ids, vm.disks, strict=True)
                    ]
                },
            },
        )
    return vault, key


class Harness:
    """One VM's replication, adopted: seed disks created, streams recorded."""

    def __init__(self, tmp_path, source: SourceVm, name: str = "h"):
        self.tmp_path = tmp_path
        self.source = source
        self.cache = MemoryCache()
        self.seeds = MemorySeeds()
        self.progress = Progress(tmp_path / f"{name}-progress.db")
        self.vault, self.key = seed_vault(tmp_path / f"{name}-vault.db", source)
        self.made: list[dict] = []
        self.vm: VmReplication | None = None

    def adopt(self, plan: dict | None = None) -> VmReplication:
        plan = parse_plan(plan or self.source.plan())
        seeds = []
        for d in plan.disks:
            blob = names.seed_blob(plan.vm_id, plan.epoch, d.index)
            self.seeds.create(blob, d.size)
            seeds.append({"index": d.index, "disk_id": d.disk_id, "blob": blob, "size": d.size})
        item = (self.key.fabric, self.key.container, self.key.name)
        self.progress.adopt(plan.vm_id, plan.epoch, item, plan.to_json(), seeds)
        self.vm = VmReplication(
            plan.vm_id,
            plan.epoch,
            self.key,
            plan,
            {s["index"]: SeedDisk(s["index"], s["disk_id"], s["blob"], s["size"]) for s in seeds},
        )
        return self.vm

    def points(self, faults=lambda op: None) -> RecoveryPoints:
        return RecoveryPoints(
            self.progress,
            self.vault,
            self.seeds,
            manifest_exists=self.cache.exists,
            delete_manifest=self.cache.delete,
            on_point=lambda vm, p: self.made.append(p),
            faults=faults,
        )

    def upload(self, messages, key: bytes = KEY) -> list[str]:
        out = []
        for m in messages:
            name = blob_name(m)
            self.cache.put(name, wire.seal(m, key))
            out.append(name)
        return out

    def upload_manifests(self) -> None:
        import json

        for tag, manifest in self.source.manifests.items():
            self.cache.put(
                names.manifest_blob(self.source.vm_id, tag), json.dumps(manifest).encode()
            )

    def applier(self, index: int, faults=lambda op: None, points=None) -> DiskApplier:
        points = points or self.points(faults)
        return DiskApplier(
            self.vm,
            index,
            cache=self.cache,
            seeds=self.seeds,
            progress=self.progress,
            key=KEY,
            writer=PageWriter(self.seeds, faults),
            on_tag=points.tag_reached,
            faults=faults,
        )

    def run(self, index: int, faults=lambda op: None):
        return self.applier(index, faults).run()

    def run_all(self):
        return [self.run(i) for i in self.vm.indexes]

    def seed(self, index: int) -> bytes:
        return bytes(self.seeds.blobs[self.vm.seeds[index].blob])

    def snapshot_of(self, tag_id: str, index: int) -> bytes:
        snap = self.progress.snapshot(self.vm.vm_id, self.vm.epoch, tag_id, index)
        return self.seeds.snapshots[(self.vm.seeds[index].blob, snap)]


@pytest.fixture
def clock():
    return LabClock()


@pytest.fixture
def source(clock):
    return SourceVm(
        "5003c3b1-aaaa-bbbb-cccc-000000000001", "e1a2b3", "item-1", [2 * MiB, MiB], clock=clock
    )


@pytest.fixture
def harness(tmp_path, source):
    h = Harness(tmp_path, source)
    yield h
    h.progress.close()
    h.vault.close()
