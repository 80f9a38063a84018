"""Checksum resync on in-memory disks: only differing blocks are sent, holes are cleared, the
replica ends equal to the source, and batches cross the wire intact."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components import resync

BLOCK = resync.BLOCK
SIZE = 64 * BLOCK


def _disk(blocks: dict[int, bytes]) -> bytearray:
    disk = bytearray(SIZE)
    for b, data in blocks.items():
        disk[b * BLOCK : b * BLOCK + len(data)] = data
    return disk


def _scan(disk: bytearray, written: list[int]) -> resync.Scan:
    return resync.Scan(
        lambda o, n: bytes(disk[o : o + n]),
        resync.blocks_of([(b * BLOCK, BLOCK) for b in written], SIZE),
        SIZE,
    )


def _apply(replica: bytearray, sent: list):
    def send(blocks, clears):
        for offset, data in blocks:
            replica[offset : offset + len(data)] = data
        for offset in clears:
            replica[offset : offset + BLOCK] = bytes(BLOCK)
        sent.append((blocks, clears))
        return sum(len(d) for _, d in blocks)

    return send


def test_only_the_blocks_that_differ_are_sent_and_holes_are_cleared():
    rnd = random.Random(3)
    data = {b: rnd.randbytes(BLOCK) for b in range(0, 40)}
    source = _disk(data)
    replica = bytearray(source)
    source[5 * BLOCK : 5 * BLOCK + 10] = b"x" * 10  # a few bytes of one block
    source[30 * BLOCK : 31 * BLOCK] = bytes(BLOCK)  # the source punched a hole
    replica[50 * BLOCK : 51 * BLOCK] = rnd.randbytes(BLOCK)  # the replica has stale data
    sent = []
    counters = resync.resync_disk(
        _scan(source, list(range(40))),
        _scan(replica, [*range(40), 50]),
        _apply(replica, sent),
        batch_blocks=16,
    )
    assert replica == source
    assert counters.blocks_sent == 1 and counters.sent_bytes == BLOCK
    assert counters.blocks_cleared == 2  # block 30 (hole now) and 50 (stale)
    assert counters.differing_bytes == 3 * BLOCK
    assert counters.checksum_bytes == 41 * (4 + resync.DIGEST_SIZE)  # the replica's 41 blocks
    assert counters.source_scanned == 40 * BLOCK


def test_an_equal_replica_costs_checksums_only():
    source = _disk({b: bytes([b + 1]) * BLOCK for b in range(8)})
    replica = bytearray(source)
    sent = []
    counters = resync.resync_disk(
        _scan(source, list(range(8))), _scan(replica, list(range(8))), _apply(replica, sent)
    )
    assert sent == [] and counters.sent_bytes == 0 and counters.differing_bytes == 0


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(st.integers(0, 63), st.binary(min_size=1, max_size=64), max_size=12),
    st.dictionaries(st.integers(0, 63), st.binary(min_size=1, max_size=64), max_size=12),
)
def test_any_replica_ends_equal_to_its_source(source_blocks, replica_blocks):
    source, replica = _disk(source_blocks), _disk(replica_blocks)
    resync.resync_disk(
        _scan(source, list(source_blocks)),
        _scan(replica, list(replica_blocks)),
        _apply(replica, []),
        batch_blocks=8,
    )
    assert replica == source


def test_batches_round_trip_and_damage_is_refused():
    batch = {7: b"a" * 16, 1: b"b" * 16}
    assert resync.decode_batch(resync.encode_batch(batch)) == batch
    with pytest.raises(ValueError):
        resync.decode_batch(resync.encode_batch(batch)[:-1])
    assert resync.block_checksum(bytes(BLOCK)) is None
