"""The replication wire format: differentials and initial-replication extents, plain and sealed.

One module, shared by the mobility agent (it encodes), the process server (it decodes what the
agent sent, then seals it for the cache storage account) and the Site Recovery worker (it opens
sealed logs and applies them to seed disks). It is a protocol core: no I/O, no sockets, no
clocks; every function takes bytes and returns bytes or a `Message`.

A message is a header plus ordered records. Tags (bookmarks) sit at positions in the record
stream: a tag at position p is reached after applying records[0:p]; a recovery point is made
there. Sequence numbers are the disk's change-journal sequence numbers, monotonic per disk; the
header carries the first and last the message covers, the disk's size when it was written
(a resize shows), the VM and disk ids and flags (initial replication extent, resync block, end
of a pass).

Plain layout (little-endian), what the agent sends to its process server over TLS:

    prelude   magic "DRLW" | version u16 | flags u16 | header_len u32 | total_len u64
    header    first_seq u64 | last_seq u64 | disk_size u64 | captured_at f64
              | record_count u32 | tag_count u16
              | vm_len u8 | disk_len u8 | vm_id | disk_id
              | tags: (position u32 | lab_time f64 | kind u8 | id_len u8 | group_len u8
                       | id | group_id) * tag_count
    hdr_crc   u32 CRC32 of prelude + header
    records   (offset u64 | length u32 | crc u32 | data[length]) * record_count
              crc = CRC32 of offset, length and data
    trailer   u32 CRC32 of hdr_crc and every record crc, in order

Every byte is covered by exactly one CRC and every CRC by the trailer, so the whole message is
checked in one pass over the data. CRC32 (zlib's, in the standard library) detects every burst
error of up to 32 bits, hence every flipped byte, always; it runs at several GiB/s here, so no
extra dependency is worth it. `total_len` makes any missing or extra byte a length mismatch.
CRCs guard against accidents only; tampering is what the sealed form's AES-GCM tag is for.

Sealed layout, what the process server uploads to the cache storage account:

    prelude   magic "DRLS" | version u16 | flags u16 | total_len u64 | identity_len u32
    identity  first_seq u64 | last_seq u64 | vm_len u8 | disk_len u8 | vm_id | disk_id
    nonce     12 random bytes
    sealed    AES-256-GCM(key=vault key, nonce, zstd(plain message), aad=prelude + identity)

The identity travels in the clear (so logs can be named and ordered without the key) and is
authenticated as associated data: a log relabelled as another disk's, or another range, fails
to open. After decryption the inner header must match it too.

Not here: the vault key's provenance (`lab.kit.vaultkeys`), blob naming, acknowledgement and
retry (the components' business), and a byte-at-a-time incremental decoder: messages are at
most a few MiB, so a stream reader takes `message_length(prelude)` bytes and decodes them in
one call.
"""

from __future__ import annotations

import enum
import math
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = 2  # 2: the header carries captured_at
MAGIC = b"DRLW"
SEALED_MAGIC = b"DRLS"
SECTOR = 512
KEY_SIZE = 32  # AES-256
NONCE_SIZE = 12  # 96-bit GCM nonce
GCM_TAG_SIZE = 16
MAX_ID_BYTES = 255
MAX_TAGS = 0xFFFF
MAX_RECORD_BYTES = 0xFFFFFE00  # largest 512-aligned u32
# What a sealed log may decompress to: far above the few MiB the data path sends, low enough
# that a corrupt or hostile frame header cannot make the worker allocate without bound.
MAX_MESSAGE_BYTES = 256 * 2**20
DEFAULT_ZSTD_LEVEL = 3

_PRELUDE = struct.Struct("<4sHHIQ")
_HEADER = struct.Struct("<QQQdIHBB")
_TAG = struct.Struct("<IdBBB")
_RECORD = struct.Struct("<QII")
_RECORD_PLACE = struct.Struct("<QI")  # the part of a record header its CRC starts from
_CRC = struct.Struct("<I")
_SEALED_PRELUDE = struct.Struct("<4sHHQI")
_IDENTITY = struct.Struct("<QQBB")
_U64 = 2**64 - 1

PRELUDE_SIZE = _PRELUDE.size  # enough bytes for `message_length`, plain or sealed
assert _SEALED_PRELUDE.size == PRELUDE_SIZE


# -- errors -----------------------------------------------------------------------------------
class WireError(Exception):
    """Base of every wire-format error."""


class InvalidMessage(WireError, ValueError):
    """Local misuse: the message or arguments given to encode/seal break the format's rules."""


