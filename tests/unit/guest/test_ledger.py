"""The ledger: its records, crash at every write, the receiver's protocol, a sender and a
receiver wired in memory, and the pair's invariant at consistent and at independent cuts."""

from __future__ import annotations

import threading

import pytest
from pydantic import ValidationError

from fakes.guest import ledger
from fakes.guest.blockdev import MemoryDevice
from fakes.guest.layout import Area, plan_app_area, plan_ledger_area, workload_areas
from fakes.guest.ledger_link import LedgerReceiver, LedgerSender, LinkError, MemoryLink
from fakes.guest.offline import verify_ledger_devices
from fakes.guest.registry import read_registry
from lab.topology import WorkloadSpec
from tests.helpers import wait_for

from .test_app import CrashingDevice, clone

MiB = 1 << 20
OFFSET = 1 * MiB
SENDER, RECEIVER = "lin-pay-01", "lin-bank-01"
PAIR = ledger.pair_id(SENDER, RECEIVER)


def book_device(role: str) -> MemoryDevice:
    dev = MemoryDevice(3 * MiB)
    vm, peer = (SENDER, RECEIVER) if role == "sender" else (RECEIVER, SENDER)
    ledger.format_area(dev, OFFSET, role, vm, peer)
    return dev


def open_book(dev) -> ledger.Ledger:
    book = ledger.Ledger(dev, OFFSET)
    assert book.recover().ok, book.last_check.errors
    return book


def transfers(first: int, last: int) -> list[tuple[int, int]]:
    return [(k, ledger.amount_of(PAIR, k)) for k in range(first, last + 1)]


def commit(book, entries, acknowledged=None):
    with book.writing(1) as writable:
        assert writable
        return book.commit(entries, acknowledged)


def fill(book, count: int, batch: int = ledger.MAX_BATCH) -> None:
    while book.transfers < count:
        first = book.transfers + 1
        commit(book, transfers(first, min(count, first + batch - 1)))


def slot_offset(k: int) -> int:
    return OFFSET + ledger.AREA_HEADER + ((k - 1) % ledger.RING_SLOTS) * ledger.RECORD_SIZE


# -- the book -----------------------------------------------------------------------------------
def test_records_and_superblocks_round_trip():
    record = ledger.Record(1, 7, 1234, 99_000, PAIR, 12.5, bytes(range(32)))
    raw = record.encode()
    assert len(raw) == ledger.RECORD_SIZE
    assert ledger.Record.decode(raw) == record
    sb = ledger.Superblock(2, 9, 7, 99_000, 5, b"\x01" * 32, PAIR, RECEIVER, SENDER)
    assert ledger.Superblock.decode(sb.encode()) == sb
    damaged = bytearray(raw)
    damaged[40] ^= 1
    with pytest.raises(ValueError, match="checksum"):
        ledger.Record.decode(bytes(damaged))
    with pytest.raises(ValueError, match="empty"):
        ledger.Record.decode(bytes(ledger.RECORD_SIZE))


def test_an_empty_book_checks_out_and_names_the_pair():
    result = ledger.check(book_device("receiver"), OFFSET)
    assert result.ok, result.errors
    assert (result.role, result.vm, result.peer) == ("receiver", RECEIVER, SENDER)
    assert result.pair_id == PAIR and result.transfers == 0 and result.total == 0


def test_commit_recover_read_back():
    dev = book_device("sender")
    book = open_book(dev)
    assert commit(book, transfers(1, 1), acknowledged=0) == 1
    assert commit(book, transfers(2, 5), acknowledged=1) == 5
    result = ledger.check(dev, OFFSET)
    assert result.ok, result.errors
    expected_total = sum(a for _, a in transfers(1, 5))
    assert (result.transfers, result.total, result.acknowledged) == (5, expected_total, 1)
    assert result.records_checked == 5 and result.entries[5] == (
        ledger.amount_of(PAIR, 5),
        expected_total,
    )
    again = open_book(dev)  # recovery finds the committed position and continues from it
    assert again.read_entries(2, 4) == transfers(2, 4)
    assert commit(again, transfers(6, 6)) == 6
    with pytest.raises(ledger.LedgerError, match="does not follow"):
        commit(again, transfers(8, 8))
    with pytest.raises(ledger.LedgerError, match="not in the retained"):
        again.read_entries(5, 7)


def test_the_ring_wraps_and_the_totals_outlive_it():
    dev = book_device("receiver")
    book = open_book(dev)
    fill(book, ledger.RING_SLOTS + 300)
    result = ledger.check(dev, OFFSET)
    assert result.ok, result.errors
    assert result.records_checked == ledger.RETAINED
    assert result.first_retained == result.transfers - ledger.RETAINED + 1
    assert result.total == sum(a for _, a in transfers(1, result.transfers))
    with pytest.raises(ledger.LedgerError):
        book.read_entries(1, 5)  # overwritten by the ring


