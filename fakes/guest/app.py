"""The journaled application: a small database whose data can be checked after any crash.

On-disk format, inside the application's area (see `layout.py`):

    +0      superblock copy A  (one 512-byte sector)
    +4096   superblock copy B
    +8192   ring of `ring_slots` record slots of 4096 bytes; record `seq` is in slot (seq-1) % ring

A record holds its seq, its transaction number, the lab time, the chain hash of the previous
record, a payload derived from (seed, seq) and a SHA-256 of all of that. The chain hash of a
record is SHA-256(previous chain || record checksum), starting from a genesis value derived
from the seed. A superblock holds the generation, the committed seq and transaction, the chain
hash of the committed record, the ring geometry and the seed, with a checksum; generation g
is written to copy g % 2, so a torn superblock write leaves the previous one readable.

A transaction (commit) is: write its 1-4 records, flush, write the next superblock, flush.
If writes reach the disk in order, a crash at any point leaves the disk consistent: either the
new superblock is valid (and its records are on disk before it) or the older one is, and the
newer records only overwrote slots outside the older superblock's retained window (the ring
minus one transaction). `check` verifies every retained committed record: checksum, seq, the
payload from the seed, the chain from record to record, and the chain against the
superblock; so a flipped byte, a lost committed record, a replica mixed from two points in
time or from another VM all fail.

`quiesce` is freeze (finish the transaction in progress, flush, hold new ones) then thaw.
Not emulated: reads by the application, concurrent transactions, a log that outgrows the ring
(old records are overwritten: only the retained window is checked).
"""

from __future__ import annotations

import hashlib
import logging
import struct
import threading
import time
from dataclasses import asdict, dataclass, field

from .blockdev import SECTOR

log = logging.getLogger(__name__)

RECORD_SIZE = 4096
SUPERBLOCK_STRIDE = 4096
AREA_HEADER = 2 * SUPERBLOCK_STRIDE  # two superblock copies before the ring
MAX_RING_SLOTS = 4096  # 16 MiB of records
MIN_RING_SLOTS = 16
MAX_TXN_RECORDS = 4

SB_MAGIC = b"DRLABJRN"
REC_MAGIC = b"JREC"
VERSION = 1
# magic, version, reserved, generation, committed seq, committed txn, head chain, ring slots,
# record size, seed, checksum
_SB = struct.Struct("<8sHHQQQ32sIIQ32s")
# magic, version, records in this transaction, seq, txn, lab time, previous chain
_REC = struct.Struct("<4sHHQQd32s")
PAYLOAD_SIZE = RECORD_SIZE - _REC.size - 32
MAX_ERRORS = 20


def genesis(seed: int) -> bytes:
    return hashlib.sha256(b"drlab-journal-genesis" + seed.to_bytes(8, "little")).digest()


def payload(seed: int, seq: int) -> bytes:
    return hashlib.shake_256(seed.to_bytes(8, "little") + seq.to_bytes(8, "little")).digest(
        PAYLOAD_SIZE
    )


def txn_records(seed: int, txn: int) -> int:
    """How many records transaction `txn` writes (1..MAX_TXN_RECORDS), derived from the seed."""
    digest = hashlib.sha256(seed.to_bytes(8, "little") + txn.to_bytes(8, "little")).digest()
    return 1 + digest[0] % MAX_TXN_RECORDS


def chain(previous: bytes, checksum: bytes) -> bytes:
    return hashlib.sha256(previous + checksum).digest()


def encode_record(seed: int, seq: int, txn: int, count: int, at: float, prev: bytes) -> bytes:
    body = _REC.pack(REC_MAGIC, VERSION, count, seq, txn, at, prev) + payload(seed, seq)
    return body + hashlib.sha256(body).digest()


@dataclass
class Superblock:
    generation: int
    committed_seq: int
    committed_txn: int
    head_chain: bytes
    ring_slots: int
    seed: int
    record_size: int = RECORD_SIZE

    def encode(self) -> bytes:
        fields_ = (
            SB_MAGIC,
            VERSION,
            0,
            self.generation,
            self.committed_seq,
            self.committed_txn,
            self.head_chain,
            self.ring_slots,
            self.record_size,
            self.seed,
        )
        digest = hashlib.sha256(_SB.pack(*fields_, b"")).digest()
        raw = _SB.pack(*fields_, digest)
        return raw + bytes(SECTOR - len(raw))

    @classmethod
    def decode(cls, raw: bytes) -> Superblock:
        values = _SB.unpack_from(raw)
        magic, version, _, gen, seq, txn, head, ring, rsize, seed, digest = values
        if magic != SB_MAGIC:
            raise ValueError("no superblock (bad magic)")
        if hashlib.sha256(_SB.pack(*values[:-1], b"")).digest() != digest:
            raise ValueError(f"superblock generation {gen}: checksum mismatch")
        if version != VERSION or rsize != RECORD_SIZE or ring < MIN_RING_SLOTS:
            raise ValueError(f"superblock generation {gen}: unsupported format")
        return cls(gen, seq, txn, head, ring, seed, rsize)

    @property
    def copy(self) -> int:
        return self.generation % 2


