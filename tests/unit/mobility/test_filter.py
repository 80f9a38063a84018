"""The mobility filter in the write path, on in-memory disks (no guest process)."""

import threading
from types import SimpleNamespace

import pytest

from components.mobility import filter as mf
from components.mobility.journal import TAG_CRASH, JournalTag, JournalWrite
from fakes.guest.blockdev import MemoryDevice


@pytest.fixture
def state(tmp_path):
    st = mf.FilterState()
    api = SimpleNamespace(
        settings={"verify_mode": True}, spill_dir=tmp_path, previous_shutdown_clean=True
    )
    st.configure(api)
    yield st
    st.stop_tracking()


def disk(state, index, size=1 << 20):
    flt = mf.MobilityFilter(MemoryDevice(size), index, state)
    state.disks[index] = flt
    return flt


def test_nothing_is_journaled_until_tracking_starts(state):
    d0 = disk(state, 0)
    d0.write(0, b"a" * 512)
    assert not state.tracking
    journal = state.start_tracking()
    d0.write(512, b"b" * 512)
    entries = journal.take(stop_at_tag=False)
    assert [(e.offset, e.data[:1]) for e in entries] == [(512, b"b")]
    assert d0.read(0, 1024) == b"a" * 512 + b"b" * 512


def test_tag_is_one_instant_on_every_disk_with_a_manifest(state):
    d0, d1 = disk(state, 0), disk(state, 1)
    d0.write(0, b"x" * 4096)  # before tracking: in the initial digests
    state.start_tracking()
    d1.write(65536, b"y" * 512)
    tag = state.tag("t1", TAG_CRASH, 42.0)
    d0.write(0, bytes(4096))  # zeroing the block removes it from the digests
    manifest = state.pop_manifest(tag)
    assert set(manifest) == {0, 1}
    assert 0 in manifest[0] and 1 in manifest[1]
    assert manifest[0][0] == mf.block_digest(b"x" * 4096 + bytes(mf.DIGEST_BLOCK - 4096))
    assert state.digests[0] == {}  # after the zeroing write
    entries = state.journal.take(stop_at_tag=False)
    kinds = [type(e) for e in entries]
    assert kinds == [JournalWrite, JournalTag, JournalWrite]
    assert entries[1].seqs == {0: 1, 1: 2}


def test_writes_racing_a_tag_land_wholly_before_or_after_it(state):
    disks = [disk(state, i) for i in range(3)]
    state.start_tracking()
    stop = threading.Event()

    def writer(d):
        n = 0
        while not stop.is_set():
            d.write((n % 64) * 512, bytes([n % 251 + 1]) * 512)
            n += 1

    threads = [threading.Thread(target=writer, args=(d,)) for d in disks]
    for t in threads:
        t.start()
    tags = [state.tag(f"t{i}", TAG_CRASH, float(i)) for i in range(20)]
    stop.set()
    for t in threads:
        t.join()
    # Replay the journal: at each tag, every disk's replayed content matches its manifest.
    replay = [MemoryDevice(1 << 20) for _ in disks]
    checked = 0
    while True:
        batch = state.journal.take(max_bytes=1 << 20, stop_at_tag=False)
        if not batch:
            break
        for entry in batch:
            if isinstance(entry, JournalWrite):
                replay[entry.disk].write(entry.offset, entry.data)
            else:
                manifest = state.pop_manifest(entry)
                for i, dev in enumerate(replay):
                    want = manifest.get(i, {})
                    got = {0: mf.block_digest(dev.read(0, mf.DIGEST_BLOCK))}
                    got = {k: v for k, v in got.items() if v is not None}
                    assert got == want
                checked += 1
    assert checked == len(tags)


def test_resize_is_reported_once(state):
    d0 = disk(state, 0)
    d0.resize(2 << 20)
    assert state.take_resized() == {0: 2 << 20}
    assert state.take_resized() == {}


def test_extents_of_a_device_without_them_is_the_whole_disk(state):
    assert disk(state, 0, 4096).allocated_extents() == [(0, 4096)]