@pytest.mark.parametrize("torn", [0, 100, 300])
def test_a_crash_at_any_write_of_any_commit_leaves_a_consistent_book(torn):
    base = book_device("receiver")
    fill(open_book(base), ledger.RING_SLOTS - 5)  # the crashes also hit the ring's wrap
    before = ledger.check(base, OFFSET).transfers
    batches = [1, 3, ledger.MAX_BATCH, 2, 1]
    counter = CrashingDevice(clone(base), budget=10**9)
    book = open_book(counter)
    for size in batches:
        commit(book, transfers(book.transfers + 1, book.transfers + size))
    total_writes = counter.writes
    assert total_writes >= 2 * len(batches)
    for budget in range(total_writes + 1):
        disk = clone(base)
        crashing = open_book(CrashingDevice(disk, budget, torn))
        for size in batches:
            commit(crashing, transfers(crashing.transfers + 1, crashing.transfers + size))
        result = ledger.check(disk, OFFSET)
        assert result.ok, (budget, result.errors)
        assert before <= result.transfers <= crashing.transfers
        assert result.total == sum(a for _, a in transfers(1, result.transfers))
        recovered = open_book(disk)  # after the crash the book recovers and goes on
        commit(recovered, transfers(recovered.transfers + 1, recovered.transfers + 2))
        assert ledger.check(disk, OFFSET).ok, budget


def test_damage_and_other_points_in_time_fail_the_check():
    dev = book_device("sender")
    book = open_book(dev)
    fill(book, 10, batch=3)
    older = clone(dev)
    fill(book, 20, batch=3)

    flipped = clone(dev)
    raw = bytearray(flipped.read(slot_offset(4), 512))
    raw[60] ^= 0x10
    flipped.write(slot_offset(4), bytes(raw))
    assert any("transfer 4: checksum" in e for e in ledger.check(flipped, OFFSET).errors)

    mixed = clone(older)  # newer superblocks over older records: committed ones missing
    mixed.write(OFFSET, dev.read(OFFSET, ledger.AREA_HEADER))
    result = ledger.check(mixed, OFFSET)
    assert not result.ok and any("missing" in e for e in result.errors)

    other = book_device("sender")  # a book of another pair under this superblock
    other_book = open_book(other)
    other_book._sb.pair = ledger.pair_id("someone", "else")
    other_book._sb.head_chain = ledger.genesis(other_book._sb.pair, 1)
    commit(other_book, [(1, ledger.amount_of(other_book._sb.pair, 1))])
    forged = clone(dev)
    forged.write(slot_offset(1), other.read(slot_offset(1), 512))
    assert any("another pair" in e for e in ledger.check(forged, OFFSET).errors)


# -- the receiver's protocol --------------------------------------------------------------------
def receiver() -> LedgerReceiver:
    return LedgerReceiver(open_book(book_device("receiver")), RECEIVER, SENDER)


def test_the_receiver_records_in_order_once_and_refuses_strangers():
    rx = receiver()
    hello = {"op": "hello", "pair": PAIR, "sender": SENDER, "receiver": RECEIVER}
    assert rx.handle(hello) == {"ok": True, "received": 0}
    stranger = {**hello, "pair": ledger.pair_id("intruder", RECEIVER), "sender": "intruder"}
    assert rx.handle(stranger)["kind"] == "refused"

    def send(first, last):
        return rx.handle(
            {"op": "transfers", "transfers": [list(t) for t in transfers(first, last)]}
        )

    assert send(1, 4) == {"ok": True, "received": 4}
    assert send(3, 6) == {"ok": True, "received": 6}  # 3 and 4 again: recorded once
    assert rx.duplicates == 2
    assert send(9, 10) == {"ok": True, "received": 6}  # a gap: the answer says where to resume
    wrong = rx.handle({"op": "transfers", "transfers": [[7, ledger.amount_of(PAIR, 7) + 1]]})
    assert wrong["kind"] == "conflict" and wrong["received"] == 6
    assert rx.handle({"op": "transfers", "transfers": [[7, "x"]]})["kind"] == "bad_request"
    assert rx.handle({"op": "transfers", "transfers": []})["kind"] == "bad_request"
    assert rx.handle({"op": "withdraw"})["kind"] == "not_implemented"
    assert b'"bad_request"' in rx.handle_line(b"{not json\n")
    result = ledger.check(rx.book.device, OFFSET)
    assert result.ok and result.transfers == 6 and rx.book.commits == 2


