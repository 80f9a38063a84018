"""A bounded spill file: the journal that outgrows it drops everything and stays overflowed;
the filter's fresh journal for a resync, and a clean shutdown's journal resumed at boot."""

from types import SimpleNamespace

import pytest

from components.mobility import filter as mf
from components.mobility.journal import TAG_CRASH, ChangeJournal, JournalWrite
from fakes.guest.blockdev import MemoryDevice

WRITE = 512
ENTRY = WRITE + 48  # JournalWrite.size of a 512-byte write


def drain(journal):
    out = []
    while True:
        batch = journal.take(max_bytes=1 << 20, stop_at_tag=False)
        if not batch:
            return out
        out.extend(batch)


@pytest.fixture
def bounded(tmp_path):
    # One write fits in memory; seven more fit in the spill file, the eighth does not.
    journal = ChangeJournal([0, 1], tmp_path / "spill", memory_limit=ENTRY, spill_limit=7 * ENTRY)
    yield journal
    journal.close()


def fill_to_the_limit(journal):
    for i in range(8):
        journal.append_write(i % 2, i * WRITE, bytes([i + 1]) * WRITE)


def test_a_journal_at_its_spill_limit_keeps_everything(bounded):
    fill_to_the_limit(bounded)
    assert not bounded.overflowed
    assert bounded.spilled_entries == 7 and bounded.pending_entries == 8
    assert [e.data[0] for e in drain(bounded)] == list(range(1, 9))


def test_outgrowing_the_spill_limit_drops_everything_and_takes_nothing(bounded, tmp_path):
    fill_to_the_limit(bounded)
    bounded.append_write(0, 0, b"x" * WRITE)  # one entry past the limit
    assert bounded.overflowed
    assert bounded.pending_entries == 0 and bounded.pending_bytes == 0
    assert bounded.memory_bytes == 0
    assert (tmp_path / "spill").stat().st_size == 0  # the spilled entries are gone too
    assert bounded.take(max_bytes=1 << 20, stop_at_tag=False) == []


def test_an_overflowed_journal_ignores_later_writes_and_tags(bounded):
    fill_to_the_limit(bounded)
    bounded.append_write(1, 0, b"x" * WRITE)
    assert bounded.overflowed
    bounded.append_write(0, 0, b"y" * WRITE)  # small enough to fit now: still refused
    bounded.append_tag("cc-after", TAG_CRASH, 1.0)
    bounded.append_marker(2.0)
    assert bounded.overflowed
    assert bounded.pending_entries == 0
    assert drain(bounded) == []


def test_an_overflowed_journal_stays_overflowed_across_a_clean_reboot(bounded, tmp_path):
    fill_to_the_limit(bounded)
    bounded.append_write(0, 0, b"x" * WRITE)
    bounded.save(tmp_path / "saved")
    restored, _extra = ChangeJournal.restore(
        tmp_path / "saved", tmp_path / "spill2", memory_limit=ENTRY, spill_limit=7 * ENTRY
    )
    try:
        assert restored.overflowed  # its sequence numbers went to entries that are gone
        restored.append_write(0, 0, b"y" * WRITE)
        assert restored.pending_entries == 0
    finally:
        restored.close()


def test_without_a_spill_limit_the_journal_never_overflows(tmp_path):
    journal = ChangeJournal([0], tmp_path / "spill", memory_limit=ENTRY)
    try:
        for i in range(200):  # far past what the bounded journal above holds
            journal.append_write(0, (i % 64) * WRITE, bytes([i % 251 + 1]) * WRITE)
        assert not journal.overflowed
        assert journal.spilled_entries == 199
        writes = drain(journal)
        assert [w.seq for w in writes] == list(range(1, 201))
        assert all(isinstance(w, JournalWrite) for w in writes)
    finally:
        journal.close()


