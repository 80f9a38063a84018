"""A resync generation on the Azure side, in memory: the applier moves to the generation's
pass then its journal and makes no point before its first tag; the seed disks' checksums
published for the agent; the newest resync plan picked."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import replace

import pytest

from components import resync as checksums
from fakes.azure.siterecovery.replication_state import ProtectedItemKey
from fakes.azure.siterecovery.worker import names
from fakes.azure.siterecovery.worker.engine import SeedDisk, VmReplication
from fakes.azure.siterecovery.worker.plan import parse_plan, parse_resync_plan
from fakes.azure.siterecovery.worker.resync import latest_plan, publish_checksums
from lab.kit import wire

from .conftest import Harness
from .source import blob_name
from .test_engine import fill, replicate_initially

BLOCK = checksums.BLOCK


# -- the apply engine ---------------------------------------------------------------------------
def protected(h: Harness, rng: random.Random) -> None:
    """Initial copy, first point, some journal of generation 0 applied."""
    replicate_initially(h, rng)
    h.source.ir_complete()
    fill(h.source, 0, 4, rng)
    fill(h.source, 1, 4, rng)
    for i in h.vm.indexes:
        h.upload(h.source.flush(i))
    h.run_all()
    assert [p["tag_id"] for p in h.made] == [h.vm.first_tag]


def begin_generation(h: Harness, generation: int) -> VmReplication:
    """What the worker records when resync `generation` begins; the source's journal starts
    afresh (the agent's `restart_tracking`)."""
    h.progress.switch_generation(h.vm.vm_id, h.vm.epoch, generation, h.vm.indexes)
    h.vm = replace(h.vm, generation=generation)
    h.source.seq = [0] * len(h.source.disks)
    return h.vm


def resync_pass(h: Harness, index: int, generation: int, per_message: int = 3):
    """The resync's pass of one disk: its blocks with data, the last message END_OF_PASS. (The
    agent sends only the blocks that differ; the whole disk is a superset that proves the same.)"""
    extents = h.source.extents(index)
    groups = [extents[i : i + per_message] for i in range(0, len(extents), per_message)] or [[]]
    stream = names.pass_stream(h.vm.epoch, index, generation)
    out = []
    for seq, group in enumerate(groups, start=1):
        flags = wire.Flags.RESYNC
        if seq == len(groups):
            flags |= wire.Flags.END_OF_PASS
        records = tuple(wire.Record(o, d) for o, d in group)
        size = len(h.source.disks[index])
        out.append(wire.Message(h.vm.vm_id, stream, seq, seq, size, records, (), flags, 1.8e9))
    return out


def journal_of(h: Harness, index: int, generation: int) -> list[wire.Message]:
    """The source's pending journal of a disk, on the generation's journal stream."""
    stream = names.journal_stream(h.vm.epoch, index, generation)
    return [replace(m, disk_id=stream) for m in h.source.flush(index)]


def test_a_resync_generation_applies_its_pass_then_its_journal_and_not_the_old_stream(harness):
    h, rng = harness, random.Random(40)
    protected(h, rng)
    # Generation 0's journal: a write that reached the cache, then one the agent lost (the
    # journal overflowed). Applying the first now would undo the second.
    h.source.write(0, 0, b"\x01" * 4096)
    (stale,) = h.upload(h.source.flush(0))
    h.source.tracking = False
    h.source.write(0, 0, b"\x02" * 4096)
    h.source.tracking = True
    vm = begin_generation(h, 1)
    fill(h.source, 1, 3, rng)  # written during the pass: in the new journal
    passes = {i: resync_pass(h, i, 1) for i in vm.indexes}
    rs_complete = h.source.tag(names.first_tag(vm.epoch, 1))
    fill(h.source, 0, 2, rng)
    for i in vm.indexes:
        h.upload(passes[i])
        h.upload(journal_of(h, i, 1))
    statuses = h.run_all()
    assert [s.stream for s in statuses] == ["e1a2b3.1-0", "e1a2b3.1-1"]
    for i in vm.indexes:
        assert h.seed(i) == bytes(h.source.disks[i])
        pass_row = h.progress.stream(vm.vm_id, names.pass_stream(vm.epoch, i, 1))
        assert pass_row["done"] == 1 and pass_row["applied"] == len(passes[i])
        assert h.progress.stream(vm.vm_id, names.journal_stream(vm.epoch, i, 1))["applied"] > 0
    assert stale in h.cache.blobs  # the old stream is no longer applied (nor deleted)
    assert rs_complete in {p["tag_id"] for p in h.made}


def test_the_old_generation_stream_keeps_its_applied_sequence(harness):
    h, rng = harness, random.Random(41)
    protected(h, rng)
    before = h.progress.stream(h.vm.vm_id, "e1a2b3-0")["applied"]
    fill(h.source, 0, 2, rng)
    old = h.upload(h.source.flush(0))
    vm = begin_generation(h, 1)
    h.upload(resync_pass(h, 0, 1))
    h.run(0)
    assert h.progress.stream(vm.vm_id, "e1a2b3-0")["applied"] == before
    assert all(name in h.cache.blobs for name in old)
    assert h.seed(0) == bytes(h.source.disks[0])


def test_the_journal_waits_for_the_end_of_the_resync_pass(harness):
    h, rng = harness, random.Random(42)
    protected(h, rng)
    begin_generation(h, 1)
    fill(h.source, 0, 2, rng)
    passes = resync_pass(h, 0, 1, per_message=2)
    assert len(passes) > 1
    journal = h.upload(journal_of(h, 0, 1))
    h.upload(passes[:-1])  # the END_OF_PASS message is late
    status = h.run(0)
    assert status.stream == "e1a2b3.1-0-rs" and status.applied == len(passes) - 1
    assert all(name in h.cache.blobs for name in journal)
    h.upload(passes[-1:])
    status = h.run(0)
    assert status.stream == "e1a2b3.1-0" and not any(n in h.cache.blobs for n in journal)


def test_no_point_before_the_generations_first_tag_and_one_at_it(harness):
    h, rng = harness, random.Random(43)
    protected(h, rng)
    vm = begin_generation(h, 1)
    passes = {i: resync_pass(h, i, 1) for i in vm.indexes}
    fill(h.source, 0, 2, rng)
    early = h.source.tag("cc-during-resync")
    rs_complete = h.source.tag(names.first_tag(vm.epoch, 1))
    fill(h.source, 1, 2, rng)
    later = h.source.tag("cc-after-resync")
    expected = [bytes(d) for d in h.source.disks]
    for i in vm.indexes:
        h.upload(passes[i])
        h.upload(journal_of(h, i, 1))
    h.run_all()
    for i in vm.indexes:
        assert h.progress.snapshot(vm.vm_id, vm.epoch, early, i) is None
        assert h.progress.snapshot(vm.vm_id, vm.epoch, rs_complete, i) is not None
        assert h.snapshot_of(later, i) == expected[i]
        journal = h.progress.stream(vm.vm_id, names.journal_stream(vm.epoch, i, 1))
        assert journal["first_point"] == 1
    made = [p["tag_id"] for p in h.made]
    assert made == [names.first_tag(vm.epoch), rs_complete, later]
    assert h.progress.point(vm.vm_id, vm.epoch, early) is None


def test_a_tag_in_the_resync_pass_makes_no_snapshot(harness):
    h, rng = harness, random.Random(44)
    protected(h, rng)
    vm = begin_generation(h, 1)
    (message,) = resync_pass(h, 1, 1, per_message=1000)
    tagged = replace(
        message, tags=(wire.Tag(0, wire.TagKind.CRASH_CONSISTENT, "cc-in-pass", 1.8e9),)
    )
    h.upload([tagged])
    h.run(1)
    assert h.progress.snapshot(vm.vm_id, vm.epoch, "cc-in-pass", 1) is None
    assert blob_name(tagged) not in h.cache.blobs


# -- the seed disks' checksums --------------------------------------------------------------------
class SparseDisk:
    """A large disk of a few written ranges: bytes written, zeros elsewhere."""

    def __init__(self, size: int):
        self.size = size
        self.writes: list[tuple[int, bytes]] = []
        self.reads = 0

    def write(self, offset: int, data: bytes) -> None:
        self.writes.append((offset, bytes(data)))

    def read(self, offset: int, length: int) -> bytes:
        self.reads += 1
        out = bytearray(length)
        for at, data in self.writes:
            lo, hi = max(at, offset), min(at + len(data), offset + length)
            if lo < hi:
                out[lo - offset : hi - offset] = data[lo - at : hi - at]
        return bytes(out)

    def extents(self) -> list[tuple[int, int]]:
        return [(at, len(data)) for at, data in self.writes]


class SeedsWritten:
    """The worker's `MirroredSeedDisks.written` over sparse disks."""

    def __init__(self, disks: dict[str, SparseDisk]):
        self.disks = disks

    def written(self, blob: str):
        disk = self.disks[blob]
        return disk.extents(), disk.read


class PublishedBlobs:
    """The cache container as the worker writes and lists it (dict-backed)."""

    def __init__(self):
        self.blobs: dict[str, bytes] = {}
        self.order: list[str] = []
        self.reads: list[str] = []

    def write(self, name: str, data: bytes) -> None:
        self.blobs[name] = bytes(data)
        self.order.append(name)

    def list(self, prefix: str):
        return sorted((n, len(d)) for n, d in self.blobs.items() if n.startswith(prefix))

    def read(self, name: str) -> bytes:
        self.reads.append(name)
        return self.blobs[name]


VM_ID = "5003c3b1-aaaa-bbbb-cccc-000000000009"
EPOCH = "e7"
GiB = 1 << 30


def replication(sizes: dict[int, int], generation: int = 0) -> VmReplication:
    plan = parse_plan(
        {
            "kind": "ir-plan",
            "vm_id": VM_ID,
            "epoch": EPOCH,
            "protected_item": "item-9",
            "lab_time": 1.0,
            "disks": [
                {"index": i, "disk_id": f"d{i}", "size": s, "allocated": 0}
                for i, s in sizes.items()
            ],
        }
    )
    seeds = {i: SeedDisk(i, f"d{i}", names.seed_blob(VM_ID, EPOCH, i), s) for i, s in sizes.items()}
    return VmReplication(
        VM_ID, EPOCH, ProtectedItemKey("f", "c", "item-9"), plan, seeds, generation
    )


def resync_plan(generation: int, sizes: dict[int, int], **change) -> dict:
    return {
        "kind": "rs-plan",
        "vm_id": VM_ID,
        "epoch": EPOCH,
        "generation": generation,
        "lab_time": 2.0,
        "reason": "journal-overflow",
        "disks": [{"index": i, "size": s} for i, s in sizes.items()],
    } | change


def expected_sums(disk: SparseDisk, first: int, stop: int) -> dict[int, bytes]:
    """BLAKE2b-128 of every non-zero block in [first, stop), computed block by block."""
    out = {}
    blocks = {
        b for at, d in disk.writes for b in range(at // BLOCK, (at + len(d) - 1) // BLOCK + 1)
    }
    for b in sorted(blocks):
        if not first <= b < stop:
            continue
        data = disk.read(b * BLOCK, min(BLOCK, disk.size - b * BLOCK))
        if any(data):
            out[b] = hashlib.blake2b(data, digest_size=16).digest()
    return out


@pytest.fixture
def sparse_vm():
    rng = random.Random(45)
    sizes = {0: 2 * GiB + 4096, 1: 64 << 20, 2: 8 << 20}  # disk 0: a short last block
    disks = {names.seed_blob(VM_ID, EPOCH, i): SparseDisk(s) for i, s in sizes.items()}
    d0, d1 = (disks[names.seed_blob(VM_ID, EPOCH, i)] for i in (0, 1))
    d0.write(3 * BLOCK + 512, rng.randbytes(8192))
    d0.write(10 * BLOCK, bytes(BLOCK))  # zeros written: a range, and no checksum
    d0.write((checksums.BATCH_BLOCKS + 5) * BLOCK - 512, rng.randbytes(1024))  # across blocks
    d0.write(d0.size - 1024, rng.randbytes(1024))  # in the short last block
    d1.write(0, rng.randbytes(3 * BLOCK))
    # disk 2 was never written: no batch at all
    return replication(sizes), SeedsWritten(disks), sizes


def test_published_checksums_are_each_batch_of_non_zero_blocks_then_the_index(sparse_vm):
    vm, seeds, sizes = sparse_vm
    cache = PublishedBlobs()
    plan = parse_resync_plan(resync_plan(1, sizes))
    index = publish_checksums(seeds, cache, vm, plan, sizes)
    batch = checksums.BATCH_BLOCKS
    assert index == {
        "vm_id": VM_ID,
        "epoch": EPOCH,
        "generation": 1,
        "disks": {
            "0": {"size": sizes[0], "batches": [0, batch, 2 * batch]},
            "1": {"size": sizes[1], "batches": [0]},
            "2": {"size": sizes[2], "batches": []},
        },
    }
    index_blob = checksums.index_blob(VM_ID, EPOCH, 1)
    assert cache.order[-1] == index_blob  # last: its presence says every batch is there
    assert json.loads(cache.blobs[index_blob]) == index
    for i, entry in index["disks"].items():
        disk = seeds.disks[vm.seeds[int(i)].blob]
        for first in entry["batches"]:
            blob = checksums.sums_blob(VM_ID, EPOCH, 1, int(i), first)
            got = checksums.decode_batch(cache.blobs[blob])
            assert got == expected_sums(disk, first, first + batch), (i, first)
    sums0 = checksums.decode_batch(cache.blobs[checksums.sums_blob(VM_ID, EPOCH, 1, 0, 0)])
    assert sorted(sums0) == [3]  # the block of zeros written has no checksum
    last = (sizes[0] - 1) // BLOCK
    tail = checksums.decode_batch(cache.blobs[checksums.sums_blob(VM_ID, EPOCH, 1, 0, 2 * batch)])
    assert list(tail) == [last]
    short = seeds.disks[vm.seeds[0].blob].read(last * BLOCK, sizes[0] - last * BLOCK)
    assert tail[last] == hashlib.blake2b(short, digest_size=16).digest()
    assert all(b.startswith(checksums.sums_prefix(VM_ID, EPOCH, 1)) for b in cache.blobs)


def test_checksums_cover_a_grown_disk_to_its_new_size(sparse_vm):
    vm, seeds, sizes = sparse_vm
    disk1 = seeds.disks[vm.seeds[1].blob]
    grown = dict(sizes) | {1: 128 << 20}
    disk1.size = grown[1]
    disk1.write(100 << 20, b"\x07" * 4096)  # past the old size
    cache = PublishedBlobs()
    index = publish_checksums(seeds, cache, vm, parse_resync_plan(resync_plan(2, grown)), grown)
    assert index["disks"]["1"]["size"] == 128 << 20
    sums = checksums.decode_batch(cache.blobs[checksums.sums_blob(VM_ID, EPOCH, 2, 1, 0)])
    assert (100 << 20) // BLOCK in sums


def test_the_latest_plan_is_the_newest_generation_past_the_current_one():
    vm = replication({0: 1 << 20}, generation=1)
    sizes = {0: 1 << 20}
    cache = PublishedBlobs()

    def put(generation, doc):
        data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        cache.write(names.resync_plan_blob(VM_ID, EPOCH, generation), data)

    put(1, resync_plan(1, sizes))  # already the current generation
    put(2, resync_plan(2, sizes))
    put(3, resync_plan(3, sizes))
    put(5, b"{torn")  # invalid: ignored
    put(6, resync_plan(6, sizes, kind="ir-plan"))  # invalid too
    put(7, resync_plan(7, sizes, epoch="e8"))  # another epoch's, under this name
    put(8, resync_plan(8, sizes, vm_id="another-vm"))
    known: dict = {}
    plan = latest_plan(cache, vm, known)
    assert plan is not None and plan.generation == 3 and plan.reason == "journal-overflow"
    assert known[names.resync_plan_blob(VM_ID, EPOCH, 5)] is None
    assert known[names.resync_plan_blob(VM_ID, EPOCH, 6)] is None
    # Parsed plans are remembered: a second look reads nothing again.
    reads = len(cache.reads)
    assert latest_plan(cache, vm, known).generation == 3
    assert len(cache.reads) == reads


def test_no_plan_past_the_current_generation_is_none():
    sizes = {0: 1 << 20}
    cache = PublishedBlobs()
    for g in (1, 2):
        cache.write(
            names.resync_plan_blob(VM_ID, EPOCH, g), json.dumps(resync_plan(g, sizes)).encode()
        )
    assert latest_plan(cache, replication(sizes, generation=2), {}) is None
    assert latest_plan(cache, replication(sizes, generation=0), {}).generation == 2
    assert latest_plan(PublishedBlobs(), replication(sizes), {}) is None


def test_a_plan_that_cannot_be_read_now_is_tried_again():
    sizes = {0: 1 << 20}
    vm = replication(sizes)

    class Flaky(PublishedBlobs):
        failing = True

        def read(self, name):
            if self.failing:
                raise ConnectionError("storage hiccup")
            return super().read(name)

    cache = Flaky()
    cache.write(names.resync_plan_blob(VM_ID, EPOCH, 1), json.dumps(resync_plan(1, sizes)).encode())
    known: dict = {}
    assert latest_plan(cache, vm, known) is None and known == {}
    cache.failing = False
    assert latest_plan(cache, vm, known).generation == 1
