"""The ledger: a book of transfers on a VM's own disk, the data that proves multi-VM consistency.

Two VMs of a lab form a pair (the topology's `workload.ledger`): the sender durably records
"sent transfer k (amount a)", then sends it; the receiver durably records "received transfer k
(amount a)", then acknowledges. This module owns the book on one VM's disk and the checks, per
VM and per pair; the running sender and receiver and the link between them are
`ledger_link.py`.

The ledger has an area of its own (`layout.plan_ledger_area`, recorded in the registry as
`ledger_area`), not records inside the journaled application: the journal's payload is derived
from its seed (that is how it detects another VM's data) and its ring forgets old records,
while the ledger must carry its own data and running totals that outlive its ring. The format
is the journal's machinery at sector size:

    +0      superblock copy A (one sector)
    +4096   superblock copy B
    +8192   ring of RING_SLOTS 512-byte record slots; transfer k is in slot (k-1) % ring

Transfer ids are contiguous on both sides (the sender numbers them, the receiver only takes the
next one), so record k of either book is transfer k, and what a book holds is 1..transfers.
A record holds its kind (sent/received), the transfer id, the amount, the running total after
it, the pair id, the lab time, the previous record's chain hash and a SHA-256 of all that. A
superblock holds the role, the generation, the committed transfer count and total, the
acknowledged position (sender: the receiver's position as last known when it committed), the
head chain hash, the ring geometry, the pair id and both VMs' names, with a checksum; generation
g goes into copy g % 2. A commit of 1..MAX_BATCH transfers is: records, flush, superblock,
flush; so a crash at any write leaves either the new committed position or the previous one,
whose retained window (the ring minus one batch) the new records did not touch.

The invariant (`check_pair`): at a consistent cut of the two VMs' disks, every transfer the
receiver recorded is recorded as sent (received <= sent: no money from nowhere), the amounts
agree transfer by transfer, and the sender's running total at the receiver's last transfer is
the receiver's total; in flight = sent - received. A receiver read later than its sender
breaks it as soon as the receiver got a transfer the sender's earlier state had not sent.

Not emulated: money with a currency or accounts, more than one peer per VM, transfers in both
directions, reading back transfers older than the ring's retained window (only the totals in
the superblock outlive it).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import struct
import threading
import time
from dataclasses import asdict, dataclass, field

from .app import _contiguous, chain
from .blockdev import SECTOR

log = logging.getLogger(__name__)

RECORD_SIZE = SECTOR  # one record per sector: a record write is never split across sectors
SUPERBLOCK_STRIDE = 4096
AREA_HEADER = 2 * SUPERBLOCK_STRIDE
AREA_LENGTH = 1 << 20
RING_SLOTS = (AREA_LENGTH - AREA_HEADER) // RECORD_SIZE  # 2032 transfers
MAX_BATCH = 64  # transfers per commit (the receiver catching up after a crash)
RETAINED = RING_SLOTS - MAX_BATCH  # records a check can rely on being there
MAX_IN_FLIGHT = 1024  # the sender stops making transfers beyond this many unacknowledged
MAX_AMOUNT = 100_000  # cents
MAX_NAME = 64  # VM names are at most 63 characters (topology)
MAX_ERRORS = 20
MAX_VIOLATIONS = 10

ROLES = {"sender": 1, "receiver": 2}
ROLE_NAMES = {v: k for k, v in ROLES.items()}

SB_MAGIC = b"DRLABLDG"
REC_MAGIC = b"LREC"
VERSION = 1
# magic, version, role, reserved, generation, transfers, total, acknowledged, head chain,
# ring slots, record size, pair id, this VM, peer VM, checksum
_SB = struct.Struct("<8sHBBQQQQ32sIIQ64s64s32s")
# magic, version, kind (role), reserved, transfer id, amount, running total, pair id, lab time,
# previous chain
_REC = struct.Struct("<4sHBBQQQQd32s")
_REC_PAD = RECORD_SIZE - _REC.size - 32


class LedgerError(Exception):
    """The book cannot do what was asked (damaged, not recovered, a transfer out of order)."""


def pair_id(sender: str, receiver: str) -> int:
    """The pair's identity: both books carry it, so another pair's book fails the check."""
    digest = hashlib.sha256(b"drlab-ledger\0" + sender.encode() + b"\0" + receiver.encode())
    return int.from_bytes(digest.digest()[:8], "little")


def amount_of(pair: int, transfer: int) -> int:
    """Transfer k's amount in cents, derived from the pair (deterministic, like the journal's
    payload, so a book holding another pair's transfers is caught)."""
    digest = hashlib.sha256(pair.to_bytes(8, "little") + transfer.to_bytes(8, "little")).digest()
    return 1 + int.from_bytes(digest[:4], "little") % MAX_AMOUNT


