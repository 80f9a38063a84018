"""A resync generation's stream names, first tag, stale streams, and its plan."""

from __future__ import annotations

import json

import pytest

from fakes.azure.siterecovery.worker import names
from fakes.azure.siterecovery.worker.plan import InvalidPlan, parse_resync_plan

PLAN = {
    "kind": "rs-plan",
    "vm_id": "5003c3b1-0000",
    "epoch": "e1a2b3",
    "generation": 2,
    "protected_item": "5003c3b1-0000",
    "lab_time": 1796170000.0,
    "reason": "disk-resized",
    "disks": [
        {"index": 0, "disk_id": "d0", "size": 4294967296, "allocated": 1310720},
        {"index": 1, "disk_id": "d1", "size": 8589934592, "allocated": 2621440},
    ],
}


@pytest.mark.parametrize(
    ("stream", "name"),
    [
        (names.Stream("e1a2b3", 0, True), "e1a2b3-0-ir"),
        (names.Stream("e1a2b3", 3, False), "e1a2b3-3"),
        (names.Stream("e1a2b3", 0, True, 1), "e1a2b3.1-0-rs"),
        (names.Stream("e1a2b3", 2, False, 1), "e1a2b3.1-2"),
        (names.Stream("e1a2b3", 12, True, 17), "e1a2b3.17-12-rs"),
        (names.Stream("e1a2b3", 12, False, 17), "e1a2b3.17-12"),
    ],
)
def test_a_stream_name_round_trips(stream, name):
    assert stream.name == name
    assert names.parse_stream(name) == stream


def test_pass_and_journal_stream_names_follow_the_generation():
    assert names.pass_stream("e1", 0) == names.ir_stream("e1", 0) == "e1-0-ir"
    assert names.pass_stream("e1", 0, 2) == "e1.2-0-rs"
    assert names.journal_stream("e1", 4) == "e1-4"
    assert names.journal_stream("e1", 4, 2) == "e1.2-4"


@pytest.mark.parametrize(
    "name",
    [
        "e1a2b3-0-rs",  # a resync's pass needs a generation
        "e1a2b3.1-0-ir",  # the initial copy has none
        "e1a2b3.0-0-rs",  # generation 0 is never written with a dot
    ],
)
def test_a_pass_stream_of_the_wrong_generation_is_not_a_stream(name):
    assert names.parse_stream(name) is None


def test_first_tag_of_the_epoch_and_of_a_resync_generation():
    assert names.first_tag("e1a2b3") == "ir-complete-e1a2b3"
    assert names.first_tag("e1a2b3", 0) == "ir-complete-e1a2b3"
    assert names.first_tag("e1a2b3", 1) == "rs-complete-e1a2b3-1"
    assert names.first_tag("e1a2b3", 12) == "rs-complete-e1a2b3-12"


def test_resync_plan_blobs_are_under_their_prefix():
    blob = names.resync_plan_blob("vm-1", "e1", 3)
    assert blob == "manifests/vm-1/rs-plan-e1-3.json"
    assert blob.startswith(names.resync_plan_prefix("vm-1", "e1"))
    assert names.parse_plan_name(blob) is None  # not an initial replication plan


PREFIXES = [
    "vm-1/e1-0-ir/",  # an older epoch
    "vm-1/e2-0-ir/",
    "vm-1/e2-0/",
    "vm-1/e2.1-0-rs/",
    "vm-1/e2.1-0/",
    "vm-1/e2.2-0-rs/",
    "vm-1/e2.2-0/",
    "vm-1/e2.3-0/",  # a later generation's journal, ahead of its switch
    "vm-1/e3.1-0/",  # an unknown epoch
    "vm-1/junk/",
]


def test_earlier_generations_of_the_current_epoch_are_stale_and_the_current_is_not():
    stale = names.stale_stream_prefixes(PREFIXES, "vm-1", "e2", {"e1"}, generation=2)
    assert stale == [
        "vm-1/e1-0-ir/",
        "vm-1/e2-0-ir/",
        "vm-1/e2-0/",
        "vm-1/e2.1-0-rs/",
        "vm-1/e2.1-0/",
    ]


def test_generation_one_makes_generation_zero_stale():
    stale = names.stale_stream_prefixes(PREFIXES, "vm-1", "e2", set(), generation=1)
    assert stale == ["vm-1/e2-0-ir/", "vm-1/e2-0/"]


def test_without_a_generation_only_older_epochs_are_stale():
    assert names.stale_stream_prefixes(PREFIXES, "vm-1", "e2", {"e1"}) == ["vm-1/e1-0-ir/"]
    assert names.stale_stream_prefixes(PREFIXES, "vm-1", "e2", {"e1"}, generation=0) == [
        "vm-1/e1-0-ir/"
    ]


def test_a_resync_plan_parses():
    plan = parse_resync_plan(json.dumps(PLAN))
    assert (plan.vm_id, plan.epoch, plan.generation) == ("5003c3b1-0000", "e1a2b3", 2)
    assert plan.lab_time == 1796170000.0 and plan.reason == "disk-resized"
    assert plan.sizes == {0: 4294967296, 1: 8589934592}
    assert parse_resync_plan(PLAN | {"reason": None}).reason == "manual"
    assert parse_resync_plan(json.dumps(PLAN).encode()).generation == 2


@pytest.mark.parametrize(
    "data",
    [
        "{not json",
        json.dumps(PLAN | {"kind": "ir-plan"}),
        json.dumps([PLAN]),
        json.dumps(PLAN | {"generation": 0}),
        json.dumps(PLAN | {"generation": -1}),
        json.dumps(PLAN | {"disks": [{"index": 0, "disk_id": "d0", "size": 1000}]}),
        json.dumps(PLAN | {"disks": [{"index": 0, "disk_id": "d0", "size": 0}]}),
        json.dumps({k: v for k, v in PLAN.items() if k != "epoch"}),
        json.dumps(PLAN | {"lab_time": "soon"}),
    ],
    ids=[
        "not-json",
        "wrong-kind",
        "not-an-object",
        "generation-0",
        "negative-generation",
        "size-not-a-multiple-of-512",
        "size-zero",
        "no-epoch",
        "bad-lab-time",
    ],
)
def test_an_invalid_resync_plan_is_refused(data):
    with pytest.raises(InvalidPlan):
        parse_resync_plan(data)
