import threading

import pytest

from components.mobility.journal import TAG_APP, TAG_CRASH, ChangeJournal, JournalTag, JournalWrite


@pytest.fixture
def journal(tmp_path):
    j = ChangeJournal([0, 1], tmp_path / "spill", memory_limit=4096)
    yield j
    j.close()


def drain(journal):
    out = []
    while True:
        batch = journal.take(max_bytes=10_000, stop_at_tag=False)
        if not batch:
            return out
        out.extend(batch)


def test_writes_keep_order_and_per_disk_sequences(journal):
    journal.append_write(0, 0, b"a" * 512)
    journal.append_write(1, 512, b"b" * 512)
    journal.append_write(0, 1024, b"c" * 512)
    entries = drain(journal)
    assert [(e.disk, e.seq, e.offset) for e in entries] == [(0, 1, 0), (1, 1, 512), (0, 2, 1024)]


def test_a_tag_takes_the_next_sequence_of_every_disk(journal):
    journal.append_write(0, 0, b"a" * 512)
    tag = journal.append_tag("t1", TAG_CRASH, 100.0)
    journal.append_write(1, 0, b"b" * 512)
    assert tag.seqs == {0: 2, 1: 1}
    entries = drain(journal)
    assert isinstance(entries[1], JournalTag)
    assert entries[2].seq == 2  # disk 1 after the tag


def test_take_stops_at_a_tag(journal):
    for i in range(3):
        journal.append_write(0, i * 512, b"x" * 512)
    journal.append_tag("t", TAG_APP, 1.0, group="g1")
    journal.append_write(0, 0, b"y" * 512)
    batch = journal.take(max_bytes=1 << 20)
    assert len(batch) == 4 and batch[-1].group == "g1"
    assert journal.pending_entries == 1


def test_memory_is_bounded_and_spill_keeps_order(journal):
    payloads = [bytes([i]) * 512 for i in range(40)]  # ~22 KiB, limit is 4 KiB
    for i, data in enumerate(payloads):
        journal.append_write(i % 2, i * 512, data)
        if i == 20:
            journal.append_tag("mid", TAG_CRASH, 5.0)
    assert journal.memory_bytes <= 4096
    assert journal.peak_memory_bytes <= 4096
    assert journal.spilled_entries > 30
    entries = drain(journal)
    writes = [e for e in entries if isinstance(e, JournalWrite)]
    assert [w.data for w in writes] == payloads
    assert sum(isinstance(e, JournalTag) for e in entries) == 1
    assert journal.pending_bytes == 0


def test_spill_file_is_reused_after_draining(tmp_path):
    journal = ChangeJournal([0], tmp_path / "spill", memory_limit=1024)
    for _round in range(3):
        for i in range(20):
            journal.append_write(0, i * 512, b"z" * 512)
        assert len(drain(journal)) == 20
        assert (tmp_path / "spill").stat().st_size == 0
    journal.close()
    assert not (tmp_path / "spill").exists()


def test_concurrent_writers_and_a_drainer_lose_nothing(tmp_path):
    journal = ChangeJournal([0, 1, 2], tmp_path / "spill", memory_limit=8192)
    writers = [
        threading.Thread(
            target=lambda d=d: [journal.append_write(d, i * 512, b"q" * 512) for i in range(300)]
        )
        for d in range(3)
    ]
    got = []
    done = threading.Event()

    def drainer():
        while not done.is_set() or journal.pending_entries:
            journal.wait(0.05)
            got.extend(journal.take(max_bytes=4096, stop_at_tag=False))

    d = threading.Thread(target=drainer)
    d.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    done.set()
    d.join(timeout=30)
    assert len(got) == 900
    for disk in range(3):
        seqs = [e.seq for e in got if e.disk == disk]
        assert seqs == list(range(1, 301))


def test_unknown_tag_kind_is_refused(journal):
    with pytest.raises(ValueError):
        journal.append_tag("t", "weird", 0.0)


def test_a_marker_takes_a_sequence_number_and_is_no_tag(journal):
    journal.append_write(0, 0, b"a" * 512)
    marker = journal.append_marker(7.0)
    assert marker.kind == "marker" and marker.seqs == {0: 2, 1: 1}
    assert journal.next_seq(0) == 3