def genesis(pair: int, role: int) -> bytes:
    seed = b"drlab-ledger-genesis" + pair.to_bytes(8, "little") + bytes([role])
    return hashlib.sha256(seed).digest()


@dataclass(frozen=True)
class LedgerSettings:
    """The topology's `workload.ledger` as the guest receives it."""

    peer: str
    role: str
    tps: float = 1.0  # the sender's transfers per second (the receiver's is not used)

    @classmethod
    def from_dict(cls, data: dict | None) -> LedgerSettings | None:
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ValueError("ledger settings must be a mapping")
        unknown = set(data) - {"peer", "role", "tps"}
        if unknown:
            raise ValueError(f"unknown ledger settings: {', '.join(sorted(unknown))}")
        if "peer" not in data or "role" not in data:
            raise ValueError("ledger settings need a peer and a role")
        settings = cls(**data)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.role not in ROLES:
            raise ValueError("ledger role must be 'sender' or 'receiver'")
        if not isinstance(self.peer, str) or not 0 < len(self.peer.encode()) < MAX_NAME:
            raise ValueError(f"ledger peer must be a VM name of 1 to {MAX_NAME - 1} bytes")
        if not 0 <= float(self.tps) <= 100:
            raise ValueError("ledger tps must be between 0 and 100")

    def pair(self, vm_name: str) -> tuple[str, str]:
        """(sender, receiver) names of the pair `vm_name` belongs to."""
        return (vm_name, self.peer) if self.role == "sender" else (self.peer, vm_name)


