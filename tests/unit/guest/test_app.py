"""The journaled application: commit, recover, check; crash at every step; real corruption."""

from __future__ import annotations

import threading

import pytest

from fakes.guest import app as journal
from fakes.guest.blockdev import MemoryDevice
from tests.helpers import wait_for

OFFSET = 512 * 1024
RING = journal.MIN_RING_SLOTS  # small, so a handful of commits wraps the ring
SEED = 1234


class CrashingDevice:
    """Passes the first `budget` writes down, then the power fails: the next write lands torn
    (its first `torn` bytes, or none) and every later write is lost."""

    def __init__(self, lower, budget: int, torn: int = 0):
        self.lower, self.budget, self.torn = lower, budget, torn
        self.writes = 0

    @property
    def size(self):
        return self.lower.size

    def read(self, offset, length):
        return self.lower.read(offset, length)

    def write(self, offset, data):
        n = self.writes
        self.writes += 1
        if n < self.budget:
            self.lower.write(offset, data)
        elif n == self.budget and self.torn:
            keep = min(self.torn, len(data))
            length = -(-keep // 512) * 512
            old = bytearray(self.lower.read(offset, length))
            old[:keep] = data[:keep]
            self.lower.write(offset, bytes(old))

    def flush(self):
        pass


def formatted(size=2 << 20, ring=RING) -> MemoryDevice:
    dev = MemoryDevice(size)
    journal.format_area(dev, OFFSET, ring, SEED)
    return dev


def running_app(dev) -> journal.JournalApp:
    app = journal.JournalApp(dev, OFFSET)
    assert app.recover().ok
    return app


def clone(dev: MemoryDevice) -> MemoryDevice:
    copy = MemoryDevice(dev.size)
    copy.data[:] = dev.data
    return copy


def test_empty_journal_checks_out():
    result = journal.check(formatted(), OFFSET)
    assert result.ok and result.committed_seq == 0 and result.records_checked == 0


def test_commit_recover_continue():
    dev = formatted(ring=64)
    app = running_app(dev)
    seqs = [app.commit() for _ in range(10)]
    assert seqs == sorted(seqs) and seqs[0] >= 1
    expected = sum(journal.txn_records(SEED, t) for t in range(1, 11))
    assert seqs[-1] == expected
    result = journal.check(dev, OFFSET)
    assert result.ok, result.errors
    assert (result.committed_seq, result.committed_txn, result.records_checked) == (
        expected,
        10,
        expected,
    )
    again = running_app(dev)  # recovery finds the committed position and continues from it
    assert again.commit() > expected
    assert journal.check(dev, OFFSET).ok


def test_ring_wraps_and_only_the_retained_window_is_checked():
    dev = formatted()
    app = running_app(dev)
    for _ in range(30):
        app.commit()
    result = journal.check(dev, OFFSET)
    assert result.ok, result.errors
    assert result.committed_seq > RING
    assert result.records_checked == RING - journal.MAX_TXN_RECORDS


def count_writes(dev, commits) -> int:
    counter = CrashingDevice(clone(dev), budget=10**9)
    app = running_app(counter)
    for _ in range(commits):
        app.commit()
    return counter.writes


@pytest.mark.parametrize("torn", [0, 200, 700, 5000])
def test_a_crash_at_any_write_of_any_commit_leaves_a_consistent_journal(torn):
    base = formatted()
    app = running_app(base)
    for _ in range(5):  # close to the end of the ring, so the crashes also hit the wrap
        app.commit()
    before = journal.check(base, OFFSET).committed_seq
    commits = 6
    total = count_writes(base, commits)
    assert total >= 2 * commits
    for budget in range(total + 1):
        disk = clone(base)
        crashing = running_app(CrashingDevice(disk, budget, torn))
        for _ in range(commits):
            crashing.commit()
        result = journal.check(disk, OFFSET)
        assert result.ok, (budget, result.errors)
        assert before <= result.committed_seq <= crashing._sb.committed_seq
        # after the crash the application recovers and goes on
        recovered = running_app(disk)
        recovered.commit()
        recovered.commit()
        assert journal.check(disk, OFFSET).ok, budget


def committed_app(commits=8, ring=64):
    dev = formatted(ring=ring)
    app = running_app(dev)
    for _ in range(commits):
        app.commit()
    return dev, app


def slot_offset(seq, ring=64) -> int:
    return OFFSET + journal.AREA_HEADER + ((seq - 1) % ring) * journal.RECORD_SIZE


def test_a_flipped_byte_in_a_committed_record_fails():
    dev, app = committed_app()
    raw = bytearray(dev.read(slot_offset(3), 4096))
    raw[1000] ^= 0x40
    dev.write(slot_offset(3), bytes(raw))
    result = journal.check(dev, OFFSET)
    assert not result.ok
    assert any("record 3" in e and "checksum" in e for e in result.errors)


def test_a_lost_committed_record_fails():
    dev, app = committed_app()
    last = app._sb.committed_seq
    dev.write(slot_offset(last), bytes(4096))  # the last committed write never arrived
    result = journal.check(dev, OFFSET)
    assert not result.ok
    assert any(f"record {last}: missing" in e for e in result.errors)


def test_a_replica_mixed_from_two_points_in_time_fails():
    dev, app = committed_app(commits=4)
    older = clone(dev)
    for _ in range(4):
        app.commit()
    # newer superblocks over older records: committed records are missing
    mixed = clone(older)
    mixed.write(OFFSET, dev.read(OFFSET, journal.AREA_HEADER))
    result = journal.check(mixed, OFFSET)
    assert not result.ok
    assert any("missing" in e for e in result.errors)


def test_a_record_rewritten_with_a_valid_checksum_still_breaks_the_chain():
    dev, app = committed_app()
    original = dev.read(slot_offset(4), 4096)
    prev = journal._REC.unpack_from(original)[-1]
    # a well-formed record 4 that is not the one committed (another transaction, another time)
    dev.write(slot_offset(4), journal.encode_record(SEED, 4, 99, 1, 0.0, prev))
    result = journal.check(dev, OFFSET)
    assert not result.ok
    assert any(e.startswith("record 5: chain broken") for e in result.errors)
    # and one whose previous-chain field is forged too
    dev.write(slot_offset(4), journal.encode_record(SEED, 4, 99, 1, 0.0, b"\x00" * 32))
    result = journal.check(dev, OFFSET)
    assert any(e.startswith("record 4: chain broken") for e in result.errors)


def test_another_vms_journal_fails_the_payload_check():
    dev, app = committed_app()
    sb = app._sb
    other = journal.Superblock(
        sb.generation + 1, sb.committed_seq, sb.committed_txn, sb.head_chain, sb.ring_slots, 999
    )
    dev.write(OFFSET + other.copy * journal.SUPERBLOCK_STRIDE, other.encode())
    result = journal.check(dev, OFFSET)
    assert not result.ok
    assert any("payload" in e for e in result.errors)


def test_a_torn_superblock_falls_back_to_the_other_copy():
    dev, app = committed_app()
    sb = app._sb
    raw = bytearray(dev.read(OFFSET + sb.copy * journal.SUPERBLOCK_STRIDE, 512))
    raw[20] ^= 0xFF
    dev.write(OFFSET + sb.copy * journal.SUPERBLOCK_STRIDE, bytes(raw))
    result = journal.check(dev, OFFSET)
    assert result.ok
    assert result.generation == sb.generation - 1
    assert result.committed_seq < sb.committed_seq


def test_no_superblock_at_all():
    result = journal.check(MemoryDevice(2 << 20), OFFSET)
    assert not result.ok and "no valid superblock" in result.errors[0]


def test_freeze_holds_transactions_until_thaw():
    dev = formatted(ring=64)
    app = running_app(dev)
    stop = threading.Event()
    worker = threading.Thread(target=app.run, args=(200.0, stop), daemon=True)
    worker.start()
    try:
        wait_for(lambda: app.commits >= 3, 10, message="transactions")
        app.freeze()
        assert app.state == "frozen"
        held = app.commits
        assert journal.check(dev, OFFSET).committed_txn == app._sb.committed_txn
        stop.wait(0.3)  # an observation window: nothing may commit while frozen
        assert app.commits == held
        app.thaw()
        wait_for(lambda: app.commits > held + 2, 10, message="transactions after thaw")
    finally:
        stop.set()
        worker.join(10)
    app.stop()
    assert journal.check(dev, OFFSET).ok
