"""The ledger pair at run time: the sender's transfers, the receiver, and the link between them.

The sender runs two threads. `run_transfers` makes transfer k = book.transfers + 1 every 1/tps
seconds and commits it to its own book, so it is durable before it leaves the VM.
`run_shipper` keeps a connection to the receiver: it says hello (the receiver answers its
position R) and sends the transfers after R in batches, read back from its own disk, until
the receiver acknowledges them. What is not acknowledged stays in the sender's book, and the
hello after a reconnect says where to resume, so a crash of either side loses nothing; the
receiver takes each transfer id once, so nothing is doubled. The sender stops making transfers
while MAX_IN_FLIGHT are unacknowledged (its ring must keep them for a resend) and records the
receiver's last known position in its superblock with each commit, so it keeps that bound
across its own crash.

The receiver is `handle(message) -> reply`, with no I/O: it records the next transfers in id
order in one commit per message (skips ids it has, stops at a gap), then answers its position.
`LedgerSocketServer` serves it on a Unix socket, `<state_dir>/run/ledger/<receiver>.sock` (a
hashed name in a short directory when that path is too long for a socket).

Protocol: one JSON object per line each way, many requests per connection.

    {"op": "hello", "pair": id, "sender": name, "receiver": name}  -> {"ok": true, "received": R}
    {"op": "transfers", "transfers": [[id, amount], ...]}          -> {"ok": true, "received": R}
    a failure: {"ok": false, "kind": "bad_request" | "refused" | "conflict" | "busy" |
                "not_implemented", "error": "...", "received": R}

Not emulated: a network between the VMs (the link is a socket on the lab machine, not routed
through the lab's link proxies), authentication of the sender, several senders per receiver.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .channel import short_socket_path
from .ledger import (
    MAX_BATCH,
    MAX_IN_FLIGHT,
    Ledger,
    LedgerError,
    LedgerSettings,
    amount_of,
    pair_id,
)

log = logging.getLogger(__name__)

MAX_LINE = 1 << 20
LINK_TIMEOUT = 5.0  # a receiver that does not answer (stopped, hung) is reconnected to
RETRY_SECONDS = 0.3
BUSY_WAIT = 2.0  # how long a receiver's handler waits for a quiesce to end before "busy"


class LinkError(Exception):
    """The link to the receiver failed or the receiver refused (the sender reconnects)."""


def ledger_socket_path(state_dir: str, receiver: str, network: str = "") -> str:
    """Where the receiver of a pair listens; both sides compute it from the lab's state dir
    and the network they are plugged into ("" on-premises; an Azure VNet otherwise), so a
    test failover's pair talks within its isolated VNet and never to production."""
    base = Path(state_dir) / "run" / "ledger" if state_dir else Path(f"/tmp/drlab-{os.getuid()}")
    if network:
        base = base / re.sub(r"[^A-Za-z0-9._-]", "_", network)
    path = os.path.abspath(base / f"{receiver}.sock")
    return short_socket_path(path, "ledger", path)


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a message is a JSON object")
    return message