def _name(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode(errors="replace")


def _pack_name(name: str) -> bytes:
    raw = name.encode()
    if len(raw) >= MAX_NAME:
        raise ValueError(f"VM name {name!r} is too long for a ledger (at most {MAX_NAME - 1})")
    return raw


@dataclass(frozen=True)
class Record:
    role: int
    transfer: int
    amount: int
    total: int  # running total after this transfer
    pair: int
    at: float
    prev: bytes

    def encode(self) -> bytes:
        body = _REC.pack(
            REC_MAGIC,
            VERSION,
            self.role,
            0,
            self.transfer,
            self.amount,
            self.total,
            self.pair,
            self.at,
            self.prev,
        )
        body += bytes(_REC_PAD)
        return body + hashlib.sha256(body).digest()

    @classmethod
    def decode(cls, raw: bytes) -> Record:
        """The record in a slot; ValueError says why the slot holds none."""
        if raw.count(0) == len(raw):
            raise ValueError("missing (slot is empty)")
        if hashlib.sha256(raw[:-32]).digest() != raw[-32:]:
            raise ValueError("checksum mismatch (damaged)")
        magic, version, role, _, transfer, amount, total, pair, at, prev = _REC.unpack_from(raw)
        if magic != REC_MAGIC or version != VERSION:
            raise ValueError("not a ledger record")
        return cls(role, transfer, amount, total, pair, at, prev)

    @property
    def checksum(self) -> bytes:
        return self.encode()[-32:]


@dataclass
class Superblock:
    role: int
    generation: int
    transfers: int
    total: int
    acknowledged: int
    head_chain: bytes
    pair: int
    vm: str
    peer: str
    ring_slots: int = RING_SLOTS
    record_size: int = RECORD_SIZE

    def _fields(self) -> tuple:
        return (
            SB_MAGIC,
            VERSION,
            self.role,
            0,
            self.generation,
            self.transfers,
            self.total,
            self.acknowledged,
            self.head_chain,
            self.ring_slots,
            self.record_size,
            self.pair,
            _pack_name(self.vm),
            _pack_name(self.peer),
        )

    def encode(self) -> bytes:
        digest = hashlib.sha256(_SB.pack(*self._fields(), b"")).digest()
        raw = _SB.pack(*self._fields(), digest)
        return raw + bytes(SECTOR - len(raw))

    @classmethod
    def decode(cls, raw: bytes) -> Superblock:
        values = _SB.unpack_from(raw)
        magic, version, role, _, gen, transfers, total, acked, head, ring, rsize, pair = values[:12]
        vm, peer, digest = values[12:]
        if magic != SB_MAGIC:
            raise ValueError("no ledger superblock (bad magic)")
        if hashlib.sha256(_SB.pack(*values[:-1], b"")).digest() != digest:
            raise ValueError(f"ledger superblock generation {gen}: checksum mismatch")
        if version != VERSION or rsize != RECORD_SIZE or ring <= MAX_BATCH or role not in (1, 2):
            raise ValueError(f"ledger superblock generation {gen}: unsupported format")
        return cls(role, gen, transfers, total, acked, head, pair, _name(vm), _name(peer), ring)

    @property
    def copy(self) -> int:
        return self.generation % 2

    @property
    def role_name(self) -> str:
        return ROLE_NAMES[self.role]


@dataclass
class LedgerCheck:
    """One VM's book as the check found it; `entries` (transfer -> (amount, running total)) are
    the retained records, for the pair check, and are left out of `to_dict`."""

    ok: bool
    role: str = ""
    vm: str = ""
    peer: str = ""
    pair_id: int = 0
    transfers: int = 0
    total: int = 0
    acknowledged: int = 0
    generation: int = 0
    records_checked: int = 0
    first_retained: int = 0
    superblock_copy: str = ""
    errors: list[str] = field(default_factory=list)
    entries: dict[int, tuple[int, int]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("entries")
        return data


def format_area(device, offset: int, role: str, vm: str, peer: str) -> None:
    """A new, empty book for `vm` in the pair with `peer`: nothing sent or received yet."""
    sender, receiver = (vm, peer) if role == "sender" else (peer, vm)
    pair, code = pair_id(sender, receiver), ROLES[role]
    for generation in (0, 1):
        sb = Superblock(code, generation, 0, 0, 0, genesis(pair, code), pair, vm, peer)
        device.write(offset + sb.copy * SUPERBLOCK_STRIDE, sb.encode())
    device.flush()


def read_superblock(device, offset: int) -> tuple[Superblock | None, list[str]]:
    """The newest valid superblock copy, and why the others are not valid."""
    found, problems = [], []
    for copy in (0, 1):
        try:
            sb = Superblock.decode(device.read(offset + copy * SUPERBLOCK_STRIDE, SECTOR))
            if sb.copy != copy:
                raise ValueError(f"ledger superblock generation {sb.generation} in the wrong copy")
            found.append(sb)
        except ValueError as exc:
            problems.append(f"ledger superblock copy {'AB'[copy]}: {exc}")
    if not found:
        return None, problems
    return max(found, key=lambda s: s.generation), problems


def read_records(device, offset: int, ring: int, first: int, last: int):
    """(transfer, slot bytes) for first..last, read in at most two contiguous runs."""
    out, k = [], first
    while k <= last:
        slot = (k - 1) % ring
        run = min(last - k + 1, ring - slot)
        raw = device.read(offset + AREA_HEADER + slot * RECORD_SIZE, run * RECORD_SIZE)
        out.extend((k + i, raw[i * RECORD_SIZE : (i + 1) * RECORD_SIZE]) for i in range(run))
        k += run
    return out


def check(device, offset: int) -> LedgerCheck:
    """Verify the book at `offset`: every retained committed record (checksum, id, kind, pair,
    amount, running total, chain) and the superblock's head and totals against them."""
    sb, problems = read_superblock(device, offset)
    if sb is None:
        return LedgerCheck(False, errors=["no valid ledger superblock: " + "; ".join(problems)])
    result = LedgerCheck(
        True,
        role=sb.role_name,
        vm=sb.vm,
        peer=sb.peer,
        pair_id=sb.pair,
        transfers=sb.transfers,
        total=sb.total,
        acknowledged=sb.acknowledged,
        generation=sb.generation,
        superblock_copy="AB"[sb.copy],
    )
    first = max(1, sb.transfers - (sb.ring_slots - MAX_BATCH) + 1)
    result.first_retained = first if sb.transfers else 0
    expect_prev = genesis(sb.pair, sb.role) if first == 1 else None
    expect_total = 0 if first == 1 else None
    for k, raw in read_records(device, offset, sb.ring_slots, first, sb.transfers):
        problem, rec = _check_record(raw, sb, k)
        if problem is None and expect_prev is not None and rec.prev != expect_prev:
            problem = "chain broken (previous record differs)"
        if problem is None and expect_total is not None and rec.total != expect_total + rec.amount:
            problem = f"running total {rec.total} does not follow {expect_total} + {rec.amount}"
        result.records_checked += 1
        if problem is not None:
            result.errors.append(f"transfer {k}: {problem}")
            expect_prev = expect_total = None
            if len(result.errors) >= MAX_ERRORS:
                result.errors.append("(further errors not listed)")
                break
            continue
        result.entries[k] = (rec.amount, rec.total)
        expect_prev, expect_total = chain(rec.prev, raw[-32:]), rec.total
    if not result.errors and sb.transfers:
        if expect_prev != sb.head_chain:
            result.errors.append(
                f"ledger superblock generation {sb.generation}: the chain of committed "
                "transfers does not match it (records from another point in time)"
            )
        elif expect_total != sb.total:
            result.errors.append(
                f"ledger superblock generation {sb.generation}: total {sb.total} is not the "
                f"last transfer's running total {expect_total}"
            )
    elif not result.errors and (sb.total or sb.head_chain != genesis(sb.pair, sb.role)):
        result.errors.append("an empty ledger with a total or a chain")
    result.ok = not result.errors
    return result


def _check_record(raw: bytes, sb: Superblock, k: int):
    """(problem or None, record) for slot bytes that should hold transfer k of book `sb`."""
    try:
        rec = Record.decode(raw)
    except ValueError as exc:
        return str(exc), None
    if rec.transfer != k:
        return f"slot holds transfer {rec.transfer} (lost or stale)", rec
    if rec.role != sb.role:
        return f"a {ROLE_NAMES.get(rec.role, '?')} record in a {sb.role_name}'s ledger", rec
    if rec.pair != sb.pair:
        return "a record of another pair", rec
    if rec.amount != amount_of(sb.pair, k):
        return "amount does not match the pair's transfer (another pair's data?)", rec
    return None, rec


def check_pair(sender: LedgerCheck, receiver: LedgerCheck) -> dict:
    """The pair's invariant on two books read at one instant (see the module docstring).

    {"ok", "sent", "received", "sent_total", "received_total", "in_flight",
     "in_flight_amount", "violations": [first transfer ids received but not sent, or whose
     amounts disagree], "errors": [...], "sender": {...}, "receiver": {...}}
    """
    result = {
        "ok": False,
        "sent": sender.transfers,
        "received": receiver.transfers,
        "sent_total": sender.total,
        "received_total": receiver.total,
        "in_flight": sender.transfers - receiver.transfers,
        "in_flight_amount": sender.total - receiver.total,
        "violations": [],
        "errors": [],
        "sender": sender.to_dict(),
        "receiver": receiver.to_dict(),
    }
    errors, violations = result["errors"], result["violations"]
    for side, book in (("sender", sender), ("receiver", receiver)):
        errors.extend(f"{side}: {e}" for e in book.errors)
        if book.ok and book.role != side:
            errors.append(f"{side}: this is the {book.role}'s ledger of {book.vm}")
    if errors:
        return result
    if sender.pair_id != receiver.pair_id:
        errors.append(
            f"not a pair: {sender.vm} sends to {sender.peer}, "
            f"{receiver.vm} receives from {receiver.peer}"
        )
        return result
    if receiver.transfers > sender.transfers:
        first = sender.transfers + 1
        last = min(receiver.transfers, first + MAX_VIOLATIONS - 1)
        violations.extend(range(first, last + 1))
        errors.append(
            f"transfer {first} was received but never sent: the receiver recorded "
            f"{receiver.transfers} transfers, the sender only {sender.transfers} (money from "
            "nowhere: the two disks are not from one instant)"
        )
    for k in sorted(set(sender.entries) & set(receiver.entries)):
        if sender.entries[k][0] != receiver.entries[k][0] and len(violations) < MAX_VIOLATIONS:
            violations.append(k)
            errors.append(f"transfer {k}: amounts disagree")
    if receiver.transfers <= sender.transfers:
        at = sender.entries.get(receiver.transfers, (0, 0))[1] if receiver.transfers else 0
        known = receiver.transfers == 0 or receiver.transfers in sender.entries
        if known and at != receiver.total:
            errors.append(
                f"balances do not add up: the sender's total at transfer {receiver.transfers} "
                f"is {at}, the receiver's {receiver.total}"
            )
        elif receiver.total > sender.total:
            errors.append("balances do not add up: more received than sent")
    result["ok"] = not errors
    return result


class Ledger:
    """One VM's book while its guest runs: recover, commit transfers, freeze for a quiesce."""

    def __init__(self, device, offset: int, clock=None):
        self.device = device
        self.offset = offset
        self.clock = clock
        self.state = "stopped"  # stopped | running | frozen | failed
        self.last_check: LedgerCheck | None = None
        self.commits = 0  # this boot
        self._sb: Superblock | None = None
        self._txn_lock = threading.Lock()
        self._writable = threading.Event()
        self._writable.set()

    # -- boot ---------------------------------------------------------------------------------
    def recover(self) -> LedgerCheck:
        """Find the committed position (after a crash too) and verify what is committed."""
        result = check(self.device, self.offset)
        self.last_check = result
        sb, _ = read_superblock(self.device, self.offset)
        if not result.ok or sb is None:
            self.state = "failed"
            log.error("ledger: check failed: %s", "; ".join(result.errors[:3]))
            return result
        self._sb = sb
        self.state = "running"
        log.info(
            "ledger (%s of %s): recovered at transfer %d, total %d",
            sb.role_name,
            sb.peer,
            sb.transfers,
            sb.total,
        )
        return result

    @property
    def superblock(self) -> Superblock:
        if self._sb is None:
            raise LedgerError("the ledger has not been recovered")
        return self._sb

    @property
    def transfers(self) -> int:
        return self._sb.transfers if self._sb else 0

    @property
    def first_retained(self) -> int:
        return max(1, self.transfers - RETAINED + 1)

    # -- transactions -------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, timeout: float):
        """Hold the book for one commit once it is writable; yields False if it stayed frozen
        (or failed) for `timeout` seconds. Commit only inside a block that yielded True."""
        if not self._writable.wait(timeout):
            yield False
            return
        with self._txn_lock:
            yield self._writable.is_set() and self.state == "running"

    def commit(self, entries: list[tuple[int, int]], acknowledged: int | None = None) -> int:
        """Record transfers (id, amount), which continue the book: records, flush, superblock,
        flush. Call inside `writing()`. Returns the committed transfer count."""
        sb = self.superblock
        if not 1 <= len(entries) <= MAX_BATCH:
            raise LedgerError(f"a commit records 1 to {MAX_BATCH} transfers")
        at = self.clock.time() if self.clock else time.time()
        prev, total, records = sb.head_chain, sb.total, []
        for i, (transfer, amount) in enumerate(entries):
            if transfer != sb.transfers + 1 + i:
                raise LedgerError(f"transfer {transfer} does not follow {sb.transfers + i}")
            total += amount
            raw = Record(sb.role, transfer, amount, total, sb.pair, at, prev).encode()
            prev = chain(prev, raw[-32:])
            records.append((transfer, raw))
        for first, run in _contiguous(records, sb.ring_slots):
            slot = (first - 1) % sb.ring_slots
            self.device.write(self.offset + AREA_HEADER + slot * RECORD_SIZE, run)
        self.device.flush()
        acked = sb.acknowledged if acknowledged is None else acknowledged
        new = Superblock(
            sb.role,
            sb.generation + 1,
            records[-1][0],
            total,
            acked,
            prev,
            sb.pair,
            sb.vm,
            sb.peer,
            sb.ring_slots,
        )
        self.device.write(self.offset + new.copy * SUPERBLOCK_STRIDE, new.encode())
        self.device.flush()
        self._sb = new
        self.commits += 1
        return new.transfers

    def read_entries(self, first: int, last: int) -> list[tuple[int, int]]:
        """Committed transfers first..last as (id, amount), read back from the disk (what the
        sender resends after a crash of either side)."""
        sb = self.superblock
        if first < self.first_retained or last > sb.transfers:
            raise LedgerError(
                f"transfers {first}..{last} are not in the retained ledger "
                f"({self.first_retained}..{sb.transfers})"
            )
        out = []
        for k, raw in read_records(self.device, self.offset, sb.ring_slots, first, last):
            problem, rec = _check_record(raw, sb, k)
            if problem is not None:
                raise LedgerError(f"transfer {k}: {problem}")
            out.append((k, rec.amount))
        return out

    # -- quiesce and stop ---------------------------------------------------------------------
    def freeze(self) -> None:
        """Finish the commit in progress, flush, and hold new ones until thaw()."""
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
        """Clean stop: wait for the commit in progress, then flush."""
        with self._txn_lock:
            self.device.flush()
            if self.state in ("running", "frozen"):
                self.state = "stopped"
        self._writable.set()

    def status(self) -> dict:
        sb = self._sb
        return {
            "book": self.state,
            "transfers": sb.transfers if sb else 0,
            "total": sb.total if sb else 0,
            "commits_this_boot": self.commits,
            "last_check": self.last_check.to_dict() if self.last_check else None,
        }