def test_a_frozen_receiver_answers_busy_and_records_nothing(monkeypatch):
    from fakes.guest import ledger_link

    monkeypatch.setattr(ledger_link, "BUSY_WAIT", 0.05)
    rx = receiver()
    rx.book.freeze()
    answer = rx.handle({"op": "transfers", "transfers": [list(t) for t in transfers(1, 1)]})
    assert answer["kind"] == "busy" and rx.book.transfers == 0
    rx.book.thaw()
    assert rx.handle({"op": "transfers", "transfers": [list(transfers(1, 1)[0])]})["ok"]


# -- a pair in memory ---------------------------------------------------------------------------
class Wire:
    """The link between an in-memory sender and receiver; the receiver can be taken away."""

    def __init__(self, rx: LedgerReceiver | None):
        self.rx = rx

    def connect(self):
        if self.rx is None:
            raise ConnectionRefusedError("the receiver is down")
        rx = self.rx

        def handle_line(line: bytes) -> bytes:
            if self.rx is not rx:  # that receiver crashed: its connections die with it
                raise LinkError("connection reset")
            return rx.handle_line(line)

        return MemoryLink(handle_line)


class Pair:
    def __init__(self, tps=400.0):
        self.tx_dev, self.rx_dev = book_device("sender"), book_device("receiver")
        self.wire = Wire(LedgerReceiver(open_book(self.rx_dev), RECEIVER, SENDER))
        self.sender = LedgerSender(open_book(self.tx_dev), SENDER, RECEIVER, tps, self.wire.connect)
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self.sender.run_transfers, args=(self.stop,), daemon=True),
            threading.Thread(target=self.sender.run_shipper, args=(self.stop,), daemon=True),
        ]
        for t in self.threads:
            t.start()

    @property
    def received(self) -> int:
        return self.wire.rx.book.transfers if self.wire.rx else 0

    def crash_receiver(self) -> None:
        self.wire.rx = None

    def restart_receiver(self) -> None:
        self.wire.rx = LedgerReceiver(open_book(self.rx_dev), RECEIVER, SENDER)

    def cut(self, receiver_later: bool = False):
        """Copies of both books: held at one instant, or the receiver's taken later."""
        tx_book, rx_book = self.sender.book, self.wire.rx.book
        tx_book.freeze()
        if receiver_later:
            tx_copy = clone(self.tx_dev)
            tx_book.thaw()
            wait_for(lambda: rx_book.transfers > tx_copy_transfers(tx_copy) + 2, 10)
            rx_book.freeze()
            rx_copy = clone(self.rx_dev)
            rx_book.thaw()
            return tx_copy, rx_copy
        rx_book.freeze()
        tx_copy, rx_copy = clone(self.tx_dev), clone(self.rx_dev)
        rx_book.thaw()
        tx_book.thaw()
        return tx_copy, rx_copy

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)


def tx_copy_transfers(dev) -> int:
    return ledger.check(dev, OFFSET).transfers


def check_pair(tx_dev, rx_dev) -> dict:
    return ledger.check_pair(ledger.check(tx_dev, OFFSET), ledger.check(rx_dev, OFFSET))


@pytest.fixture
def pair():
    made = []

    def make(**kwargs) -> Pair:
        made.append(Pair(**kwargs))
        return made[-1]

    yield make
    for p in made:
        p.close()


def test_transfers_flow_and_survive_a_receiver_crash(pair):
    p = pair()
    wait_for(lambda: p.received >= 30, 10, message="transfers received")
    p.crash_receiver()
    crashed_at = clone(p.rx_dev)  # what the receiver's disk held when it went away
    wait_for(lambda: p.sender.status()["in_flight"] >= 20, 10, message="transfers in flight")
    assert not p.sender.connected
    p.restart_receiver()
    wait_for(lambda: p.sender.status()["in_flight"] < 5, 10, message="the sender to resend")
    assert p.sender.connections >= 2
    p.sender.book.freeze()
    wait_for(lambda: p.received == p.sender.book.transfers, 10, message="the last ack")
    result = check_pair(p.tx_dev, p.rx_dev)
    p.sender.book.thaw()
    assert result["ok"], result["errors"]
    assert result["in_flight"] == 0 and result["sent_total"] == result["received_total"]
    assert ledger.check(crashed_at, OFFSET).ok


def test_consistent_cuts_pass_and_a_later_receiver_fails_naming_the_transfer(pair):
    p = pair()
    wait_for(lambda: p.received >= 10, 10, message="transfers received")
    for _ in range(5):
        result = check_pair(*p.cut())
        assert result["ok"], result["errors"]
        assert result["sent"] >= result["received"] > 0
        assert result["in_flight"] == result["sent"] - result["received"] >= 0
        assert result["in_flight_amount"] == result["sent_total"] - result["received_total"]
    tx_copy, rx_copy = p.cut(receiver_later=True)
    result = check_pair(tx_copy, rx_copy)
    sent = ledger.check(tx_copy, OFFSET).transfers
    assert not result["ok"]
    assert result["violations"][0] == sent + 1
    assert result["received"] > sent
    assert f"transfer {sent + 1} was received but never sent" in result["errors"][0]


