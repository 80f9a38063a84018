"""Checksum resync: find the blocks where a replica differs from its source, and only those.

Both sides compute block checksums the same way — the source over its disk's allocated extents
(SEEK_DATA/SEEK_HOLE below the filter), the Azure side over the seed disk's written ranges (its
own record of them, not a storage diff) — and compare them in batches of consecutive blocks,
so neither side holds every checksum of a large disk at once and a batch can be retried on its
own. A block is 64 KiB, as the filter's verify digests; its checksum is BLAKE2b-128, and an
all-zero block has none (a hole is zeros on both sides).

For each batch the source learns which blocks to send (its block differs or the replica lacks
it) and which to clear (the replica has data where the source has a hole). The counters say
what a resync cost: bytes scanned on each side, checksum bytes exchanged, bytes that differed
and bytes sent.

In the lab the Azure side publishes its checksums as blobs in the cache storage account
(`sums_blob`, `index_blob`), which the process server reads for its agents.

Not here: who asks for a resync and when (the vault's jobs and schedule), the transport of the
batches and of the blocks (the agent, the process server, the worker).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

BLOCK = 64 << 10
DIGEST_SIZE = 16
BATCH_BLOCKS = 16384  # 1 GiB of disk per batch: at most 16384 checksums (256 KiB) each way
READ_CHUNK = 8 << 20  # the scan reads this much at a time
_ZERO = bytes(BLOCK)

Read = Callable[[int, int], bytes]
SUMS_PREFIX = "resync"


def sums_prefix(vm_id: str, epoch: str, generation: int) -> str:
    return f"{SUMS_PREFIX}/{vm_id}/{epoch}.{generation}/"


def index_blob(vm_id: str, epoch: str, generation: int) -> str:
    """{"disks": {"<index>": {"size", "batches": [first block, ...]}}}: written last, so its
    presence says every batch blob is there."""
    return f"{sums_prefix(vm_id, epoch, generation)}index.json"


def sums_blob(vm_id: str, epoch: str, generation: int, disk: int, first: int) -> str:
    """One batch of a seed disk's checksums (`encode_batch`), from block `first`."""
    return f"{sums_prefix(vm_id, epoch, generation)}{disk}/{first:012d}.sums"


def block_checksum(data: bytes | memoryview) -> bytes | None:
    """BLAKE2b-128 of one block, or None for an all-zero block."""
    if data == _ZERO[: len(data)]:
        return None
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).digest()


def blocks_of(extents: Iterable[tuple[int, int]], size: int, block: int = BLOCK) -> list[range]:
    """The block index runs that (offset, length) extents touch, merged, in order."""
    runs: list[list[int]] = []
    for offset, length in sorted(extents):
        end = min(offset + length, size)
        if end <= offset:
            continue
        first, last = offset // block, (end - 1) // block
        if runs and first <= runs[-1][1] + 1:
            runs[-1][1] = max(runs[-1][1], last)
        else:
            runs.append([first, last])
    return [range(a, b + 1) for a, b in runs]


