"""The agent's side of a resync: names, why one is required, and one generation's run against
an in-memory process server holding the replica (no sockets)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from components import resync as engine
from components.http_client import ServerError
from components.mobility import filter as mf
from components.mobility import resync_agent
from components.mobility.journal import JournalTag, JournalWrite
from components.mobility.outbox import AgentState, Outbox
from components.mobility.resync_agent import (
    ResyncFailed,
    ResyncRun,
    complete_tag,
    required_entry,
    stream_base,
)
from fakes.guest.blockdev import MemoryDevice
from lab.kit import wire

BLOCK = engine.BLOCK
EPOCH = "e5"
VM_ID = "5003c3b1-aaaa-bbbb-cccc-00000000000a"
NOW = 1_800_000_000.0


# -- names and reasons ----------------------------------------------------------------------------
def test_stream_base_and_complete_tag_follow_the_generation():
    assert stream_base(EPOCH, 0) == "e5"
    assert stream_base(EPOCH, 3) == "e5.3"
    assert complete_tag(EPOCH, 3) == "rs-complete-e5-3"


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("disk-resized", "DiskResized"),
        ("unclean-shutdown", "ResyncRequired"),
        ("journal-overflow", "ResyncRequired"),
        ("change-stream-broken", "ResyncRequired"),
    ],
)
def test_each_reason_has_its_code(reason, code):
    entry = required_entry(reason, NOW, [2, 0, 1])
    assert entry == {
        "code": code,
        "reason": reason,
        "message": resync_agent.REASONS[reason][1],
        "disks": [0, 1, 2],
        "since": NOW,
    }


def test_a_detail_is_appended_to_the_message():
    entry = required_entry("disk-resized", NOW, {1}, "(disk 1 to 2147483648 bytes)")
    assert entry["message"] == "A protected disk was resized. (disk 1 to 2147483648 bytes)"
    assert entry["disks"] == [1]


def test_an_unknown_reason_is_refused():
    with pytest.raises(KeyError):
        required_entry("bored", NOW, [0])


# -- one generation's run -------------------------------------------------------------------------
class ProcessServer:
    """The process server and the Azure side behind it, in memory: the replica's checksums as
    the worker publishes them, and the differentials applied to the replica as they come."""

    def __init__(self, replicas: dict[int, bytearray | SparseDisk]):
        self.replicas = replicas
        self.calls: list[tuple[str, str]] = []
        self.plans: list[dict] = []
        self.messages: list[wire.Message] = []
        self.unavailable = False
        self.missing_batches: set[tuple[int, int]] = set()
        self.after_message = lambda message: None

    def _scan(self, index: int) -> engine.Scan:
        replica = self.replicas[index]
        extents = getattr(replica, "allocated_extents", lambda: [(0, len(replica))])()
        return engine.Scan(
            lambda o, n: bytes(replica[o : o + n]),
            engine.blocks_of(extents, len(replica)),
            len(replica),
        )

    def call(self, method, path, body=None, data=None, headers=None, raw=False):
        self.calls.append((method, path))
        if self.unavailable:
            raise ServerError("503 ProcessServerBusy", 503)
        parts = path.strip("/").split("/")
        if (method, path) == ("POST", "/v1/manifests"):
            self.plans.append(body)
            return {"acknowledged": body["kind"]}
        if (method, path) == ("POST", "/v1/differentials"):
            message = wire.decode(data)
            self.messages.append(message)
            replica = self.replicas[int(message.disk_id.split("-")[1])]
            for record in message.records:
                replica[record.offset : record.offset + len(record.data)] = bytes(record.data)
            self.after_message(message)
            return {"acknowledged": message.last_sequence}
        if method == "GET" and parts[:3] == ["v1", "resync", EPOCH] and len(parts) == 4:
            return {
                "disks": {
                    str(i): {"size": len(r), "batches": [f for f, _ in self._scan(i).batches()]}
                    for i, r in self.replicas.items()
                }
            }
        if method == "GET" and len(parts) == 8 and parts[6] == "sums":
            index, first = int(parts[5]), int(parts[7])
            if (index, first) in self.missing_batches:
                raise ServerError("404 ChecksumsNotFound", 404)
            assert raw
            scan = self._scan(index)
            return engine.encode_batch(scan.batch(first, first + engine.BATCH_BLOCKS))
        raise AssertionError(f"unexpected call {method} {path}")


class SparseDisk:
    """A large disk of a few written ranges (zeros elsewhere): a source device (size, read,
    allocated_extents) or a replica (sliced like a bytearray)."""

    def __init__(self, size: int):
        self.size = size
        self.writes: list[tuple[int, bytes]] = []

    def __len__(self) -> int:
        return self.size

    def write(self, offset: int, data: bytes) -> None:
        self.writes.append((offset, bytes(data)))

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray(length)
        for at, data in self.writes:
            lo, hi = max(at, offset), min(at + len(data), offset + length)
            if lo < hi:
                out[lo - offset : hi - offset] = data[lo - at : hi - at]
        return bytes(out)

    def __getitem__(self, span: slice) -> bytes:
        return self.read(span.start, span.stop - span.start)

    def __setitem__(self, span: slice, data: bytes) -> None:
        self.write(span.start, data)

    def allocated_extents(self) -> list[tuple[int, int]]:
        return [(at, len(data)) for at, data in self.writes]


class Replicator:
    """The replicator's attributes a `ResyncRun` uses."""

    def __init__(self, tmp_path, disks: dict[int, mf.MobilityFilter], ps: ProcessServer):
        self.state = AgentState(
            tmp_path / "replication.json", {"resync": resync_agent.initial_status()}
        )
        self.devices = disks
        self.disks = {i: {"disk_id": f"{VM_ID}:disk-{i}"} for i in disks}
        self.ps = ps
        self.stop_event = _Event()
        self.clock = SimpleNamespace(time=lambda: NOW)
        self.epoch = EPOCH
        self.settings = {"protected_item": "item-a", "process_server": {"url": "https://ps:9443"}}
        self.api = SimpleNamespace(vm_id=VM_ID)
        self.outbox = Outbox(tmp_path / "outbox")
        self.bytes_sent = 0
        self.messages_sent = 0
        self.sent_noted = 0

    def disk(self, index: int):
        return self.devices[index]

    def note_sent(self) -> None:
        self.sent_noted += 1

    def record_disk_sizes(self) -> None:
        self.state.data["disk_sizes"] = {str(i): d.size for i, d in self.devices.items()}


