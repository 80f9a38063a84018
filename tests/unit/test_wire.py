"""The replication wire format: every valid message round-trips, plain and sealed, and every
damage (a flipped byte, a missing byte, a truncation, a wrong key, a relabelled log) is caught
with an error that says what is wrong."""

import os
import random
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.kit import wire
from lab.kit.wire import Flags, Message, Record, Tag, TagKind

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))

ids = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=24).filter(
    lambda s: len(s.encode()) <= wire.MAX_ID_BYTES
)


@st.composite
def records(draw, disk_sectors: int):
    n = draw(st.integers(0, 6))
    out = []
    for _ in range(n):
        sectors = draw(st.integers(1, 8))
        start = draw(st.integers(0, disk_sectors - sectors))
        kind = draw(st.sampled_from(["random", "zeros", "pattern"]))
        size = sectors * wire.SECTOR
        if kind == "random":
            data = random.Random(draw(st.integers(0, 2**32))).randbytes(size)
        elif kind == "zeros":
            data = bytes(size)
        else:
            data = bytes([draw(st.integers(0, 255))]) * size
        out.append(Record(start * wire.SECTOR, data))
    return tuple(out)


@st.composite
def messages(draw):
    disk_sectors = draw(st.integers(8, 1 << 24))
    recs = draw(records(disk_sectors))
    positions = sorted(draw(st.lists(st.integers(0, len(recs)), max_size=4)))
    tags = tuple(
        Tag(
            position=p,
            kind=draw(st.sampled_from(list(TagKind))),
            tag_id=draw(ids),
            lab_time=draw(st.floats(allow_nan=False, allow_infinity=False)),
            group_id=draw(st.none() | ids),
        )
        for p in positions
    )
    first = draw(st.integers(0, 2**64 - 1))
    last = draw(st.integers(first, 2**64 - 1))
    flags = draw(
        st.sampled_from(
            [
                Flags.NONE,
                Flags.INITIAL_REPLICATION,
                Flags.INITIAL_REPLICATION | Flags.END_OF_PASS,
                Flags.RESYNC,
                Flags.RESYNC | Flags.END_OF_PASS,
            ]
        )
    )
    return Message(
        vm_id=draw(ids),
        disk_id=draw(ids),
        first_sequence=first,
        last_sequence=last,
        disk_size=disk_sectors * wire.SECTOR,
        records=recs,
        tags=tags,
        flags=flags,
        captured_at=draw(st.floats(0, 4e9, allow_nan=False)),
    )


def sample(records=2, tags=True) -> Message:
    recs = tuple(Record(i * 4096, bytes([i + 1]) * 1024) for i in range(records))
    tag_list = (
        (
            Tag(1, TagKind.CRASH_CONSISTENT, "cc-1", 1000.5),
            Tag(records, TagKind.APP_CONSISTENT, "ac-1", 1001.0, group_id="grp-1"),
        )
        if tags
        else ()
    )
    return Message(
        "vm-win-app-01", "disk-1", 10, 19, 8 * 2**30, recs, tag_list, captured_at=1000.25
    )


# -- round trips -------------------------------------------------------------------------------
@SETTINGS
@given(messages())
def test_every_valid_message_round_trips(message):
    encoded = wire.encode(message)
    assert wire.decode(encoded) == message
    assert b"".join(wire.encode_parts(message)) == encoded
    assert wire.message_length(encoded[: wire.PRELUDE_SIZE]) == len(encoded)
    assert wire.peek_identity(encoded) == message.identity


@SETTINGS
@given(messages())
def test_every_valid_message_round_trips_sealed(message):
    sealed = wire.seal(message, KEY)
    assert wire.open_sealed(sealed, KEY) == message
    assert wire.message_length(sealed[: wire.PRELUDE_SIZE]) == len(sealed)
    assert wire.peek_identity(sealed) == message.identity
    # The process server seals the agent's bytes as they came, without re-encoding.
    assert wire.open_sealed(wire.seal(wire.encode(message), KEY), KEY) == message


def test_an_empty_message_round_trips():
    empty = Message("vm", "disk", 7, 7, 2**20)
    assert wire.decode(wire.encode(empty)) == empty
    assert wire.open(wire.seal(empty, KEY), KEY) == empty
    assert list(empty.segments()) == [((), None)]


def test_segments_split_records_at_tags():
    message = sample(records=3)
    segments = list(message.segments())
    assert [(len(recs), tag.tag_id if tag else None) for recs, tag in segments] == [
        (1, "cc-1"),
        (2, "ac-1"),
    ]
    assert segments[1][1].is_group


def test_sealing_twice_uses_a_fresh_nonce():
    message = sample()
    assert wire.seal(message, KEY) != wire.seal(message, KEY)


def test_compression_makes_zero_extents_small():
    extent = Message(
        "vm", "disk", 0, 0, 2**30, (Record(0, bytes(4 * 2**20)),), flags=Flags.INITIAL_REPLICATION
    )
    assert len(wire.seal(extent, KEY)) < 4096


