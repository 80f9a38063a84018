"""The agent's pieces that need no sockets: batches into per-disk messages, extents into
chunks, the journal kept across a clean shutdown, the outbox."""

from components.mobility import replicator as rep
from components.mobility.journal import MARKER, TAG_CRASH, ChangeJournal, JournalTag, JournalWrite
from components.mobility.outbox import AgentState, Outbox
from lab.kit import wire


def test_a_batch_splits_into_one_message_per_disk_with_the_tag_on_each():
    entries = [
        JournalWrite(0, 1, 0, b"a" * 512),
        JournalWrite(1, 1, 512, b"b" * 512),
        JournalTag("cc-1", TAG_CRASH, 100.0, None, {0: 2, 1: 2}),
    ]
    m0 = rep._message("vm", "e-0", 0, entries, 1 << 20, 101.0)
    m1 = rep._message("vm", "e-1", 1, entries, 1 << 20, 101.0)
    assert (m0.first_sequence, m0.last_sequence) == (1, 2)
    assert [r.offset for r in m0.records] == [0] and m0.tags[0].position == 1
    assert m1.records[0].offset == 512 and m1.tags[0].tag_id == "cc-1"
    assert m0.captured_at == 101.0
    # Both round-trip through the wire format.
    assert wire.decode(wire.encode(m1)).tags[0].kind == wire.TagKind.CRASH_CONSISTENT


def test_a_marker_is_an_empty_message_taking_one_sequence():
    entries = [JournalTag("", MARKER, 5.0, None, {0: 7})]
    message = rep._message("vm", "e-0", 0, entries, 1 << 20, 5.0)
    assert (message.first_sequence, message.last_sequence) == (7, 7)
    assert message.records == () and message.tags == ()


def test_a_disk_without_entries_gets_no_message():
    entries = [JournalWrite(0, 1, 0, b"a" * 512)]
    assert rep._message("vm", "e-1", 1, entries, 1 << 20, 1.0) is None


def test_extents_become_chunks_of_at_most_4_mib_and_resume_from_an_offset():
    extents = [(0, 10 << 20), (100 << 20, 4096)]
    chunks = list(rep._chunks(extents, 0))
    assert chunks == [(0, 4 << 20), (4 << 20, 4 << 20), (8 << 20, 2 << 20), (100 << 20, 4096)]
    assert list(rep._chunks(extents, 8 << 20)) == chunks[2:]
    assert sum(length for _, length in chunks) == (10 << 20) + 4096  # never a hole


def test_scattered_small_extents_go_together_in_few_messages():
    extents = [(i * (1 << 20), 8192) for i in range(3000)]  # 8 KiB every MiB
    batches = list(rep._batches(rep._chunks(extents, 0)))
    assert sum(len(b) for b in batches) == 3000
    assert len(batches) == 6  # 512 pieces of 8 KiB fill 4 MiB: not 3000 messages
    assert all(sum(n for _, n in b) <= rep.CHUNK for b in batches)
    big = list(rep._batches(rep._chunks([(0, 10 << 20)], 0)))
    assert [len(b) for b in big] == [1, 1, 1]  # 4 + 4 + 2 MiB: one piece a message


def test_journal_kept_at_a_clean_shutdown_comes_back_in_order(tmp_path):
    journal = ChangeJournal([0, 1], tmp_path / "spill", memory_limit=2048)
    for i in range(20):  # more than fits in memory: some entries are in the spill file
        journal.append_write(i % 2, i * 512, bytes([i]) * 512)
    journal.append_tag("t", TAG_CRASH, 9.0)
    assert journal.save(tmp_path / "saved", {"digests": {"0": {}}}) == 21
    journal.close()
    back, extra = ChangeJournal.restore(tmp_path / "saved", tmp_path / "spill2")
    entries = back.take(max_bytes=1 << 20, stop_at_tag=False)
    assert [e.data[0] for e in entries[:-1]] == list(range(20))
    assert isinstance(entries[-1], JournalTag) and extra == {"digests": {"0": {}}}
    assert back.next_seq(0) == 12 and back.next_seq(1) == 12


def test_outbox_survives_a_restart_in_order(tmp_path):
    box = Outbox(tmp_path)
    box.put(b"one")
    second = box.put(b"two")
    (tmp_path / "x.tmp").write_bytes(b"torn")
    again = Outbox(tmp_path)
    assert [p.read_bytes() for p in again.pending()] == [b"one", b"two"]
    again.done(second)
    assert [p.read_bytes() for p in Outbox(tmp_path).pending()] == [b"one"]
    assert not list(tmp_path.glob("*.tmp"))
    state = AgentState(tmp_path / "state.json", {"ir": {}})
    assert state.fresh
    state.data["ir"]["0"] = 5
    state.save()
    assert AgentState(tmp_path / "state.json", {}).data == {"ir": {"0": 5}}
