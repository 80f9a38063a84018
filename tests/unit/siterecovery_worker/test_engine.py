"""The apply engine in memory: order, continuity, duplicates, tags and the first point,
crash at every step of a log."""

from __future__ import annotations

import os
import random

import pytest

from fakes.azure.siterecovery.worker import names
from lab.kit import wire

from .conftest import Harness, MiB
from .source import SourceVm, blob_name


def fill(source: SourceVm, index: int, count: int, rng: random.Random, size: int = 8192):
    for _ in range(count):
        offset = rng.randrange(0, len(source.disks[index]) - size, 512)
        source.write(index, offset, rng.randbytes(size))


def replicate_initially(h: Harness, rng: random.Random):
    """Data on the disks, tracking on, the initial copy, the first tag."""
    for i in range(len(h.source.disks)):
        fill(h.source, i, 20, rng)
    h.source.start_tracking()
    h.adopt()
    for i in range(len(h.source.disks)):
        h.upload(h.source.initial_replication(i))


def test_initial_replication_then_journal_makes_the_seed_equal_the_source(harness):
    h, rng = harness, random.Random(1)
    replicate_initially(h, rng)
    fill(h.source, 0, 10, rng)  # written during the initial copy: journaled
    first = h.source.ir_complete()
    fill(h.source, 1, 10, rng)
    for i in (0, 1):
        h.upload(h.source.flush(i))
    statuses = h.run_all()
    assert [s.stream for s in statuses] == ["e1a2b3-0", "e1a2b3-1"]
    for i in (0, 1):
        assert h.seed(i) == bytes(h.source.disks[i])
    assert not h.cache.blobs  # every applied log deleted
    (point,) = h.vault.recovery_points(h.key)
    assert point["details"]["tag_id"] == first and point["type"] == "CrashConsistent"
    assert h.progress.point(h.vm.vm_id, h.vm.epoch, first)["name"] == point["name"]


def test_journal_logs_wait_for_the_end_of_the_initial_copy(harness):
    h, rng = harness, random.Random(2)
    for i in (0, 1):
        fill(h.source, i, 5, rng)
    h.source.start_tracking()
    h.adopt()
    ir = h.source.initial_replication(0)
    fill(h.source, 0, 3, rng)
    journal = h.source.flush(0)
    h.upload(journal + ir[:-1])  # the END_OF_PASS message is late
    status = h.run(0)
    assert status.stream == "e1a2b3-0-ir" and status.applied == len(ir) - 1
    assert all(blob_name(m) in h.cache.blobs for m in journal)
    assert h.progress.stream(h.vm.vm_id, "e1a2b3-0")["applied"] == 0
    h.upload(ir[-1:])
    status = h.run(0)
    assert status.stream == "e1a2b3-0" and status.applied == journal[-1].last_sequence
    assert h.seed(0) == bytes(h.source.disks[0])


def test_a_gap_waits_and_names_the_missing_range(harness):
    h, rng = harness, random.Random(3)
    replicate_initially(h, rng)
    h.source.ir_complete()
    for _ in range(6):
        fill(h.source, 0, 1, rng)
    messages = h.source.flush(0, per_message=2)  # 7 entries: [1-2] [3-4] [5-6] [7]
    h.upload([messages[0], messages[2], messages[3]])
    status = h.run(0)
    assert status.applied == 2 and status.gap == (3, 4) and status.pending == 2
    h.upload([messages[1]])
    status = h.run(0)
    assert status.applied == 7 and status.gap is None
    assert h.seed(0) == bytes(h.source.disks[0])


def test_a_log_applied_before_is_deleted_without_applying_it(harness):
    h, rng = harness, random.Random(4)
    replicate_initially(h, rng)
    h.source.ir_complete()
    fill(h.source, 0, 4, rng)
    messages = h.source.flush(0)
    h.upload(messages)
    h.run(0)
    # The process server uploads the same range again (it crashed before it saw the ack),
    # with different bytes inside: it must not be applied.
    old = messages[0]
    forged = wire.Message(
        old.vm_id,
        old.disk_id,
        old.first_sequence,
        old.last_sequence,
        old.disk_size,
        tuple(wire.Record(r.offset, b"\xee" * len(r.data)) for r in old.records),
        old.tags,
        old.flags,
        old.captured_at,
    )
    (name,) = h.upload([forged])
    h.run(0)
    assert name not in h.cache.blobs
    assert h.seed(0) == bytes(h.source.disks[0])


