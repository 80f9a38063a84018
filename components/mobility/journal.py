"""The mobility filter's change journal: every guest write, in write order, and the tags.

One journal per VM. Each write gets the next sequence number of its disk; a tag (bookmark)
takes the next sequence number of every disk at once, so "all writes before the tag" means the
same instant on every disk of the VM: that is what makes a recovery point consistent across
disks. The agent drains the journal in order.

Memory is bounded: entries are kept in memory up to `memory_limit` bytes; past that they are
appended to a spill file (in the same order) until the agent catches up. The spill file is
bounded too (`spill_limit`): a journal that outgrows it (the agent could not send for a long
time: a cut link, a full process server) drops everything and stays `overflowed` — the change
stream is broken and replication must resynchronise. The journal is not durable on its own: a
hard power-off loses it, as the real filter's memory is lost, and the agent must notice
(resync). What the agent has taken is its responsibility (its outbox).
"""

from __future__ import annotations

import os
import struct
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TAG_CRASH = "crash-consistent"
TAG_APP = "app-consistent"
TAG_KINDS = (TAG_CRASH, TAG_APP)
# Not a bookmark: a point that says "everything before this has left the journal" when there
# are no writes, so the replica's freshness (RPO) keeps moving on an idle disk.
MARKER = "marker"


@dataclass(frozen=True)
class JournalWrite:
    disk: int
    seq: int  # this disk's sequence number
    offset: int
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data) + 48


@dataclass(frozen=True)
class JournalTag:
    tag_id: str
    kind: str  # TAG_CRASH or TAG_APP
    lab_time: float
    group: str | None  # the multi-VM consistency group, when the tag is shared
    seqs: dict[int, int] = field(default_factory=dict)  # disk -> the tag's sequence number

    @property
    def size(self) -> int:
        return 128 + 16 * len(self.seqs)


Entry = JournalWrite | JournalTag

_WRITE, _TAG = 1, 2
_HEAD = struct.Struct("<BI")  # kind, payload length
_WRITE_HEAD = struct.Struct("<IQQ")  # disk, seq, offset


def _encode(entry: Entry) -> bytes:
    if isinstance(entry, JournalWrite):
        payload = _WRITE_HEAD.pack(entry.disk, entry.seq, entry.offset) + entry.data
        return _HEAD.pack(_WRITE, len(payload)) + payload
    import json

    payload = json.dumps(
        {
            "tag_id": entry.tag_id,
            "kind": entry.kind,
            "lab_time": entry.lab_time,
            "group": entry.group,
            "seqs": {str(k): v for k, v in entry.seqs.items()},
        }
    ).encode()
    return _HEAD.pack(_TAG, len(payload)) + payload


def _decode(kind: int, payload: bytes) -> Entry:
    if kind == _WRITE:
        disk, seq, offset = _WRITE_HEAD.unpack_from(payload)
        return JournalWrite(disk, seq, offset, bytes(payload[_WRITE_HEAD.size :]))
    import json

    d = json.loads(payload)
    return JournalTag(
        d["tag_id"], d["kind"], d["lab_time"], d["group"], {int(k): v for k, v in d["seqs"].items()}
    )


class _SpillFile:
    """A FIFO of entries on disk: appended at the end, read from a cursor."""

    def __init__(self, path: Path):
        self.path = path
        self._f = open(path, "w+b")  # noqa: SIM115 - lives as long as the journal
        self._read_at = 0
        self.entries = 0
        self.bytes = 0

    def append(self, entry: Entry) -> None:
        self._f.seek(0, os.SEEK_END)
        self._f.write(_encode(entry))
        self.entries += 1
        self.bytes += entry.size

    def read(self, max_bytes: int) -> list[Entry]:
        self._f.flush()
        out, taken = [], 0
        while self.entries and taken < max_bytes:
            self._f.seek(self._read_at)
            head = self._f.read(_HEAD.size)
            kind, length = _HEAD.unpack(head)
            entry = _decode(kind, self._f.read(length))
            self._read_at += _HEAD.size + length
            self.entries -= 1
            self.bytes -= entry.size
            taken += entry.size
            out.append(entry)
        if not self.entries:  # drained: start over so the file does not grow forever
            self._f.seek(0)
            self._f.truncate()
            self._read_at = 0
        return out

    def clear(self) -> None:
        self._f.seek(0)
        self._f.truncate()
        self._read_at = self.entries = self.bytes = 0

    def close(self) -> None:
        self._f.close()
        self.path.unlink(missing_ok=True)