def test_a_sender_older_than_its_receiver_stops_as_diverged(pair):
    p = pair()
    wait_for(lambda: p.received >= 10, 10, message="transfers received")
    p.close()
    # the sender's disk goes back in time (restored from an older copy); the receiver's does not
    older = book_device("sender")
    fill_sender = open_book(older)
    commit(fill_sender, transfers(1, 3))
    sender = LedgerSender(open_book(older), SENDER, RECEIVER, 100.0, p.wire.connect)
    stop = threading.Event()
    shipper = threading.Thread(target=sender.run_shipper, args=(stop,), daemon=True)
    shipper.start()
    try:
        wait_for(lambda: sender.problem == "diverged", 10, message="divergence noticed")
        assert "older than the receiver's" in sender.status()["last_error"]
    finally:
        stop.set()
        shipper.join(10)


# -- settings, layout, topology -----------------------------------------------------------------
def test_settings_and_topology():
    s = ledger.LedgerSettings.from_dict({"peer": RECEIVER, "role": "sender", "tps": 2})
    assert s.pair(SENDER) == (SENDER, RECEIVER)
    assert ledger.LedgerSettings.from_dict(None) is None
    for bad in (
        {"peer": "x", "role": "auditor"},
        {"peer": "x"},
        {"peer": "x", "role": "sender", "tps": 500},
        {"peer": "", "role": "sender"},
        {"peer": "x", "role": "sender", "fee": 1},
    ):
        with pytest.raises(ValueError):
            ledger.LedgerSettings.from_dict(bad)
    spec = WorkloadSpec(ledger={"peer": "lin-bank-01", "role": "receiver"})
    assert spec.model_dump()["ledger"] == {"peer": "lin-bank-01", "role": "receiver", "tps": 1.0}
    assert WorkloadSpec().model_dump()["ledger"] is None
    with pytest.raises(ValidationError):
        WorkloadSpec(ledger={"peer": "lin-bank-01", "role": "broker"})


def test_the_ledger_area_follows_the_application_and_the_writes_avoid_it():
    sizes = [16 * MiB, 32 * MiB]
    app = plan_app_area(sizes)
    area = plan_ledger_area(sizes, app)
    assert area.disk == app.disk and area.offset >= app.end and area.offset % MiB == 0
    areas = workload_areas(sizes, app, area)
    assert all(not (a.disk == area.disk and a.offset < area.end) for a in areas)
    assert plan_ledger_area([MiB + MiB // 2], None) is None
    assert plan_ledger_area([4 * MiB], None) == Area(0, MiB, ledger.AREA_LENGTH)


# -- two in-memory guests -----------------------------------------------------------------------
def test_two_guests_in_memory_with_a_ledger_each(machine, tmp_path):
    tx = machine(ledger={"peer": "vm-1", "role": "sender", "tps": 100}, quiesce=True)
    rx = machine()  # provisioned without a ledger: its first boot with one makes the area
    rx.config.workload["ledger"] = {"peer": "vm-0", "role": "receiver"}
    for m in (tx, rx):
        m.config.state_dir = str(tmp_path)  # the receiver's socket lives in the lab's state dir
    assert read_registry(rx.devices[0]).ledger_area is None
    receiver_os, sender_os = rx.boot(), tx.boot()
    assert read_registry(rx.devices[0]).ledger_area is not None
    wait_for(lambda: receiver_os.status()["ledger"]["transfers"] >= 10, 10, message="transfers")
    assert sender_os.status()["ledger"]["connected"]
    assert receiver_os.load_errors == [] and sender_os.load_errors == []
    with sender_os.quiesce(timeout=10):  # a quiesce holds the ledger with the application
        assert sender_os.status()["ledger"]["state"] == "frozen"
    assert sender_os.status()["ledger"]["state"] in ("running", "blocked")

    sender_os.ledger.freeze()
    receiver_os.ledger.freeze()
    tx_copy, rx_copy = [clone(d) for d in tx.devices], [clone(d) for d in rx.devices]
    receiver_os.ledger.thaw()
    sender_os.ledger.thaw()
    result = verify_ledger_devices(tx_copy, rx_copy)
    assert result["ok"], result["errors"]
    assert result["received"] >= 10 and result["sender"]["vm"] == "vm-0"

    sender_os.shutdown()
    receiver_os.shutdown()
    result = verify_ledger_devices(tx.devices, rx.devices)
    assert result["ok"], result["errors"]
    wrong_way = verify_ledger_devices(rx.devices, tx.devices)
    assert not wrong_way["ok"] and "receiver's ledger" in wrong_way["errors"][0]