def test_an_overlapping_or_unreadable_log_blocks_the_stream_and_stays(harness):
    h, rng = harness, random.Random(5)
    replicate_initially(h, rng)
    h.source.ir_complete()
    fill(h.source, 0, 2, rng)
    first, second = h.source.flush(0, per_message=2)
    h.upload([first], key=os.urandom(32))  # sealed with another vault's key
    status = h.run(0)
    assert status.blocked and "cannot be opened" in status.blocked and status.applied == 0
    assert names.log_name(h.vm.vm_id, "e1a2b3-0", 1, 2) in h.cache.blobs
    h.upload([first])
    h.run(0)
    overlapping = wire.Message(
        second.vm_id,
        second.disk_id,
        2,
        second.last_sequence,
        second.disk_size,
        second.records,
        second.tags,
        second.flags,
        second.captured_at,
    )
    h.upload([overlapping])
    status = h.run(0)
    assert status.blocked and "overlaps" in status.blocked


def test_tags_before_the_first_point_make_no_snapshot_and_points_need_every_disk(harness):
    h, rng = harness, random.Random(6)
    replicate_initially(h, rng)
    early = h.source.tag("cc-early")
    first = h.source.ir_complete()
    fill(h.source, 0, 3, rng)
    fill(h.source, 1, 3, rng)
    later = h.source.tag("cc-later", kind=wire.TagKind.APP_CONSISTENT)
    expected = [bytes(d) for d in h.source.disks]
    fill(h.source, 0, 3, rng)
    for i in (0, 1):
        h.upload(h.source.flush(i, per_message=3))
    h.run(0)
    assert h.progress.snapshot(h.vm.vm_id, h.vm.epoch, early, 0) is None
    assert h.progress.snapshot(h.vm.vm_id, h.vm.epoch, first, 0) is not None
    assert h.vault.recovery_points(h.key) == []  # disk 1 has not reached any tag yet
    h.run(1)
    points = {p["details"]["tag_id"]: p for p in h.vault.recovery_points(h.key)}
    assert set(points) == {first, later}
    assert points[later]["type"] == "AppConsistent"
    assert [p["tag_id"] for p in h.made] == [first, later]
    for i in (0, 1):
        assert h.snapshot_of(later, i) == expected[i]
        snaps = points[later]["details"]["snapshots"]
        assert snaps[h.source.disk_ids[i]].startswith(f"{names.SEED_CONTAINER}/")


def test_a_group_tag_makes_a_multi_vm_sync_point(harness):
    h, rng = harness, random.Random(7)
    replicate_initially(h, rng)
    h.source.ir_complete()
    group = h.source.tag("g-payroll-cc-1", group_id="payroll")
    for i in (0, 1):
        h.upload(h.source.flush(i))
    h.run_all()
    point = next(p for p in h.vault.recovery_points(h.key) if p["details"]["tag_id"] == group)
    assert point["multiVmSyncPoint"] is True and point["details"]["group_id"] == "payroll"


def test_the_manifest_of_the_tag_is_named_in_the_point(harness):
    h, rng = harness, random.Random(8)
    replicate_initially(h, rng)
    first = h.source.ir_complete()
    h.upload_manifests()
    for i in (0, 1):
        h.upload(h.source.flush(i))
    h.run_all()
    (point,) = h.vault.recovery_points(h.key)
    assert point["details"]["manifest"] == names.manifest_blob(h.vm.vm_id, first)


def test_a_bigger_disk_size_grows_the_seed_disk(harness):
    h, rng = harness, random.Random(9)
    replicate_initially(h, rng)
    h.source.ir_complete()
    h.source.disks[1].extend(bytes(MiB))  # the source disk grew
    h.source.write(1, 2 * MiB - 4096, rng.randbytes(4096))
    h.upload(h.source.flush(1))
    h.run(1)
    assert h.seed(1) == bytes(h.source.disks[1])
    assert h.progress.seed_disks(h.vm.vm_id)[1]["size"] == 2 * MiB


class Crash(Exception):
    pass