# -- receiver -----------------------------------------------------------------------------------
class _Refusal(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class LedgerReceiver:
    """The receiving VM's side: records transfers in order, idempotently by id."""

    def __init__(self, book: Ledger, vm_name: str, sender: str):
        self.book = book
        self.vm_name = vm_name
        self.sender = sender
        self.pair = pair_id(sender, vm_name)
        self.hellos = 0
        self.duplicates = 0  # transfers received again (resent) and not recorded twice
        self._ops = {"hello": self._hello, "transfers": self._transfers}

    def handle_line(self, line: bytes) -> bytes:
        try:
            message = decode(line)
        except ValueError as exc:
            return encode(self._failure("bad_request", f"not a message: {exc}"))
        return encode(self.handle(message))

    def handle(self, message: dict) -> dict:
        op = message.get("op")
        handler = self._ops.get(op) if isinstance(op, str) else None
        if handler is None:
            return self._failure("not_implemented", f"operation not implemented: {op}")
        try:
            return handler(message)
        except _Refusal as exc:
            return self._failure(exc.kind, str(exc))

    def _hello(self, m: dict) -> dict:
        if m.get("pair") != self.pair or m.get("receiver") != self.vm_name:
            raise _Refusal(
                "refused",
                f"{self.vm_name} receives from {self.sender}, not from {m.get('sender')!r}",
            )
        self.hellos += 1
        return {"ok": True, "received": self.book.transfers}

    def _transfers(self, m: dict) -> dict:
        items = m.get("transfers")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
            raise _Refusal("bad_request", f"transfers is a list of 1 to {MAX_BATCH} [id, amount]")
        entries = []
        for item in items:
            ok = isinstance(item, list) and len(item) == 2
            if not ok or not all(type(v) is int and v > 0 for v in item):
                raise _Refusal("bad_request", "a transfer is [id, amount], positive integers")
            if item[1] != amount_of(self.pair, item[0]):
                raise _Refusal("conflict", f"transfer {item[0]}: not this pair's amount")
            entries.append((item[0], item[1]))
        with self.book.writing(BUSY_WAIT) as writable:
            if not writable:
                raise _Refusal("busy", f"the ledger is {self.book.state}; send again later")
            have, new = self.book.transfers, []
            for transfer, amount in entries:
                if transfer <= have:
                    self.duplicates += 1
                elif transfer == have + 1 + len(new):
                    new.append((transfer, amount))
                else:
                    break  # a gap: the answer tells the sender where to resume
            if new:
                self.book.commit(new)
        return {"ok": True, "received": self.book.transfers}

    def _failure(self, kind: str, message: str) -> dict:
        return {"ok": False, "kind": kind, "error": message, "received": self.book.transfers}

    def status(self) -> dict:
        return {
            **self.book.status(),
            "state": self.book.state,
            "hellos": self.hellos,
            "duplicates": self.duplicates,
        }


# -- sender -------------------------------------------------------------------------------------
class LedgerSender:
    """The sending VM's side: paced transfers into its own book, shipped until acknowledged.

    `connect()` returns a link with `request(dict) -> dict` and `close()` (a `UnixLink`, or
    an in-memory one in tests); it raises OSError or LinkError when the receiver is not there.
    """

    def __init__(self, book: Ledger, vm_name: str, receiver: str, tps: float, connect):
        self.book = book
        self.vm_name = vm_name
        self.receiver = receiver
        self.tps = tps
        self.connect = connect
        self.pair = pair_id(vm_name, receiver)
        self.acknowledged = book.superblock.acknowledged  # a lower bound until the next hello
        self.highest_sent = self.acknowledged
        self.problem: str | None = None  # "diverged" | "failed": the threads have stopped
        self.blocked = False
        self.connected = False
        self.connections = 0
        self.resent = 0
        self.last_error: str | None = None
        self._cond = threading.Condition()

    # -- making transfers ---------------------------------------------------------------------
    def run_transfers(self, stop: threading.Event) -> None:
        """Commit one transfer every 1/tps seconds until `stop`; holds while frozen or while
        MAX_IN_FLIGHT transfers wait for an acknowledgement."""
        if self.tps <= 0:
            return
        interval = 1.0 / self.tps
        due = time.monotonic()
        while not stop.is_set() and self.problem is None:
            delay = due - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
            with self._cond:
                self.blocked = self.book.transfers - self.acknowledged >= MAX_IN_FLIGHT
                if self.blocked:
                    self._cond.wait(0.5)
                    continue
            if not self.make_transfer():
                continue
            due = max(due + interval, time.monotonic() - 1.0)  # no burst after a long pause

    def make_transfer(self) -> bool:
        """Record the next transfer durably; False if the book is frozen (try again)."""
        with self.book.writing(0.2) as writable:
            if not writable or self.problem is not None:
                return False
            k = self.book.transfers + 1
            try:
                self.book.commit([(k, amount_of(self.pair, k))], acknowledged=self.acknowledged)
            except Exception as exc:
                log.exception("ledger: commit failed; the sender stops")
                self._stop_for("failed", f"commit failed: {exc}")
                return False
        with self._cond:
            self._cond.notify_all()
        return True

    # -- shipping -----------------------------------------------------------------------------
    def run_shipper(self, stop: threading.Event) -> None:
        """Keep the receiver up to date until `stop`, reconnecting after any failure."""
        link = None
        while not stop.is_set() and self.problem is None:
            try:
                if link is None:
                    link = self.connect()
                    self._hello(link)
                self.ship(link)
            except (OSError, ValueError, LinkError, LedgerError) as exc:
                if isinstance(exc, LedgerError):
                    self._stop_for("failed", f"cannot read its own ledger back: {exc}")
                self._disconnect(link, exc)
                link = None
                stop.wait(RETRY_SECONDS)
        self._disconnect(link, None)

    def _hello(self, link) -> None:
        hello = {"op": "hello", "pair": self.pair, "sender": self.vm_name}
        reply = link.request(hello | {"receiver": self.receiver})
        if not reply.get("ok"):
            raise LinkError(f"the receiver refused: {reply.get('error')}")
        self._acknowledge(reply.get("received"))
        log.info("ledger: connected to %s (it has %d transfers)", self.receiver, self.acknowledged)
        self.connected = True
        self.connections += 1

    def ship(self, link) -> int:
        """Send the next batch after the acknowledged position, if any; returns how many."""
        with self._cond:
            if self.book.transfers <= self.acknowledged:
                self._cond.wait(0.5)
                return 0
            first = self.acknowledged + 1
        last = min(self.book.transfers, first + MAX_BATCH - 1)
        entries = self.book.read_entries(first, last)
        reply = link.request({"op": "transfers", "transfers": [list(e) for e in entries]})
        if not reply.get("ok"):
            if reply.get("kind") == "busy":  # the receiver is quiesced: same batch again soon
                time.sleep(0.05)
                return 0
            raise LinkError(f"the receiver refused transfers {first}..{last}: {reply.get('error')}")
        if first <= self.highest_sent:
            self.resent += min(last, self.highest_sent) - first + 1
        self.highest_sent = max(self.highest_sent, last)
        self._acknowledge(reply.get("received"))
        return len(entries)

    def _acknowledge(self, received) -> None:
        if type(received) is not int or received < 0:
            raise LinkError(f"the receiver answered a position of {received!r}")
        have = self.book.transfers
        if received > have:
            self._stop_for(
                "diverged",
                f"{self.receiver} has {received} transfers, this sender's ledger only {have}: "
                "the sender's disks are older than the receiver's",
            )
            raise LinkError(self.last_error)
        if received + 1 < self.book.first_retained:
            self._stop_for(
                "diverged",
                f"{self.receiver} is at transfer {received}, older than this ledger keeps",
            )
            raise LinkError(self.last_error)
        with self._cond:
            if received < self.acknowledged:
                log.warning(
                    "ledger: %s went back from %d to %d transfers; resending",
                    self.receiver,
                    self.acknowledged,
                    received,
                )
            self.acknowledged = received
            self._cond.notify_all()

    def _disconnect(self, link, exc) -> None:
        if link is not None:
            with contextlib.suppress(Exception):
                link.close()
        if exc is not None:
            message = f"{type(exc).__name__}: {exc}"
            if self.connected or message != self.last_error:
                log.info("ledger: link to %s: %s", self.receiver, message)
            self.last_error = message
        self.connected = False

    def _stop_for(self, problem: str, message: str) -> None:
        if self.problem is None:
            log.error("ledger: %s: %s", problem, message)
        self.problem, self.last_error = problem, message
        with self._cond:
            self._cond.notify_all()

    def status(self) -> dict:
        if self.problem:
            state = self.problem
        elif self.book.state != "running":
            state = self.book.state
        else:
            state = "blocked" if self.blocked else "running"
        return {
            **self.book.status(),
            "state": state,
            "acknowledged": self.acknowledged,
            "in_flight": self.book.transfers - self.acknowledged,
            "connected": self.connected,
            "connections": self.connections,
            "resent": self.resent,
            "last_error": self.last_error,
        }


# -- the link -----------------------------------------------------------------------------------
class UnixLink:
    """The sender's connection to the receiver's socket: one request, one answer, in turn."""

    def __init__(self, path: str, timeout: float = LINK_TIMEOUT):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._rfile = sock.makefile("rb")

    def request(self, message: dict) -> dict:
        self._sock.sendall(encode(message))
        line = self._rfile.readline(MAX_LINE + 1)
        if not line.endswith(b"\n"):
            raise LinkError("the receiver closed the link")
        return decode(line)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._rfile.close()
        with contextlib.suppress(OSError):
            self._sock.close()


class MemoryLink:
    """A link straight to a receiver's `handle_line` in this process (tests: no socket)."""

    def __init__(self, handle_line: Callable[[bytes], bytes]):
        self._handle_line = handle_line
        self.closed = False

    def request(self, message: dict) -> dict:
        if self.closed:
            raise LinkError("the link is closed")
        return decode(self._handle_line(encode(message)))

    def close(self) -> None:
        self.closed = True


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        server = self.server
        server.track(self.connection, True)  # type: ignore[attr-defined]
        try:
            while True:
                line = self.rfile.readline(MAX_LINE + 1)
                if not line:
                    return
                self.wfile.write(server.handle_line(line))  # type: ignore[attr-defined]
        except OSError:
            return
        finally:
            server.track(self.connection, False)  # type: ignore[attr-defined]


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, path, handle_line):
        super().__init__(path, _Handler)
        self.handle_line = handle_line
        self.connections: set = set()
        self._lock = threading.Lock()

    def track(self, conn, active: bool) -> None:
        with self._lock:
            (self.connections.add if active else self.connections.discard)(conn)