class _Event:
    """A stop event that never blocks a test: `wait` returns at once."""

    def __init__(self):
        self._set = False

    def set(self):
        self._set = True

    def clear(self):
        self._set = False

    def is_set(self):
        return self._set

    def wait(self, timeout=None):
        return self._set


SIZE = 2 << 20  # 32 blocks


@pytest.fixture
def filter_state(tmp_path, monkeypatch):
    state = mf.FilterState()
    api = SimpleNamespace(
        settings={"verify_mode": False}, spill_dir=tmp_path, previous_shutdown_clean=True
    )
    state.configure(api)
    monkeypatch.setattr(mf, "STATE", state)
    yield state
    state.stop_tracking()


def block(data: int) -> bytes:
    return bytes([data]) * BLOCK


@pytest.fixture
def lab(tmp_path, filter_state):
    """Two source disks behind the filter and their replicas, which differ: a block changed,
    a block missing, a block the source no longer has (a hole now), a short write."""
    rng = random.Random(50)
    sources = {i: mf.MobilityFilter(MemoryDevice(SIZE), i, filter_state) for i in (0, 1)}
    for i, flt in sources.items():
        filter_state.disks[i] = flt
        for b in (0, 3, 7, 20):
            flt.lower.write(b * BLOCK, rng.randbytes(BLOCK))
    replicas = {i: bytearray(flt.lower.data) for i, flt in sources.items()}
    sources[0].lower.write(3 * BLOCK + 512, b"\xaa" * 512)  # changed since the replica
    sources[0].lower.write(9 * BLOCK, block(9))  # the replica lacks it
    replicas[0][25 * BLOCK : 26 * BLOCK] = block(25)  # the source has a hole there
    sources[1].lower.write(SIZE - 512, b"\xbb" * 512)  # in the last block
    ps = ProcessServer(replicas)
    replicator = Replicator(tmp_path, sources, ps)
    return SimpleNamespace(sources=sources, replicas=replicas, ps=ps, r=replicator)