def scenario(tmp_path, name: str):
    """A VM replicated through its first point, then one journal log with writes and two
    tags still to apply; returns the harness and that log's blob name."""
    clock_source = SourceVm(
        "5003c3b1-aaaa-bbbb-cccc-000000000002", "e9", "item-2", [MiB, MiB], clock=lambda: 1.8e9
    )
    h = Harness(tmp_path, clock_source, name=name)
    rng = random.Random(10)
    replicate_initially(h, rng)
    h.source.ir_complete()
    for i in (0, 1):
        h.upload(h.source.flush(i))
    h.run_all()
    # The log under test: overlapping writes, a tag, more writes, a tag (disk 0); disk 1 has
    # the same tags already applied, so the tags complete points while disk 0 applies.
    src = h.source
    src.write(0, 0, rng.randbytes(64 * 1024))
    src.write(0, 32 * 1024, rng.randbytes(64 * 1024))
    src.tag("cc-a")
    src.write(0, 4096, rng.randbytes(8192))
    src.write(0, 512 * 1024, rng.randbytes(6 * 2**20 // 8))
    src.tag("cc-b")
    (log,) = src.flush(0, per_message=100)
    h.upload(src.flush(1))
    h.run(1)
    (name,) = h.upload([log])
    return h, name


def outcome(h: Harness) -> dict:
    vm = h.vm
    return {
        "seeds": [h.seed(i) for i in vm.indexes],
        "snapshots": {tag: [h.snapshot_of(tag, i) for i in vm.indexes] for tag in ("cc-a", "cc-b")},
        "points": sorted(
            (p["name"], p["details"]["tag_id"], p["type"]) for p in h.vault.recovery_points(h.key)
        ),
        "applied": [h.progress.stream(vm.vm_id, f"{vm.epoch}-{i}")["applied"] for i in vm.indexes],
        "logs": sorted(h.cache.blobs),
    }


def test_a_crash_at_any_step_of_a_log_then_a_restart_gives_the_same_result(tmp_path):
    reference, _ = scenario(tmp_path, "reference")
    steps: list[str] = []
    reference_points = reference.points(lambda op: steps.append(op))
    reference.applier(0, faults=lambda op: steps.append(op), points=reference_points).run()
    expected = outcome(reference)
    assert steps.count("snapshot") == 2 and steps.count("recovery_point") == 2
    assert len(steps) > 8
    for crash_at in range(len(steps)):
        h, name = scenario(tmp_path, f"crash-{crash_at}")
        seen = []

        def crash(op, seen=seen, crash_at=crash_at):
            seen.append(op)
            if len(seen) - 1 == crash_at:
                raise Crash(op)

        with pytest.raises(Crash):
            h.applier(0, faults=crash).run()
        # The restarted worker: new objects over the same progress and storage.
        h.points().catch_up(h.vm)
        h.run(0)
        assert outcome(h) == expected, f"crash at step {crash_at} ({steps[crash_at]})"
        assert name not in h.cache.blobs


def test_retention_prunes_points_their_snapshots_and_manifests_for_good(harness, clock):
    h, rng = harness, random.Random(12)
    replicate_initially(h, rng)
    first = h.source.ir_complete(lab_time=clock() - 5 * 3600)
    old = [h.source.tag(f"cc-old-{n}", lab_time=clock() - 3 * 3600 + n * 600) for n in range(3)]
    recent = h.source.tag("cc-recent", lab_time=clock() - 60)
    h.upload_manifests()
    for i in (0, 1):
        h.upload(h.source.flush(i))
    h.run_all()
    assert len(h.vault.recovery_points(h.key)) == 5
    pruned = h.points().prune(h.vm, clock(), retention_minutes=4 * 60)
    kept = {p["details"]["tag_id"] for p in h.vault.recovery_points(h.key)}
    assert kept == {old[-1], recent}  # the first point is past the retention
    assert len(pruned) == 3
    blobs = {s.blob for s in h.vm.seeds.values()}
    assert all(b in blobs for b, _ in h.seeds.snapshots)
    assert len(h.seeds.snapshots) == 2 * len(kept)
    assert names.manifest_blob(h.vm.vm_id, first) not in h.cache.blobs
    assert names.manifest_blob(h.vm.vm_id, recent) in h.cache.blobs
    # Applying the same tags again (a log re-uploaded after a crash) snapshots nothing new.
    assert h.points().catch_up(h.vm) == 0
    assert h.progress.point(h.vm.vm_id, h.vm.epoch, first)["pruned"] == 1