# -- damage is detected ------------------------------------------------------------------------
@SETTINGS
@given(messages(), st.data())
def test_any_flipped_byte_in_a_plain_message_is_detected(message, data):
    encoded = bytearray(wire.encode(message))
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(wire.CorruptMessage):
        wire.decode(bytes(encoded))


@SETTINGS
@given(messages(), st.data())
def test_any_flipped_byte_in_a_sealed_log_is_detected(message, data):
    sealed = bytearray(wire.seal(message, KEY))
    index = data.draw(st.integers(0, len(sealed) - 1))
    sealed[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(wire.CorruptMessage):
        wire.open_sealed(bytes(sealed), KEY)


@SETTINGS
@given(messages(), st.data())
def test_any_missing_byte_is_detected(message, data):
    encoded = wire.encode(message)
    sealed = wire.seal(message, KEY)
    i = data.draw(st.integers(0, len(encoded) - 1))
    j = data.draw(st.integers(0, len(sealed) - 1))
    with pytest.raises(wire.CorruptMessage):
        wire.decode(encoded[:i] + encoded[i + 1 :])
    with pytest.raises(wire.CorruptMessage):
        wire.open_sealed(sealed[:j] + sealed[j + 1 :], KEY)


@SETTINGS
@given(messages(), st.data())
def test_any_truncation_is_detected(message, data):
    encoded = wire.encode(message)
    sealed = wire.seal(message, KEY)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(wire.Truncated):
        wire.decode(encoded[:cut])
    cut = data.draw(st.integers(0, len(sealed) - 1))
    with pytest.raises(wire.Truncated):
        wire.open_sealed(sealed[:cut], KEY)


@SETTINGS
@given(messages())
def test_a_wrong_key_is_detected(message):
    with pytest.raises(wire.AuthenticationFailed, match="wrong vault key"):
        wire.open_sealed(wire.seal(message, KEY), OTHER_KEY)


@SETTINGS
@given(messages(), ids, st.integers(0, 2**64 - 1))
def test_a_log_relabelled_as_another_disk_or_range_fails_authentication(message, disk, seq):
    """An attacker (or a bug) rewrites the clear identity and every length consistently: the
    GCM tag, which covers the identity as associated data, refuses it."""
    sealed = wire.seal(message, KEY)
    identity, aad_end = wire._sealed_identity(memoryview(sealed))
    for forged in (
        wire.Identity(identity.vm_id, disk, seq, seq, identity.flags),
        wire.Identity(disk, identity.disk_id, identity.first_sequence, identity.last_sequence),
    ):
        if forged == identity:
            continue
        rest = sealed[aad_end:]
        prefix_len = len(wire._envelope_prefix(forged, 0))
        relabelled = wire._envelope_prefix(forged, prefix_len + len(rest)) + rest
        with pytest.raises(wire.AuthenticationFailed):
            wire.open_sealed(relabelled, KEY)


def test_swapped_envelopes_between_two_disks_fail_authentication():
    a = sample()
    b = Message(
        "vm-win-app-01",
        "disk-2",
        10,
        19,
        a.disk_size,
        a.records,
        a.tags,
        captured_at=a.captured_at,
    )
    sealed_a, sealed_b = wire.seal(a, KEY), wire.seal(b, KEY)
    _, end_a = wire._sealed_identity(memoryview(sealed_a))
    _, end_b = wire._sealed_identity(memoryview(sealed_b))
    # Same lengths (disk-1 vs disk-2), so the splice is consistent apart from the identity.
    swapped = sealed_b[:end_b] + sealed_a[end_a:]
    with pytest.raises(wire.AuthenticationFailed):
        wire.open_sealed(swapped, KEY)


# -- each failure has its own error, and says what is wrong -------------------------------------
def test_bad_magic():
    with pytest.raises(wire.BadMagic, match="not a message"):
        wire.decode(b"GIF89a" + bytes(40))
    with pytest.raises(wire.BadMagic, match="not a sealed log"):
        wire.open_sealed(b"DRLS"[:3] + b"X" + bytes(60), KEY)


def test_unsupported_version():
    encoded = bytearray(wire.encode(sample()))
    struct.pack_into("<H", encoded, 4, 1)
    with pytest.raises(wire.UnsupportedVersion, match="version 1"):
        wire.decode(bytes(encoded))
    sealed = bytearray(wire.seal(sample(), KEY))
    struct.pack_into("<H", sealed, 4, 9)
    with pytest.raises(wire.UnsupportedVersion, match="version 9"):
        wire.open_sealed(bytes(sealed), KEY)


def test_record_checksum_names_the_record():
    encoded = bytearray(wire.encode(sample()))
    encoded[-10] ^= 0x01  # inside the last record's data
    with pytest.raises(wire.ChecksumMismatch, match=r"record 1 \(offset 4096\)") as info:
        wire.decode(bytes(encoded))
    assert info.value.part.startswith("record 1")


def test_header_checksum():
    encoded = bytearray(wire.encode(sample()))
    encoded[wire.PRELUDE_SIZE + 2] ^= 0x40  # first_sequence
    with pytest.raises(wire.ChecksumMismatch, match="header"):
        wire.decode(bytes(encoded))


def test_trailer_checksum():
    encoded = bytearray(wire.encode(sample()))
    encoded[-1] ^= 0xFF
    with pytest.raises(wire.ChecksumMismatch, match="trailer"):
        wire.decode(bytes(encoded))


def test_truncated_and_trailing_data_say_how_many_bytes():
    encoded = wire.encode(sample())
    with pytest.raises(wire.Truncated, match="3 byte"):
        wire.decode(encoded[:-3])
    with pytest.raises(wire.TrailingData, match="2 unexpected byte"):
        wire.decode(encoded + b"\0\0")
    with pytest.raises(wire.Truncated):
        wire.decode(b"")


def test_a_malformed_but_checksummed_message_is_refused():
    """A sender bug, not damage: CRCs hold but a record is misaligned."""
    good = wire.encode(Message("vm", "d", 1, 1, 2**20, (Record(512, bytes(512)),)))
    bad = bytearray(good)
    header_len = struct.unpack_from("<I", bad, 8)[0]
    rec = wire.PRELUDE_SIZE + header_len + 4
    struct.pack_into("<Q", bad, rec, 513)
    crc = zlib.crc32(bytes(bad[rec + 16 : rec + 16 + 512]), zlib.crc32(bytes(bad[rec : rec + 12])))
    struct.pack_into("<I", bad, rec + 12, crc)
    with pytest.raises(wire.Malformed, match="not 512-byte aligned"):
        wire.decode(bytes(bad))


def test_decompression_bomb_is_refused_before_allocating():
    big = Message("vm", "d", 0, 0, 2**30, (Record(0, bytes(2**20)),))
    with pytest.raises(wire.DecompressionFailed, match="at most 4096"):
        wire.open_sealed(wire.seal(big, KEY), KEY, max_message_bytes=4096)


# -- local misuse is refused before anything is written -----------------------------------------
@pytest.mark.parametrize(
    "message, words",
    [
        (Message("vm", "d", 1, 1, 2**20, (Record(100, bytes(512)),)), "aligned"),
        (Message("vm", "d", 1, 1, 2**20, (Record(0, bytes(100)),)), "aligned"),
        (Message("vm", "d", 1, 1, 2**20, (Record(2**20, bytes(512)),)), "beyond the disk"),
        (Message("vm", "d", 5, 4, 2**20), "after last_sequence"),
        (Message("", "d", 1, 1, 2**20), "vm_id"),
        (Message("vm", "d" * 300, 1, 1, 2**20), "disk_id"),
        (Message("vm", "d", 1, 1, 1000), "disk_size"),
        (Message("vm", "d", 1, 1, 2**20, flags=Flags.RESYNC | Flags.INITIAL_REPLICATION), "both"),
        (Message("vm", "d", 1, 1, 2**20, flags=0x80), "unknown flag"),
        (
            Message("vm", "d", 1, 1, 2**20, tags=(Tag(1, TagKind.CRASH_CONSISTENT, "t", 0),)),
            "outside",
        ),
        (Message("vm", "d", 1, 1, 2**20, tags=(Tag(0, 7, "t", 0),)), "TagKind"),
        (Message("vm", "d", 1, 1, 2**20, tags=(Tag(0, 1, "t", float("nan")),)), "finite"),
    ],
)
def test_invalid_messages_are_refused_on_encode(message, words):
    with pytest.raises(wire.InvalidMessage, match=words):
        wire.encode(message)


def test_tags_out_of_order_are_refused():
    recs = (Record(0, bytes(512)), Record(512, bytes(512)))
    tags = (Tag(2, 1, "b", 0.0), Tag(1, 1, "a", 0.0))
    with pytest.raises(wire.InvalidMessage, match="out of order"):
        wire.encode(Message("vm", "d", 1, 2, 2**20, recs, tags))


def test_key_must_be_256_bits():
    with pytest.raises(wire.InvalidKey, match="32 bytes"):
        wire.seal(sample(), b"short")
    with pytest.raises(wire.InvalidKey):
        wire.open_sealed(wire.seal(sample(), KEY), "not bytes")


def test_decoded_records_are_views_not_copies():
    encoded = wire.encode(sample())
    record = wire.decode(encoded).records[0]
    assert isinstance(record.data, memoryview)
    assert bytes(record.data) == bytes([1]) * 1024


def test_random_keys_and_big_messages_round_trip():
    key = os.urandom(32)
    data = random.Random(1).randbytes(2**20)
    message = Message("vm", "d", 1, 1, 2**30, (Record(0, data), Record(2**21, data)))
    assert wire.open_sealed(wire.seal(message, key), key) == message
