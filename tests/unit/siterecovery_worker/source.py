"""A synthetic protected VM for the worker's tests: in-memory source disks, what the mobility
filter journals and what a process server would upload (IR plan, sealed logs, manifests).

Writes land on the source disks and, once tracking has started, in each disk's change journal
with a sequence number each; a tag takes a sequence number on every disk at the same instant;
`flush()` cuts the journals into messages. `initial_replication()` reads the disks' non-zero
64 KiB blocks as extents (the last message END_OF_PASS). `manifest(tag)` digests the disks as
they are at the moment the tag is taken. `device(i)` is a guest block device over disk i, so
`fakes.guest` can install its OS and run its application on these disks.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from lab.kit import wire

BLOCK = 65536


def digests(disk: bytes | bytearray, block: int = BLOCK) -> dict[str, str]:
    out = {}
    view = memoryview(disk)
    for i in range(0, len(view), block):
        piece = bytes(view[i : i + block])
        if piece.count(0) != len(piece):
            out[str(i // block)] = hashlib.blake2b(piece, digest_size=16).hexdigest()
    return out


@dataclass
class _Entry:
    seq: int
    record: wire.Record | None = None
    tag: wire.Tag | None = None


@dataclass
class SourceVm:
    vm_id: str
    epoch: str
    protected_item: str
    disk_sizes: list[int]
    disk_ids: list[str] = field(default_factory=list)
    clock: object = time.time  # lab time source

    def __post_init__(self):
        self.disks = [bytearray(size) for size in self.disk_sizes]
        if not self.disk_ids:
            self.disk_ids = [f"{self.vm_id}:disk-{i}" for i in range(len(self.disks))]
        self.tracking = False
        self.seq = [0] * len(self.disks)
        self.pending: list[list[_Entry]] = [[] for _ in self.disks]
        self.manifests: dict[str, dict] = {}
        self.ir_sizes: list[int] = [0] * len(self.disks)
        self.tag_count = 0

    # -- the guest side ---------------------------------------------------------------------
    def write(self, index: int, offset: int, data: bytes) -> None:
        self.disks[index][offset : offset + len(data)] = data
        if self.tracking:
            self.seq[index] += 1
            self.pending[index].append(
                _Entry(self.seq[index], record=wire.Record(offset, bytes(data)))
            )

    def device(self, index: int) -> SourceDevice:
        return SourceDevice(self, index)

    def start_tracking(self) -> None:
        self.tracking = True

    def tag(
        self,
        tag_id: str | None = None,
        kind: wire.TagKind = wire.TagKind.CRASH_CONSISTENT,
        group_id: str | None = None,
        lab_time: float | None = None,
        manifest: bool = True,
    ) -> str:
        self.tag_count += 1
        tag_id = tag_id or f"cc-{int(self.clock())}-{self.tag_count}"
        at = self.clock() if lab_time is None else lab_time
        for index in range(len(self.disks)):
            self.seq[index] += 1
            self.pending[index].append(
                _Entry(self.seq[index], tag=wire.Tag(0, kind, tag_id, at, group_id))
            )
        if manifest:
            self.manifests[tag_id] = self.manifest(tag_id)
        return tag_id

    def ir_complete(self, **kw) -> str:
        return self.tag(f"ir-complete-{self.epoch}", **kw)

    def manifest(self, tag_id: str) -> dict:
        return {
            "kind": "manifest",
            "vm_id": self.vm_id,
            "epoch": self.epoch,
            "tag_id": tag_id,
            "block_size": BLOCK,
            "disks": {str(i): digests(d) for i, d in enumerate(self.disks)},
        }

    # -- what the process server uploads --------------------------------------------------
    def plan(self, allocated: list[int] | None = None) -> dict:
        allocated = allocated or self.allocated()
        return {
            "kind": "ir-plan",
            "vm_id": self.vm_id,
            "epoch": self.epoch,
            "protected_item": self.protected_item,
            "lab_time": self.clock(),
            "disks": [
                {"index": i, "disk_id": self.disk_ids[i], "size": len(d), "allocated": a}
                for i, (d, a) in enumerate(zip(self.disks, allocated, strict=True))
            ],
        }

    def extents(self, index: int, record: int = 256 * 1024) -> list[tuple[int, bytes]]:
        disk = self.disks[index]
        out = []
        for start in range(0, len(disk), BLOCK):
            piece = bytes(disk[start : start + BLOCK])
            if piece.count(0) == len(piece):
                continue
            if out and out[-1][0] + len(out[-1][1]) == start and len(out[-1][1]) < record:
                out[-1] = (out[-1][0], out[-1][1] + piece)
            else:
                out.append((start, piece))
        return out

    def allocated(self) -> list[int]:
        return [sum(len(d) for _, d in self.extents(i)) for i in range(len(self.disks))]

    def initial_replication(self, index: int, per_message: int = 4) -> list[wire.Message]:
        """The disk's current extents as IR messages (the last one END_OF_PASS)."""
        extents = self.extents(index)
        groups = [extents[i : i + per_message] for i in range(0, len(extents), per_message)]
        groups = groups or [[]]
        out = []
        for n, group in enumerate(groups, start=1):
            flags = wire.Flags.INITIAL_REPLICATION
            if n == len(groups):
                flags |= wire.Flags.END_OF_PASS
            out.append(
                wire.Message(
                    self.vm_id,
                    f"{self.epoch}-{index}-ir",
                    n,
                    n,
                    len(self.disks[index]),
                    tuple(wire.Record(o, d) for o, d in group),
                    (),
                    flags,
                    self.clock(),
                )
            )
            self.ir_sizes[index] += sum(len(d) for _, d in group)
        return out

    def flush(self, index: int, per_message: int = 8) -> list[wire.Message]:
        """The disk's pending journal entries as messages of up to `per_message` entries."""
        entries, self.pending[index] = self.pending[index], []
        out = []
        for i in range(0, len(entries), per_message):
            chunk = entries[i : i + per_message]
            records, tags = [], []
            for e in chunk:
                if e.record is not None:
                    records.append(e.record)
                else:
                    t = e.tag
                    tags.append(wire.Tag(len(records), t.kind, t.tag_id, t.lab_time, t.group_id))
            out.append(
                wire.Message(
                    self.vm_id,
                    f"{self.epoch}-{index}",
                    chunk[0].seq,
                    chunk[-1].seq,
                    len(self.disks[index]),
                    tuple(records),
                    tuple(tags),
                    wire.Flags.NONE,
                    self.clock(),
                )
            )
        return out

    def marker(self, index: int, captured_at: float | None = None) -> wire.Message:
        """A message with no records and no tags: it only says how fresh the replica is."""
        self.seq[index] += 1
        return wire.Message(
            self.vm_id,
            f"{self.epoch}-{index}",
            self.seq[index],
            self.seq[index],
            len(self.disks[index]),
            captured_at=self.clock() if captured_at is None else captured_at,
        )


def blob_name(message: wire.Message) -> str:
    return (
        f"{message.vm_id}/{message.disk_id}/"
        f"{message.first_sequence:016d}-{message.last_sequence:016d}.log"
    )


class SourceDevice:
    """A guest block device over one source disk: writes are journaled like the filter's."""

    def __init__(self, vm: SourceVm, index: int):
        self.vm = vm
        self.index = index

    @property
    def size(self) -> int:
        return len(self.vm.disks[self.index])

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.vm.disks[self.index][offset : offset + length])

    def write(self, offset: int, data: bytes) -> None:
        self.vm.write(self.index, offset, bytes(data))

    def flush(self) -> None:
        pass

    def resize(self, new_size: int) -> None:
        raise NotImplementedError("source disks do not grow in these tests")

    def close(self) -> None:
        pass