@dataclass
class CheckResult:
    ok: bool
    committed_seq: int = 0
    committed_txn: int = 0
    records_checked: int = 0
    generation: int = 0
    ring_slots: int = 0
    superblock_copy: str = ""
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def format_area(device, offset: int, ring_slots: int, seed: int) -> None:
    """A new, empty journal: both superblock copies say nothing is committed."""
    for generation in (0, 1):
        sb = Superblock(generation, 0, 0, genesis(seed), ring_slots, seed)
        device.write(offset + sb.copy * SUPERBLOCK_STRIDE, sb.encode())
    device.flush()


def read_superblock(device, offset: int) -> tuple[Superblock | None, list[str]]:
    """The newest valid superblock copy, and why the others are not valid."""
    found, problems = [], []
    for copy in (0, 1):
        raw = device.read(offset + copy * SUPERBLOCK_STRIDE, SECTOR)
        try:
            sb = Superblock.decode(raw)
            if sb.copy != copy:
                raise ValueError(f"superblock generation {sb.generation} in the wrong copy")
            found.append(sb)
        except ValueError as exc:
            problems.append(f"superblock copy {'AB'[copy]}: {exc}")
    if not found:
        return None, problems
    return max(found, key=lambda s: s.generation), problems


def is_formatted(device, offset: int) -> bool:
    return read_superblock(device, offset)[0] is not None


def check(device, offset: int) -> CheckResult:
    """Verify the journal in the area at `offset`: what `verify_disks` and boot recovery run."""
    sb, problems = read_superblock(device, offset)
    if sb is None:
        return CheckResult(False, errors=["no valid superblock: " + "; ".join(problems)])
    result = CheckResult(
        True,
        committed_seq=sb.committed_seq,
        committed_txn=sb.committed_txn,
        generation=sb.generation,
        ring_slots=sb.ring_slots,
        superblock_copy="AB"[sb.copy],
    )
    retained = sb.ring_slots - MAX_TXN_RECORDS
    first = max(1, sb.committed_seq - retained + 1)
    records = _read_records(device, offset, sb.ring_slots, first, sb.committed_seq)
    expect_prev = genesis(sb.seed) if first == 1 else None
    for seq, raw in records:
        problem, digest, prev = _check_record(raw, sb.seed, seq)
        if problem is None and expect_prev is not None and prev != expect_prev:
            problem = "chain broken (previous record differs)"
        if problem is not None:
            result.errors.append(f"record {seq}: {problem}")
            expect_prev = None
            if len(result.errors) >= MAX_ERRORS:
                result.errors.append("(further errors not listed)")
                break
        else:
            expect_prev = chain(prev, digest)
        result.records_checked += 1
    if not result.errors and expect_prev != sb.head_chain:
        result.errors.append(
            f"superblock generation {sb.generation}: chain of committed records does not "
            "match the superblock (records from another point in time)"
        )
    result.ok = not result.errors
    return result


def _read_records(device, offset, ring, first, last):
    """(seq, slot bytes) for seq first..last, read in at most two contiguous runs."""
    out, seq = [], first
    while seq <= last:
        slot = (seq - 1) % ring
        run = min(last - seq + 1, ring - slot)
        base = offset + AREA_HEADER + slot * RECORD_SIZE
        raw = device.read(base, run * RECORD_SIZE)
        for i in range(run):
            out.append((seq + i, raw[i * RECORD_SIZE : (i + 1) * RECORD_SIZE]))
        seq += run
    return out


def _check_record(raw: bytes, seed: int, seq: int):
    """(problem or None, checksum, previous chain) of one record slot."""
    digest = raw[-32:]
    if raw.count(0) == len(raw):
        return "missing (slot is empty)", digest, b""
    if hashlib.sha256(raw[:-32]).digest() != digest:
        return "checksum mismatch (damaged)", digest, b""
    magic, version, _count, rseq, _txn, _at, prev = _REC.unpack_from(raw)
    if magic != REC_MAGIC or version != VERSION:
        return "not a journal record", digest, prev
    if rseq != seq:
        return f"slot holds record {rseq} (lost or stale)", digest, prev
    if raw[_REC.size : _REC.size + PAYLOAD_SIZE] != payload(seed, seq):
        return "payload does not match the seed (another VM's data?)", digest, prev
    return None, digest, prev


