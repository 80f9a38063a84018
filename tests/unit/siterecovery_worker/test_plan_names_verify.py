"""The initial replication plan, blob names, and verify's block digests."""

from __future__ import annotations

import json

import pytest

from fakes.azure.siterecovery.worker import names, verify
from fakes.azure.siterecovery.worker.plan import InvalidPlan, current_plan, parse_plan

from .source import digests

PLAN = {
    "kind": "ir-plan",
    "vm_id": "5003c3b1-0000",
    "epoch": "e1a2b3",
    "protected_item": "5003c3b1-0000",
    "lab_time": 1796170000.0,
    "disks": [
        {"index": 1, "disk_id": "d1", "size": 8589934592, "allocated": 2621440},
        {"index": 0, "disk_id": "d0", "size": 4294967296, "allocated": 1310720},
    ],
}


def test_a_plan_parses_with_its_disks_in_index_order():
    plan = parse_plan(json.dumps(PLAN))
    assert [d.index for d in plan.disks] == [0, 1]
    assert plan.allocated == 3932160 and plan.to_json()["disks"][0]["disk_id"] == "d0"


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "manifest"},
        {"disks": []},
        {"epoch": ""},
        {"disks": [{"index": 0, "disk_id": "d", "size": 1000, "allocated": 0}]},
        {"disks": [{"index": 0, "disk_id": "d", "size": 1024, "allocated": 2048}]},
        {"lab_time": "soon"},
    ],
)
def test_an_invalid_plan_is_refused(change):
    with pytest.raises(InvalidPlan):
        parse_plan(PLAN | change)


def test_names_round_trip():
    name = names.log_name("vm-1", "e1-0-ir", 1, 12)
    assert name == "vm-1/e1-0-ir/0000000000000001-0000000000000012.log"
    ref = names.parse_log(name)
    assert (ref.vm_id, ref.stream, ref.first, ref.last) == ("vm-1", "e1-0-ir", 1, 12)
    assert names.parse_log("manifests/vm-1/ir-plan-e1.json") is None
    assert names.parse_stream("e1-0-ir") == names.Stream("e1", 0, True)
    assert names.parse_stream("e1-12") == names.Stream("e1", 12, False)
    assert names.parse_stream("nonsense") is None
    assert names.parse_plan_name("manifests/vm-1/ir-plan-e1.json") == ("vm-1", "e1")
    ref = names.snapshot_ref("asrseeddisk-vm-e1-0", "2027-01-01T00:00:00.1234567Z")
    assert names.parse_snapshot_ref(ref) == (
        names.SEED_CONTAINER,
        "asrseeddisk-vm-e1-0",
        "2027-01-01T00:00:00.1234567Z",
    )
    assert names.recovery_point_name("vm", "e1", "cc-1") == names.recovery_point_name(
        "vm", "e1", "cc-1"
    )


def test_block_digests_of_written_ranges_match_the_manifest_and_find_a_flipped_byte():
    size = 10 * verify.BLOCK + 4096  # a short last block
    disk = bytearray(size)
    disk[70000:70512] = b"\x11" * 512
    disk[size - 512 :] = b"\x22" * 512
    disk[5 * verify.BLOCK : 5 * verify.BLOCK + 512] = bytes(512)  # zeros written: no digest
    manifest = {"block_size": verify.BLOCK, "disks": {"0": digests(disk)}}
    ranges = [(69632, 70656), (5 * verify.BLOCK, 5 * verify.BLOCK + 512), (size - 512, size)]

    def read(offset, length):
        return bytes(disk[offset : offset + length])

    result = verify.compare_disk(0, "d0", read=read, ranges=ranges, size=size, manifest=manifest)
    assert result["first_difference"] is None and result["blocks"] == 2
    disk[70001] ^= 0xFF
    result = verify.compare_disk(0, "d0", read=read, ranges=ranges, size=size, manifest=manifest)
    assert result["first_difference"]["block"] == 1
    assert result["first_difference"]["offset"] == verify.BLOCK
    assert verify.block_runs([(0, 1), (65536, 65537), (3 * 65536, 3 * 65536 + 1)], 10**6) == [
        range(0, 2),
        range(3, 4),
    ]


def test_application_summary_in_auto_mode_skips_disks_without_an_os():
    absent = {"ok": False, "errors": ["no registry"], "system_area": {"ok": False}}
    assert verify.application_summary(absent)["checked"] is False
    assert verify.application_summary(absent, "required")["ok"] is False
    good = {"ok": True, "errors": [], "system_area": {"ok": True}, "app_area": {"disk": 1}}
    assert verify.application_summary(good) | {} == verify.application_summary(good)
    assert verify.application_summary(good)["ok"] is True


def test_the_current_epoch_is_the_newest_plan_not_retired():
    def plan(epoch, at, vm="vm-1"):
        return parse_plan(PLAN | {"vm_id": vm, "epoch": epoch, "lab_time": at})

    plans = [plan("e1", 100.0), plan("e2", 200.0), plan("e3", 300.0, vm="vm-2")]
    assert current_plan(plans, "vm-1", set()).epoch == "e2"
    assert current_plan(plans, "vm-1", {"e2"}).epoch == "e1"
    assert current_plan(plans, "vm-3", set()) is None


def test_logs_of_an_older_epoch_are_stale_and_of_an_unknown_one_are_not():
    prefixes = ["vm-1/e1-0-ir/", "vm-1/e1-0/", "vm-1/e2-0/", "vm-1/e3-1-ir/", "vm-1/junk/"]
    assert names.stale_stream_prefixes(prefixes, "vm-1", "e2", {"e1"}) == [
        "vm-1/e1-0-ir/",
        "vm-1/e1-0/",
    ]


def test_scattered_small_runs_are_read_in_few_requests_with_the_same_digests():
    import random

    from fakes.azure.siterecovery.worker.verify import BLOCK, snapshot_digests

    size = 64 * 2**20
    rnd = random.Random(7)
    disk = bytearray(size)
    ranges = []
    for _ in range(300):  # 8 KiB writes scattered over the disk
        offset = rnd.randrange(0, size // 8192) * 8192
        disk[offset : offset + 8192] = rnd.randbytes(8192)
        ranges.append((offset, offset + 8192))
    reads = []

    def read(offset, length):
        reads.append(length)
        return bytes(disk[offset : offset + length])

    got = snapshot_digests(read, ranges, size)
    one_by_one = snapshot_digests(lambda o, n: bytes(disk[o : o + n]), ranges, size, max_read=BLOCK)
    assert got == one_by_one and len(got) > 250
    assert len(reads) < 40 and max(reads) <= 4 * 2**20  # not one request per run