@dataclass
class Scan:
    """The checksums of one side, batch by batch, and what reading them cost."""

    read: Read
    runs: list[range]  # block index runs with data (from allocated extents or written ranges)
    size: int
    block: int = BLOCK
    bytes_read: int = 0

    def batch(self, first: int, stop: int) -> dict[int, bytes]:
        """{block: checksum} of the non-zero blocks in [first, stop)."""
        out: dict[int, bytes] = {}
        per_read = max(1, READ_CHUNK // self.block)
        for run in self.runs:
            lo, hi = max(run.start, first), min(run.stop, stop)
            for start in range(lo, hi, per_read):
                end = min(hi, start + per_read)
                offset = start * self.block
                data = memoryview(self.read(offset, min(end * self.block, self.size) - offset))
                self.bytes_read += len(data)
                for i in range(end - start):
                    digest = block_checksum(data[i * self.block : (i + 1) * self.block])
                    if digest is not None:
                        out[start + i] = digest
        return out

    def batches(self, batch_blocks: int = BATCH_BLOCKS) -> Iterator[tuple[int, int]]:
        """[first, stop) block ranges of the batches that hold data on this side."""
        seen = set()
        for run in self.runs:
            for b in range(run.start // batch_blocks, (run.stop - 1) // batch_blocks + 1):
                if b not in seen:
                    seen.add(b)
                    yield b * batch_blocks, (b + 1) * batch_blocks


def encode_batch(checksums: dict[int, bytes]) -> bytes:
    """A batch of checksums as it crosses the wire: (block u32 + digest) sorted by block."""
    return b"".join(b.to_bytes(4, "big") + d for b, d in sorted(checksums.items()))


def decode_batch(data: bytes) -> dict[int, bytes]:
    step = 4 + DIGEST_SIZE
    if len(data) % step:
        raise ValueError(f"a checksum batch is a multiple of {step} bytes, not {len(data)}")
    view = memoryview(data)
    return {
        int.from_bytes(view[i : i + 4], "big"): bytes(view[i + 4 : i + step])
        for i in range(0, len(data), step)
    }


@dataclass
class Difference:
    send: list[int] = field(default_factory=list)  # blocks to send (differ, or missing there)
    clear: list[int] = field(default_factory=list)  # blocks the replica has and the source not


def compare(source: dict[int, bytes], replica: dict[int, bytes]) -> Difference:
    diff = Difference()
    for b, digest in source.items():
        if replica.get(b) != digest:
            diff.send.append(b)
    diff.clear = [b for b in replica if b not in source]
    diff.send.sort()
    diff.clear.sort()
    return diff


@dataclass
class Counters:
    source_scanned: int = 0
    replica_scanned: int = 0
    checksum_bytes: int = 0  # both ways
    differing_bytes: int = 0  # blocks to send or clear, in disk bytes
    sent_bytes: int = 0  # what the transport carried for the blocks (after its encoding)
    blocks_sent: int = 0
    blocks_cleared: int = 0

    def to_json(self) -> dict:
        return dict(vars(self))


def resync_disk(
    source: Scan,
    replica: Scan,
    send: Callable[[list[tuple[int, bytes]], list[int]], int],
    *,
    batch_blocks: int = BATCH_BLOCKS,
    counters: Counters | None = None,
    exchange: Callable[[bytes], bytes] = lambda b: b,
) -> Counters:
    """Bring `replica` to `source`, batch by batch: checksums of both, compared; `send(blocks,
    clears)` gets [(offset, data)] of the differing blocks and the offsets to clear, and
    returns the bytes it carried. `exchange` is how a batch of the replica's checksums travels
    (encoded bytes in, bytes out: a link in the lab)."""
    counters = counters or Counters()
    batches = sorted(set(source.batches(batch_blocks)) | set(replica.batches(batch_blocks)))
    for first, stop in batches:
        theirs_wire = exchange(encode_batch(replica.batch(first, stop)))
        counters.checksum_bytes += len(theirs_wire)
        payload, clears = batch_difference(source, decode_batch(theirs_wire), first, stop, counters)
        if payload or clears:
            counters.sent_bytes += send(payload, clears)
    counters.replica_scanned += replica.bytes_read
    return counters


def batch_difference(
    source: Scan, theirs: dict[int, bytes], first: int, stop: int, counters: Counters
) -> tuple[list[tuple[int, bytes]], list[int]]:
    """One batch of the source against the replica's checksums `theirs`: [(offset, data)] of
    the blocks to send and the offsets to clear; counts the scan and the difference."""
    block = source.block
    before = source.bytes_read
    diff = compare(source.batch(first, stop), theirs)
    counters.source_scanned += source.bytes_read - before
    counters.differing_bytes += (len(diff.send) + len(diff.clear)) * block
    counters.blocks_sent += len(diff.send)
    counters.blocks_cleared += len(diff.clear)
    payload = []
    for b in diff.send:
        offset = b * block
        payload.append((offset, source.read(offset, min(block, source.size - offset))))
    return payload, [b * block for b in diff.clear if b * block < source.size]