class InvalidKey(WireError, ValueError):
    """Local misuse: the key is not a 256-bit AES key."""


class CorruptMessage(WireError):
    """The bytes received are not a valid message: the sender's or the channel's fault."""


class Truncated(CorruptMessage):
    """Fewer bytes than the message's own header says it has."""


class TrailingData(CorruptMessage):
    """More bytes than the message's own header says it has."""


class BadMagic(CorruptMessage):
    """Not a drlab replication message at all."""


class UnsupportedVersion(CorruptMessage):
    """A format version this code does not read."""


class ChecksumMismatch(CorruptMessage):
    """A CRC does not match: the bytes were altered in transit or at rest."""

    def __init__(self, part: str, expected: int, actual: int):
        self.part = part
        super().__init__(
            f"checksum mismatch in {part}: stored {expected:#010x}, computed {actual:#010x}"
        )


class Malformed(CorruptMessage):
    """Checksums hold but a field breaks the format's rules (a sender bug)."""


class AuthenticationFailed(CorruptMessage):
    """AES-GCM refused the sealed log: wrong key, altered bytes or a relabelled identity."""


class DecompressionFailed(CorruptMessage):
    """The authenticated payload is not a valid zstd frame (or decompresses too large)."""


class IdentityMismatch(CorruptMessage):
    """The sealed envelope's identity differs from the header inside it."""


# -- the message --------------------------------------------------------------------------------
class Flags(enum.IntFlag):
    NONE = 0
    INITIAL_REPLICATION = 0x1  # an extent of the initial copy, not change-journal data
    RESYNC = 0x2  # blocks found different by a resynchronisation pass
    END_OF_PASS = 0x4  # the last message of an initial-replication or resync pass


_KNOWN_FLAGS = Flags.INITIAL_REPLICATION | Flags.RESYNC | Flags.END_OF_PASS


class TagKind(enum.IntEnum):
    CRASH_CONSISTENT = 1
    APP_CONSISTENT = 2


_TAG_KINDS = frozenset(k.value for k in TagKind)


@dataclass(frozen=True)
class Tag:
    """A bookmark in the record stream; with a `group_id` it is a multi-VM group tag."""

    position: int  # records before it: the recovery point is after records[0:position]
    kind: TagKind
    tag_id: str
    lab_time: float  # lab epoch seconds when the tag was taken
    group_id: str | None = None

    @property
    def is_group(self) -> bool:
        return self.group_id is not None