class JournalApp:
    """The running application: commits transactions at `tps`, can be frozen and recovered."""

    def __init__(self, device, offset: int, clock=None):
        self.device = device
        self.offset = offset
        self.clock = clock
        self.state = "stopped"  # stopped | running | frozen | failed
        self.last_check: CheckResult | None = None
        self.commits = 0  # this boot
        self._sb: Superblock | None = None
        self._chain = b""
        self._txn_lock = threading.Lock()
        self._writable = threading.Event()
        self._writable.set()

    # -- boot ---------------------------------------------------------------------------------
    def recover(self) -> CheckResult:
        """Find the committed position (after a crash too) and verify what is committed."""
        result = check(self.device, self.offset)
        self.last_check = result
        sb, _ = read_superblock(self.device, self.offset)
        if not result.ok or sb is None:
            self.state = "failed"
            log.error("journaled application: check failed: %s", "; ".join(result.errors[:3]))
            return result
        self._sb = sb
        self._chain = sb.head_chain
        self.state = "running"
        log.info(
            "journaled application: recovered at seq %d (txn %d, %d records checked)",
            sb.committed_seq,
            sb.committed_txn,
            result.records_checked,
        )
        return result

    # -- transactions -------------------------------------------------------------------------
    def commit(self) -> int:
        """One transaction: records, flush, superblock, flush. Returns the committed seq."""
        sb = self._sb
        if sb is None:
            raise RuntimeError("the application has not recovered its journal")
        txn = sb.committed_txn + 1
        count = txn_records(sb.seed, txn)
        at = self.clock.time() if self.clock else time.time()
        records, prev = [], self._chain
        for i in range(count):
            seq = sb.committed_seq + 1 + i
            raw = encode_record(sb.seed, seq, txn, count, at, prev)
            prev = chain(prev, raw[-32:])
            records.append((seq, raw))
        for seq, run in _contiguous(records, sb.ring_slots):
            slot = (seq - 1) % sb.ring_slots
            self.device.write(self.offset + AREA_HEADER + slot * RECORD_SIZE, run)
        self.device.flush()
        new = Superblock(sb.generation + 1, records[-1][0], txn, prev, sb.ring_slots, sb.seed)
        self.device.write(self.offset + new.copy * SUPERBLOCK_STRIDE, new.encode())
        self.device.flush()
        self._sb, self._chain = new, prev
        self.commits += 1
        return new.committed_seq

    def run(self, tps: float, stop: threading.Event) -> None:
        """Commit at `tps` transactions per second until `stop`; pauses while frozen."""
        if tps <= 0 or self.state == "failed":
            return
        interval = 1.0 / tps
        due = time.monotonic()
        while not stop.is_set():
            delay = due - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
            if not self._writable.is_set():
                self._writable.wait(0.2)
                continue
            with self._txn_lock:
                if not self._writable.is_set() or stop.is_set():
                    continue
                try:
                    self.commit()
                except Exception:
                    log.exception("journaled application: commit failed; stopping")
                    self.state = "failed"
                    return
            due = max(due + interval, time.monotonic() - 1.0)  # no burst after a long pause

    # -- quiesce ------------------------------------------------------------------------------
    def freeze(self) -> None:
        """Finish the transaction in progress, flush, and hold new ones until thaw()."""
        self._writable.clear()
        with self._txn_lock:
            self.device.flush()
            if self.state == "running":
                self.state = "frozen"

    def thaw(self) -> None:
        if self.state == "frozen":
            self.state = "running"
        self._writable.set()

    def stop(self) -> None:
        """Clean stop: wait for the transaction in progress, then flush."""
        with self._txn_lock:
            self._writable.set()
            self.device.flush()
            if self.state in ("running", "frozen"):
                self.state = "stopped"

    def status(self) -> dict:
        sb = self._sb
        return {
            "state": self.state,
            "committed_seq": sb.committed_seq if sb else 0,
            "committed_txn": sb.committed_txn if sb else 0,
            "commits_this_boot": self.commits,
            "last_check": self.last_check.to_dict() if self.last_check else None,
        }


def _contiguous(records, ring):
    """Group consecutive records into runs that do not wrap around the ring."""
    run_seq, run = None, b""
    for seq, raw in records:
        if run and (seq - 1) % ring == 0:
            yield run_seq, run
            run_seq, run = None, b""
        if run_seq is None:
            run_seq = seq
        run += raw
    if run:
        yield run_seq, run