class ChangeJournal:
    """Thread-safe: the guest's writers append, the agent drains."""

    def __init__(
        self,
        disks: Iterable[int],
        spill_path: str | os.PathLike,
        memory_limit=32 << 20,
        spill_limit: int | None = None,
    ):
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._next_seq = {d: 1 for d in disks}
        self._memory: deque[Entry] = deque()
        self._memory_bytes = 0
        self.memory_limit = memory_limit
        self._spill = _SpillFile(Path(spill_path))
        self.peak_memory_bytes = 0
        self.spilled_entries = 0
        self.spill_limit = spill_limit
        self.overflowed = False

    # -- the write path -------------------------------------------------------------------------
    def append_write(self, disk: int, offset: int, data: bytes) -> int:
        with self._lock:
            seq = self._next_seq[disk]
            self._next_seq[disk] = seq + 1
            self._push(JournalWrite(disk, seq, offset, bytes(data)))
            return seq

    def append_tag(self, tag_id: str, kind: str, lab_time: float, group: str | None = None):
        if kind not in TAG_KINDS:
            raise ValueError(f"unknown tag kind {kind!r}")
        with self._lock:
            seqs = {}
            for disk, seq in self._next_seq.items():
                seqs[disk] = seq
                self._next_seq[disk] = seq + 1
            tag = JournalTag(tag_id, kind, lab_time, group, seqs)
            self._push(tag)
            return tag

    def append_marker(self, lab_time: float) -> JournalTag:
        with self._lock:
            seqs = {}
            for disk, seq in self._next_seq.items():
                seqs[disk] = seq
                self._next_seq[disk] = seq + 1
            marker = JournalTag("", MARKER, lab_time, None, seqs)
            self._push(marker)
            return marker

    def add_disk(self, disk: int, first_seq: int = 1) -> None:
        with self._lock:
            self._next_seq.setdefault(disk, first_seq)

    def next_seq(self, disk: int) -> int:
        with self._lock:
            return self._next_seq[disk]

    def _push(self, entry: Entry) -> None:
        if self.overflowed:
            return  # the stream is already broken: nothing more is kept until a resync
        # Once spilling has begun, everything newer goes to the spill file too: order is kept.
        if self._spill.entries or self._memory_bytes + entry.size > self.memory_limit:
            if self.spill_limit is not None and self._spill.bytes + entry.size > self.spill_limit:
                self._overflow()
                return
            self._spill.append(entry)
            self.spilled_entries += 1
        else:
            self._memory.append(entry)
            self._memory_bytes += entry.size
            self.peak_memory_bytes = max(self.peak_memory_bytes, self._memory_bytes)
        self._not_empty.notify_all()

    def _overflow(self) -> None:
        """Drop everything: a journal with a hole in it must not be sent as if whole."""
        self.overflowed = True
        self._memory.clear()
        self._memory_bytes = 0
        self._spill.clear()
        self._not_empty.notify_all()

    # -- the agent ------------------------------------------------------------------------------
    def take(self, max_bytes: int = 4 << 20, stop_at_tag: bool = True) -> list[Entry]:
        """Remove and return the oldest entries, up to about `max_bytes` (at least one).

        With `stop_at_tag`, a batch ends with the first tag it reaches, so each differential
        ends at a consistency point when there is one (a freshness marker is not one: it
        travels inside a batch).
        """
        with self._lock:
            out, taken = [], 0
            while taken < max_bytes:
                if not self._memory and self._spill.entries:
                    for entry in self._spill.read(max(self.memory_limit // 2, 1)):
                        self._memory.append(entry)
                        self._memory_bytes += entry.size
                if not self._memory:
                    break
                entry = self._memory.popleft()
                self._memory_bytes -= entry.size
                out.append(entry)
                taken += entry.size
                if stop_at_tag and isinstance(entry, JournalTag) and entry.kind != MARKER:
                    break
            return out

    def wait(self, timeout: float) -> bool:
        """Wait until there is something to take."""
        with self._lock:
            if self._memory or self._spill.entries:
                return True
            return self._not_empty.wait(timeout)

    @property
    def pending_entries(self) -> int:
        with self._lock:
            return len(self._memory) + self._spill.entries

    @property
    def pending_bytes(self) -> int:
        with self._lock:
            return self._memory_bytes + self._spill.bytes

    @property
    def memory_bytes(self) -> int:
        with self._lock:
            return self._memory_bytes

    def close(self) -> None:
        with self._lock:
            self._spill.close()
            self._memory.clear()
            self._memory_bytes = 0

    # -- a clean shutdown keeps the journal ---------------------------------------------------
    def save(self, path: str | os.PathLike, extra: dict | None = None) -> int:
        """Write every pending entry and the sequence counters to `path` (fsync), emptying
        the journal; returns the number of entries. What the guest writes while it shuts down
        cleanly is replicated after the next boot."""
        import json

        with self._lock:
            entries = []
            while self._memory or self._spill.entries:
                if not self._memory:
                    for entry in self._spill.read(self.memory_limit):
                        self._memory.append(entry)
                entries.append(self._memory.popleft())
            self._memory_bytes = 0
            head = json.dumps(
                {
                    "next_seq": {str(k): v for k, v in self._next_seq.items()},
                    # A broken stream stays broken across a clean reboot: its sequence
                    # numbers were spent on entries that are gone.
                    "overflowed": self.overflowed,
                    "extra": extra or {},
                }
            ).encode()
            tmp = Path(path).with_suffix(".tmp")
            with open(tmp, "wb") as f:
                f.write(struct.pack("<I", len(head)) + head)
                for entry in entries:
                    f.write(_encode(entry))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            return len(entries)

    @classmethod
    def restore(
        cls, path, spill_path, memory_limit=32 << 20, spill_limit: int | None = None
    ) -> tuple[ChangeJournal, dict]:
        """A journal from a `save`d file (and the file's `extra`)."""
        import json

        data = Path(path).read_bytes()
        (head_len,) = struct.unpack_from("<I", data)
        head = json.loads(data[4 : 4 + head_len])
        journal = cls([], spill_path, memory_limit, spill_limit)
        journal._next_seq = {int(k): v for k, v in head["next_seq"].items()}
        journal.overflowed = bool(head.get("overflowed"))
        pos = 4 + head_len
        with journal._lock:
            while pos < len(data):
                kind, length = _HEAD.unpack_from(data, pos)
                pos += _HEAD.size
                journal._push(_decode(kind, data[pos : pos + length]))
                pos += length
        return journal, head["extra"]