@dataclass(frozen=True)
class Record:
    """Bytes written at a disk offset. `data` is a memoryview into the decoded buffer after
    `decode` (no copy); compare it with bytes freely, or call bytes() to keep it."""

    offset: int
    data: bytes | bytearray | memoryview

    @property
    def length(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Identity:
    """What names a log: which disk of which VM, which sequence range, what kind."""

    vm_id: str
    disk_id: str
    first_sequence: int
    last_sequence: int
    flags: Flags = Flags.NONE


@dataclass(frozen=True)
class Message:
    vm_id: str
    disk_id: str
    first_sequence: int
    last_sequence: int
    disk_size: int  # bytes, at the time the message was written
    records: tuple[Record, ...] = ()
    tags: tuple[Tag, ...] = ()
    flags: Flags = Flags.NONE
    # Lab time when the data left the change journal: how fresh the replica is once this is
    # applied (the RPO). A message with no records is a marker that only says that.
    captured_at: float = 0.0

    @property
    def identity(self) -> Identity:
        return Identity(
            self.vm_id, self.disk_id, self.first_sequence, self.last_sequence, Flags(self.flags)
        )

    @property
    def payload_bytes(self) -> int:
        return sum(len(r.data) for r in self.records)

    def segments(self) -> Iterator[tuple[tuple[Record, ...], Tag | None]]:
        """(records to apply, then the tag reached) pairs in stream order; the last pair's tag
        is None when records follow the last tag."""
        start = 0
        for tag in self.tags:
            yield self.records[start : tag.position], tag
            start = tag.position
        if start < len(self.records) or not self.tags:
            yield self.records[start:], None


# -- plain encoding -----------------------------------------------------------------------------
def _text(value: str, what: str, *, error=InvalidMessage) -> bytes:
    if not isinstance(value, str):
        raise error(f"{what} must be a string, not {type(value).__name__}")
    raw = value.encode("utf-8")
    if not 1 <= len(raw) <= MAX_ID_BYTES:
        raise error(f"{what} must be 1 to {MAX_ID_BYTES} bytes of UTF-8 (got {len(raw)})")
    return raw


def _check_common(flags: int, first: int, last: int, *, error) -> None:
    if flags & ~int(_KNOWN_FLAGS):
        raise error(f"unknown flag bits {flags & ~int(_KNOWN_FLAGS):#06x}")
    if flags & Flags.INITIAL_REPLICATION and flags & Flags.RESYNC:
        raise error("a message is initial replication or resync, not both")
    for name, value in (("first_sequence", first), ("last_sequence", last)):
        if not isinstance(value, int) or not 0 <= value <= _U64:
            raise error(f"{name} must be an integer from 0 to 2**64-1 (got {value!r})")
    if first > last:
        raise error(f"first_sequence {first} is after last_sequence {last}")


def _validate(message: Message) -> None:
    flags, first, last = int(message.flags), message.first_sequence, message.last_sequence
    _check_common(flags, first, last, error=InvalidMessage)
    size = message.disk_size
    if not isinstance(size, int) or size <= 0 or size % SECTOR or size > _U64:
        raise InvalidMessage(f"disk_size must be a positive multiple of {SECTOR} (got {size!r})")
    captured = message.captured_at
    if not isinstance(captured, (int, float)) or not math.isfinite(captured):
        raise InvalidMessage(f"captured_at must be a finite number (got {captured!r})")
    if len(message.tags) > MAX_TAGS:
        raise InvalidMessage(f"at most {MAX_TAGS} tags per message (got {len(message.tags)})")
    if len(message.records) > 0xFFFFFFFF:
        raise InvalidMessage("too many records for one message")
    previous = 0
    for i, tag in enumerate(message.tags):
        if not isinstance(tag.position, int) or not 0 <= tag.position <= len(message.records):
            raise InvalidMessage(
                f"tag {i} position {tag.position!r} is outside 0..{len(message.records)}"
            )
        if tag.position < previous:
            raise InvalidMessage(f"tag {i} is out of order (position {tag.position} < {previous})")
        previous = tag.position
        if tag.kind not in _TAG_KINDS:
            raise InvalidMessage(f"tag {i} kind {tag.kind!r} is not a TagKind")
        if not isinstance(tag.lab_time, (int, float)) or not math.isfinite(tag.lab_time):
            raise InvalidMessage(f"tag {i} lab_time must be a finite number")


def _check_record(i: int, offset: int, length: int, disk_size: int, *, error) -> None:
    if offset % SECTOR or length % SECTOR or length == 0:
        raise error(
            f"record {i} at offset {offset} length {length} is not {SECTOR}-byte aligned "
            "(or is empty)"
        )
    if length > MAX_RECORD_BYTES:
        raise error(f"record {i} is {length} bytes; at most {MAX_RECORD_BYTES}")
    if offset + length > disk_size:
        raise error(f"record {i} ends at {offset + length}, beyond the disk's size {disk_size}")


def _header_bytes(message: Message) -> bytes:
    vm = _text(message.vm_id, "vm_id")
    disk = _text(message.disk_id, "disk_id")
    parts = [
        _HEADER.pack(
            message.first_sequence,
            message.last_sequence,
            message.disk_size,
            float(message.captured_at),
            len(message.records),
            len(message.tags),
            len(vm),
            len(disk),
        ),
        vm,
        disk,
    ]
    for i, tag in enumerate(message.tags):
        tag_id = _text(tag.tag_id, f"tag {i} id")
        group = b"" if tag.group_id is None else _text(tag.group_id, f"tag {i} group_id")
        parts += [
            _TAG.pack(tag.position, float(tag.lab_time), int(tag.kind), len(tag_id), len(group)),
            tag_id,
            group,
        ]
    return b"".join(parts)


def encode(message: Message) -> bytes:
    """The plain bytes of a message; raises InvalidMessage if it breaks the format's rules."""
    return b"".join(encode_parts(message))


def encode_parts(message: Message) -> list:
    """The plain message as a list of bytes-like parts, record data not copied: for a writer
    that sends them in turn (`socket.sendmsg`, `writelines`) instead of joining a big extent
    into one buffer. `b"".join(encode_parts(m)) == encode(m)`."""
    _validate(message)
    header = _header_bytes(message)
    record_bytes = 0
    parts: list = [b"", header, b""]
    crcs = bytearray()
    for i, record in enumerate(message.records):
        data = record.data
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidMessage(f"record {i} data must be bytes-like")
        length = len(data) if not isinstance(data, memoryview) else data.nbytes
        if not isinstance(record.offset, int) or record.offset < 0:
            raise InvalidMessage(f"record {i} offset must be a non-negative integer")
        _check_record(i, record.offset, length, message.disk_size, error=InvalidMessage)
        place = _RECORD_PLACE.pack(record.offset, length)
        crc = zlib.crc32(data, zlib.crc32(place))
        parts.append(place + _CRC.pack(crc))
        parts.append(data)
        crcs += _CRC.pack(crc)
        record_bytes += _RECORD.size + length
    total = PRELUDE_SIZE + len(header) + _CRC.size + record_bytes + _CRC.size
    prelude = _PRELUDE.pack(MAGIC, VERSION, int(message.flags), len(header), total)
    header_crc = _CRC.pack(zlib.crc32(header, zlib.crc32(prelude)))
    parts[0], parts[2] = prelude, header_crc
    parts.append(_CRC.pack(zlib.crc32(crcs, zlib.crc32(header_crc))))
    return parts


# -- plain decoding -----------------------------------------------------------------------------
def _check_length(kind: str, declared: int, actual: int) -> None:
    if actual < declared:
        raise Truncated(
            f"{kind} is {actual} bytes but its header says {declared}: "
            f"{declared - actual} byte(s) missing (truncated, or a corrupt length)"
        )
    if actual > declared:
        raise TrailingData(
            f"{kind} is {actual} bytes but its header says {declared}: "
            f"{actual - declared} unexpected byte(s) after it"
        )


def _prelude(view: memoryview, magic: bytes, layout: struct.Struct, kind: str) -> tuple:
    if len(view) < layout.size:
        if bytes(view[: len(magic)]) not in (magic[: len(view)], magic):
            raise BadMagic(f"not a {kind}: it does not start with {magic!r}")
        raise Truncated(f"{kind} is {len(view)} bytes; even its prelude is {layout.size}")
    fields = layout.unpack_from(view)
    if fields[0] != magic:
        raise BadMagic(f"not a {kind}: it starts with {bytes(fields[0])!r}, not {magic!r}")
    if fields[1] != VERSION:
        raise UnsupportedVersion(
            f"{kind} format version {fields[1]}; this code reads version {VERSION}"
        )
    return fields


def _read_text(view: memoryview, pos: int, n: int, what: str) -> str:
    try:
        return str(view[pos : pos + n], "utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed(f"{what} is not valid UTF-8") from exc


def _decode_header(view: memoryview):
    """Prelude and header, checked; returns (fields, tags, position after hdr_crc)."""
    _magic, _version, flags, header_len, total = _prelude(view, MAGIC, _PRELUDE, "message")
    _check_length("message", total, len(view))
    header_end = PRELUDE_SIZE + header_len
    if header_len < _HEADER.size or header_end + 2 * _CRC.size > len(view):
        raise Malformed(f"header length {header_len} does not fit a message of {len(view)} bytes")
    (stored,) = _CRC.unpack_from(view, header_end)
    actual = zlib.crc32(view[:header_end])
    if stored != actual:
        raise ChecksumMismatch("header", stored, actual)
    first, last, disk_size, captured_at, n_records, n_tags, vm_len, disk_len = _HEADER.unpack_from(
        view, PRELUDE_SIZE
    )
    _check_common(flags, first, last, error=Malformed)
    if not math.isfinite(captured_at):
        raise Malformed("captured_at is not a finite number")
    if disk_size == 0 or disk_size % SECTOR:
        raise Malformed(f"disk size {disk_size} is not a positive multiple of {SECTOR}")
    pos = PRELUDE_SIZE + _HEADER.size
    if pos + vm_len + disk_len > header_end or not vm_len or not disk_len:
        raise Malformed("the VM or disk id does not fit the header (or is empty)")
    vm_id = _read_text(view, pos, vm_len, "vm_id")
    disk_id = _read_text(view, pos + vm_len, disk_len, "disk_id")
    pos += vm_len + disk_len
    tags = []
    previous = 0
    for i in range(n_tags):
        if pos + _TAG.size > header_end:
            raise Malformed(f"tag {i} of {n_tags} does not fit the header")
        position, lab_time, kind, id_len, group_len = _TAG.unpack_from(view, pos)
        pos += _TAG.size
        if pos + id_len + group_len > header_end or not id_len:
            raise Malformed(f"tag {i}'s id does not fit the header (or is empty)")
        if kind not in _TAG_KINDS:
            raise Malformed(f"tag {i} has unknown kind {kind}")
        if not position >= previous or position > n_records:
            raise Malformed(f"tag {i} position {position} is out of order or past the records")
        if not math.isfinite(lab_time):
            raise Malformed(f"tag {i} lab time is not a finite number")
        previous = position
        tag_id = _read_text(view, pos, id_len, f"tag {i} id")
        group = (
            _read_text(view, pos + id_len, group_len, f"tag {i} group id") if group_len else None
        )
        pos += id_len + group_len
        tags.append(Tag(position, TagKind(kind), tag_id, lab_time, group))
    if pos != header_end:
        raise Malformed(f"{header_end - pos} unexplained byte(s) at the end of the header")
    fields = (Flags(flags), vm_id, disk_id, first, last, disk_size, n_records, captured_at)
    return fields, tuple(tags), header_end + _CRC.size


def decode(data: bytes | bytearray | memoryview) -> Message:
    """A message from its plain bytes, every checksum verified; raises a CorruptMessage
    subclass that says what is wrong. Record data are views into `data` (no copy)."""
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    (flags, vm_id, disk_id, first, last, disk_size, n_records, captured_at), tags, pos = (
        _decode_header(view)
    )
    header_crc = view[pos - _CRC.size : pos]
    end = len(view) - _CRC.size
    crcs = bytearray()
    records = []
    unpack = _RECORD.unpack_from
    for i in range(n_records):
        if pos + _RECORD.size > end:
            raise Malformed(f"record {i} of {n_records} starts past the end of the records")
        offset, length, stored = unpack(view, pos)
        data_start = pos + _RECORD.size
        data_end = data_start + length
        if data_end > end:
            raise Malformed(f"record {i} ({length} bytes) runs past the end of the records")
        payload = view[data_start:data_end]
        actual = zlib.crc32(payload, zlib.crc32(view[pos : pos + _RECORD_PLACE.size]))
        if actual != stored:
            raise ChecksumMismatch(f"record {i} (offset {offset})", stored, actual)
        _check_record(i, offset, length, disk_size, error=Malformed)
        crcs += view[pos + _RECORD_PLACE.size : data_start]
        records.append(Record(offset, payload))
        pos = data_end
    if pos != end:
        raise Malformed(f"{end - pos} byte(s) between the last record and the trailer")
    (stored,) = _CRC.unpack_from(view, end)
    actual = zlib.crc32(crcs, zlib.crc32(header_crc))
    if stored != actual:
        raise ChecksumMismatch("message trailer", stored, actual)
    return Message(vm_id, disk_id, first, last, disk_size, tuple(records), tags, flags, captured_at)


# -- framing helpers ----------------------------------------------------------------------------
def message_length(prelude: bytes | bytearray | memoryview) -> int:
    """Total length of a plain or sealed message from its first PRELUDE_SIZE bytes: a stream
    reader reads that many, then decodes or opens them."""
    view = memoryview(prelude)
    if bytes(view[:4]) == SEALED_MAGIC:
        return _prelude(view, SEALED_MAGIC, _SEALED_PRELUDE, "sealed log")[3]
    return _prelude(view, MAGIC, _PRELUDE, "message")[4]


def peek_identity(data: bytes | bytearray | memoryview) -> Identity:
    """The identity of a plain message (header checksum verified) or of a sealed log (NOT
    authenticated until `open_sealed` succeeds: use it to name and order, never to trust)."""
    view = memoryview(data)
    if bytes(view[:4]) == SEALED_MAGIC:
        identity, _ = _sealed_identity(view)
        return identity
    (flags, vm_id, disk_id, first, last, _size, _n, _captured), _tags, _pos = _decode_header(view)
    return Identity(vm_id, disk_id, first, last, flags)


# -- sealing ------------------------------------------------------------------------------------
_local = threading.local()  # zstd contexts are not thread-safe; one per thread, reused


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache = _local.__dict__.setdefault("compressors", {})
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return cache[level]


def _decompressor() -> zstandard.ZstdDecompressor:
    if not hasattr(_local, "decompressor"):
        _local.decompressor = zstandard.ZstdDecompressor()
    return _local.decompressor


def _aead(key: bytes) -> AESGCM:
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_SIZE:
        size = len(key) if isinstance(key, (bytes, bytearray)) else type(key).__name__
        raise InvalidKey(f"the vault key must be {KEY_SIZE} bytes (AES-256), not {size}")
    return AESGCM(bytes(key))


def _envelope_prefix(identity: Identity, total_len: int) -> bytes:
    vm = _text(identity.vm_id, "vm_id")
    disk = _text(identity.disk_id, "disk_id")
    body = _IDENTITY.pack(identity.first_sequence, identity.last_sequence, len(vm), len(disk))
    body += vm + disk
    prelude = _SEALED_PRELUDE.pack(SEALED_MAGIC, VERSION, int(identity.flags), total_len, len(body))
    return prelude + body


def _sealed_identity(view: memoryview) -> tuple[Identity, int]:
    """(identity, end of the associated data) from a sealed log's clear part, lengths checked."""
    _magic, _version, flags, total, ident_len = _prelude(
        view, SEALED_MAGIC, _SEALED_PRELUDE, "sealed log"
    )
    _check_length("sealed log", total, len(view))
    aad_end = PRELUDE_SIZE + ident_len
    if ident_len < _IDENTITY.size or aad_end + NONCE_SIZE + GCM_TAG_SIZE > len(view):
        raise Malformed(f"identity length {ident_len} does not fit a log of {len(view)} bytes")
    first, last, vm_len, disk_len = _IDENTITY.unpack_from(view, PRELUDE_SIZE)
    pos = PRELUDE_SIZE + _IDENTITY.size
    if pos + vm_len + disk_len != aad_end or not vm_len or not disk_len:
        raise Malformed("the sealed identity's ids do not fill it exactly")
    vm_id = _read_text(view, pos, vm_len, "vm_id")
    disk_id = _read_text(view, pos + vm_len, disk_len, "disk_id")
    _check_common(flags, first, last, error=Malformed)
    return Identity(vm_id, disk_id, first, last, Flags(flags)), aad_end


def seal(
    message: Message | bytes | bytearray | memoryview,
    key: bytes,
    *,
    level: int = DEFAULT_ZSTD_LEVEL,
) -> bytes:
    """zstd-compress, then AES-256-GCM-encrypt a message with the vault key.

    Takes a `Message` or its plain bytes as the agent sent them; for bytes only the header is
    checked here (call `decode` first to verify every record, as a process server does before
    it acknowledges).
    """
    aead = _aead(key)
    if isinstance(message, Message):
        plain = encode(message)
        identity = message.identity
    else:
        plain = message
        identity = peek_identity(plain)
    compressed = _compressor(level).compress(plain)
    prefix_len = len(_envelope_prefix(identity, 0))
    aad = _envelope_prefix(identity, prefix_len + NONCE_SIZE + len(compressed) + GCM_TAG_SIZE)
    nonce = os.urandom(NONCE_SIZE)
    return b"".join((aad, nonce, aead.encrypt(nonce, compressed, aad)))


def open_sealed(
    sealed: bytes | bytearray | memoryview,
    key: bytes,
    *,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> Message:
    """The message inside a sealed log: authenticated, decompressed, every checksum verified.

    Raises AuthenticationFailed for a wrong key, altered bytes or a relabelled identity, and
    the other CorruptMessage subclasses for what they name.
    """
    aead = _aead(key)
    view = memoryview(sealed)
    identity, aad_end = _sealed_identity(view)
    nonce = view[aad_end : aad_end + NONCE_SIZE]
    try:
        compressed = aead.decrypt(bytes(nonce), view[aad_end + NONCE_SIZE :], view[:aad_end])
    except InvalidTag:
        raise AuthenticationFailed(
            f"sealed log for {identity.vm_id}/{identity.disk_id} "
            f"[{identity.first_sequence}..{identity.last_sequence}] failed authentication: "
            "wrong vault key, altered bytes, or an identity that is not its own"
        ) from None
    try:
        size = zstandard.frame_content_size(compressed)
    except zstandard.ZstdError as exc:
        raise DecompressionFailed(f"the sealed payload is not a zstd frame: {exc}") from exc
    if size < 0 or size > max_message_bytes:
        raise DecompressionFailed(
            f"the sealed payload declares {size} bytes; at most {max_message_bytes} are accepted"
        )
    try:
        plain = _decompressor().decompress(compressed, max_output_size=max_message_bytes)
    except zstandard.ZstdError as exc:
        raise DecompressionFailed(f"the sealed payload does not decompress: {exc}") from exc
    message = decode(plain)
    if message.identity != identity:
        raise IdentityMismatch(
            f"the envelope says {identity}, the message inside says {message.identity}"
        )
    return message


# `wire.open(...)` reads as the seal/open pair it is; import `open_sealed` by name instead of
# `open`, which would shadow the builtin in the importing module.
open = open_sealed  # noqa: A001