# -- the filter's journal ----------------------------------------------------------------------
def guest_api(spill_dir, clean=True, **settings):
    return SimpleNamespace(
        settings={"verify_mode": True} | settings,
        spill_dir=spill_dir,
        previous_shutdown_clean=clean,
    )


def disk(state, index, size=1 << 20):
    flt = mf.MobilityFilter(MemoryDevice(size), index, state)
    state.disks[index] = flt
    return flt


@pytest.fixture
def state(tmp_path):
    st = mf.FilterState()
    st.configure(guest_api(tmp_path))
    yield st
    st.stop_tracking()


def test_the_filter_journal_overflows_at_journal_limit_mb(tmp_path):
    st = mf.FilterState()
    st.configure(guest_api(tmp_path, verify_mode=False, journal_memory_mb=0, journal_limit_mb=1))
    try:
        d0 = disk(st, 0, 4 << 20)
        journal = st.start_tracking()
        assert journal.spill_limit == 1 << 20
        for i in range(15):  # 15 x (64 KiB + 48) is below 1 MiB
            d0.write(i * 65536, b"w" * 65536)
        assert not st.overflowed
        d0.write(15 * 65536, b"w" * 65536)
        assert st.overflowed and journal.pending_entries == 0
        fresh = st.restart_tracking()
        assert not st.overflowed and fresh is not journal
    finally:
        st.stop_tracking()


def test_restart_tracking_gives_a_fresh_journal_from_sequence_one(state):
    d0, d1 = disk(state, 0), disk(state, 1)
    old = state.start_tracking()
    d0.write(0, b"a" * 512)
    d0.write(512, b"b" * 512)
    state.tag("cc-old", TAG_CRASH, 1.0)
    assert old.next_seq(0) == 4
    d1.write(65536, b"c" * 512)  # after the old tag: in the digests of the new journal's scan
    journal = state.restart_tracking()
    assert journal is not old and state.journal is journal
    assert journal.pending_entries == 0
    assert state.manifests == {}  # the old tag's manifest went with its journal
    assert set(state.digests[1]) == {1}
    d1.write(0, b"d" * 512)
    (entry,) = drain(journal)
    assert (entry.disk, entry.seq, entry.offset) == (1, 1, 0)
    assert journal.next_seq(0) == 1


def test_a_clean_shutdown_journal_resumes_when_the_filter_is_configured(tmp_path):
    before = mf.FilterState()
    before.configure(guest_api(tmp_path))
    d0 = disk(before, 0)
    before.start_tracking()
    d0.write(0, b"k" * 512)
    d0.write(4096, b"l" * 512)
    before.keep_for_next_boot()
    assert before.saved_path.exists() and not before.tracking

    after = mf.FilterState()
    after.configure(guest_api(tmp_path, clean=True))
    try:
        # Tracking again at boot, before the agent asks: a write now is not lost.
        assert after.tracking
        assert not after.saved_path.exists()
        disk(after, 0).write(8192, b"m" * 512)
        assert after.start_tracking() is after.journal
        entries = drain(after.journal)
        assert [(e.seq, e.offset) for e in entries] == [(1, 0), (2, 4096), (3, 8192)]
        assert set(after.digests[0]) == {0}  # the digests kept at shutdown
    finally:
        after.stop_tracking()


def test_after_an_unclean_stop_the_saved_journal_is_dropped_at_configure(tmp_path):
    before = mf.FilterState()
    before.configure(guest_api(tmp_path))
    d0 = disk(before, 0)
    before.start_tracking()
    d0.write(0, b"k" * 512)
    before.keep_for_next_boot()
    assert before.saved_path.exists()

    after = mf.FilterState()
    after.configure(guest_api(tmp_path, clean=False))
    try:
        assert not after.tracking
        assert not after.saved_path.exists()
        disk(after, 0)
        journal = after.start_tracking()
        assert journal.pending_entries == 0 and journal.next_seq(0) == 1
    finally:
        after.stop_tracking()