def drain(journal) -> list:
    return journal.take(max_bytes=1 << 30, stop_at_tag=False)


def test_a_resync_sends_only_what_differs_and_makes_the_replica_equal(lab, filter_state):
    r, ps = lab.r, lab.ps
    old = filter_state.start_tracking()
    lab.sources[1].write(0, b"\x01" * 512)  # in the old journal: the resync covers it
    stale = r.outbox.put(b"a differential of the old stream")
    r.state.data["resync"]["required"] = required_entry("journal-overflow", NOW - 60, [0, 1])
    ResyncRun(r, 1).run()

    for i in (0, 1):
        assert bytes(ps.replicas[i]) == bytes(lab.sources[i].lower.data)
    (plan,) = ps.plans
    assert plan["kind"] == "rs-plan" and plan["generation"] == 1 and plan["epoch"] == EPOCH
    assert plan["reason"] == "journal-overflow" and plan["vm_id"] == VM_ID
    assert [(d["index"], d["size"]) for d in plan["disks"]] == [(0, SIZE), (1, SIZE)]
    streams = {m.disk_id for m in ps.messages}
    assert streams == {"e5.1-0-rs", "e5.1-1-rs"}
    for stream in streams:
        messages = [m for m in ps.messages if m.disk_id == stream]
        assert [m.first_sequence for m in messages] == list(range(1, len(messages) + 1))
        assert all(m.flags & wire.Flags.RESYNC for m in messages)
        assert [bool(m.flags & wire.Flags.END_OF_PASS) for m in messages][-1]
        assert not any(m.flags & wire.Flags.END_OF_PASS for m in messages[:-1])
    # The differing blocks only, not the whole disk: disk 0's changed, missing and cleared
    # blocks; disk 1's block written into the old journal and its last block.
    sent = {(m.disk_id, rec.offset // BLOCK) for m in ps.messages for rec in m.records}
    assert sent == {
        ("e5.1-0-rs", 3),
        ("e5.1-0-rs", 9),
        ("e5.1-0-rs", 25),
        ("e5.1-1-rs", 0),
        ("e5.1-1-rs", 31),
    }
    status = r.state.data["resync"]
    assert status["state"] == "Completed" and status["percent"] == 100
    assert status["generation"] == 1 and status["journal_generation"] == 1
    assert status["required"] is None and status["error"] is None
    assert status["disks"]["0"]["blocks_sent"] == 2 and status["disks"]["0"]["blocks_cleared"] == 1
    assert status["disks"]["1"]["blocks_sent"] == 2 and status["disks"]["1"]["done"]
    assert r.messages_sent == len(ps.messages) and r.bytes_sent > 2 * BLOCK
    assert not stale.exists() and r.outbox.pending() == []
    # A fresh journal: the old one's entries are gone, the resync's tag is in the new one.
    assert filter_state.journal is not old
    (tag,) = drain(filter_state.journal)
    assert isinstance(tag, JournalTag) and tag.tag_id == "rs-complete-e5-1"
    assert AgentState(r.state.path, {}).data["resync"]["state"] == "Completed"  # saved


def test_writes_during_the_resync_are_in_the_fresh_journal_before_its_tag(lab, filter_state):
    r, ps = lab.r, lab.ps
    filter_state.start_tracking()
    written = []

    def guest_writes(message):
        if message.disk_id == "e5.1-0-rs" and not written:
            lab.sources[1].write(4096, b"\x02" * 512)
            written.append(message)

    ps.after_message = guest_writes
    ResyncRun(r, 1).run()
    entries = drain(filter_state.journal)
    assert [type(e) for e in entries] == [JournalWrite, JournalTag]
    assert (entries[0].disk, entries[0].seq, entries[0].offset) == (1, 1, 4096)
    assert entries[1].tag_id == complete_tag(EPOCH, 1)


def test_a_stopped_resync_carries_on_where_it_was(lab, filter_state):
    r, ps = lab.r, lab.ps
    filter_state.start_tracking()

    def stop_after_disk_0(message):
        if message.disk_id == "e5.1-0-rs" and message.flags & wire.Flags.END_OF_PASS:
            r.stop_event.set()

    ps.after_message = stop_after_disk_0
    with pytest.raises(InterruptedError):
        ResyncRun(r, 1).run()
    assert r.state.data["resync"]["state"] == "Running"
    assert r.state.data["resync"]["disks"]["0"]["done"]
    sent_before = len(ps.messages)
    first_journal = filter_state.journal

    r.stop_event.clear()
    ps.after_message = lambda message: None
    ResyncRun(r, 1).run()
    assert len(ps.plans) == 1  # the plan is not sent again
    assert {m.disk_id for m in ps.messages[sent_before:]} == {"e5.1-1-rs"}
    assert filter_state.journal is first_journal  # tracking was not restarted
    for i in (0, 1):
        assert bytes(ps.replicas[i]) == bytes(lab.sources[i].lower.data)
    assert r.state.data["resync"]["state"] == "Completed"


def test_an_unreachable_process_server_fails_the_resync_and_names_it(
    lab, filter_state, monkeypatch
):
    monkeypatch.setattr(resync_agent, "GIVE_UP_SECONDS", -1.0)  # give up at the first refusal
    filter_state.start_tracking()
    lab.ps.unavailable = True
    with pytest.raises(ResyncFailed, match="https://ps:9443"):
        ResyncRun(lab.r, 1).run()
    assert lab.r.state.data["resync"]["state"] == "Running"  # the replicator records the failure


def test_a_missing_checksum_batch_fails_the_resync(lab, filter_state):
    filter_state.start_tracking()
    lab.ps.missing_batches.add((1, 0))
    with pytest.raises(ResyncFailed, match="disk 1"):
        ResyncRun(lab.r, 1).run()


def test_a_resync_stopped_inside_a_disk_resumes_at_its_next_batch(tmp_path, filter_state):
    batch = engine.BATCH_BLOCKS
    size = 2 * batch * BLOCK  # two batches of checksums
    source, replica = SparseDisk(size), SparseDisk(size)
    replica.write(5 * BLOCK, block(1))
    replica.write((batch + 7) * BLOCK, block(2))
    source.write(5 * BLOCK, block(3))  # both batches differ
    source.write((batch + 7) * BLOCK, block(4))
    ps = ProcessServer({0: replica})
    r = Replicator(tmp_path, {0: source}, ps)
    filter_state.start_tracking()
    ps.after_message = lambda message: r.stop_event.set()  # stopped after the first batch
    with pytest.raises(InterruptedError):
        ResyncRun(r, 1).run()
    progress = r.state.data["resync"]["disks"]["0"]
    assert progress["next_batch"] == batch and not progress["done"]
    assert progress["percent"] == 50

    r.stop_event.clear()
    ps.after_message = lambda message: None
    ResyncRun(r, 1).run()
    sums = [p for m, p in ps.calls if m == "GET" and "/sums/" in p]
    assert sums == ["/v1/resync/e5/1/disks/0/sums/0", f"/v1/resync/e5/1/disks/0/sums/{batch}"]
    assert [m.first_sequence for m in ps.messages] == [1, 2, 3]  # one stream, no repeat
    assert ps.messages[-1].flags & wire.Flags.END_OF_PASS
    for b in (5, batch + 7):
        assert replica.read(b * BLOCK, BLOCK) == source.read(b * BLOCK, BLOCK)