class LedgerSocketServer:
    """The receiver's socket, served in threads; `stop()` also drops open connections (as the
    receiver's process going away would)."""

    def __init__(self, path: str, handle_line: Callable[[bytes], bytes]):
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # left behind by a receiver that was powered off hard
        old = os.umask(0o177)
        try:
            self._server = _Server(path, handle_line)
        finally:
            os.umask(old)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="ledger-receiver",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()
        log.info("ledger: receiving on %s", self.path)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._server._lock:
            for conn in list(self._server.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


# -- one guest's ledger -------------------------------------------------------------------------
class LedgerNode:
    """The ledger of one running guest: its book and, by role, the sender's two threads or the
    receiver's socket. `error` says why it does not run (a failed check, a book that belongs to
    another pair than the topology names)."""

    def __init__(
        self,
        settings: LedgerSettings,
        vm_name: str,
        device,
        offset: int,
        clock=None,
        state_dir: str = "",
        network: str = "",
    ):
        self.settings = settings
        self.vm_name = vm_name
        self.book = Ledger(device, offset, clock)
        _sender, receiver = settings.pair(vm_name)
        self.path = ledger_socket_path(state_dir, receiver, network)
        self.sender: LedgerSender | None = None
        self.receiver: LedgerReceiver | None = None
        self.server: LedgerSocketServer | None = None
        self.error: str | None = None

    def start(self, spawn: Callable, stop: threading.Event) -> None:
        """Recover the book, then run its side; `spawn(name, target, *args)` starts a thread."""
        s = self.settings
        check = self.book.recover()
        if not check.ok:
            self.error = "ledger: check failed: " + "; ".join(check.errors[:3])
            return
        sb = self.book.superblock
        if (sb.role_name, sb.vm, sb.peer) != (s.role, self.vm_name, s.peer):
            self.error = (
                f"ledger: the book on disk is the {sb.role_name}'s of {sb.vm} with {sb.peer}, "
                f"not the {s.role}'s of {self.vm_name} with {s.peer}"
            )
            self.book.state = "failed"
            return
        if s.role == "sender":
            self.sender = LedgerSender(
                self.book, self.vm_name, s.peer, s.tps, lambda: UnixLink(self.path)
            )
            spawn("ledger-transfers", self.sender.run_transfers, stop)
            spawn("ledger-shipper", self.sender.run_shipper, stop)
        else:
            self.receiver = LedgerReceiver(self.book, self.vm_name, s.peer)
            self.server = LedgerSocketServer(self.path, self.receiver.handle_line)
            self.server.start()

    def freeze(self) -> None:
        self.book.freeze()

    def thaw(self) -> None:
        self.book.thaw()

    def stop(self, clean: bool = True) -> None:
        """Stop receiving; a clean stop also finishes and flushes the book (the sender's
        threads stop with the guest's `stopping` event)."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if clean:
            self.book.stop()

    def status(self) -> dict:
        side = self.sender or self.receiver
        status = side.status() if side else {**self.book.status(), "state": "failed"}
        return {
            "role": self.settings.role,
            "peer": self.settings.peer,
            "socket": self.path,
            "error": self.error,
            **status,
        }
