"""The link proxies' engine: every link's TCP forwarding, on one asyncio loop in a thread.

Each accepted connection opens one to the upstream service and runs two streams
(upstream: client to server; downstream: back). A stream is a reader that stamps each chunk
with its arrival time into a byte-bounded queue, and a writer that applies the stream's
toxics (`models.Effects`) and writes on. Latency is counted from a chunk's arrival, so a
delayed link still carries its full rate (as Toxiproxy's chain does); when the queue is full
the reader stops reading and TCP pushes back on the sender, so memory is bounded by
`max_buffer_bytes` per stream and `max_connections` per link.

A link taken down closes its listening socket and every connection (Toxiproxy stops the
proxy); its port is held by a bound, non-listening socket, so new connections are refused
(TCP RST on the SYN) and the port cannot be taken by another process before the link is up
again.

The HTTP API runs in other threads: it calls `LinkService` methods, which run on the loop
(`call`), so the models are only ever touched by the loop's thread.

Not emulated: packet loss, reordering or corruption below TCP (the kernel's TCP on loopback
carries the bytes); half-open connections; IPv6.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import errors
from .models import (
    DOWNSTREAM,
    NO_EFFECTS,
    STREAMS,
    UPSTREAM,
    ConnectionTimer,
    Effects,
    Links,
    Pacer,
    Proxy,
    Toxic,
    connection_timers,
    piece_size,
    release_time,
    slice_sizes,
)

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
CONNECT_TIMEOUT = 5.0
_EOF = None


@dataclass(frozen=True)
class Limits:
    max_connections: int = 64  # per link
    max_buffer_bytes: int = 1024 * 1024  # per connection and stream, besides socket buffers


def _linger_zero(sock: socket.socket | None) -> None:
    """Close with RST instead of FIN: what a reset peer does."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class ByteQueue:
    """Chunks between a stream's reader and writer, bounded by bytes (one chunk always fits)."""

    def __init__(self, cap: int):
        self.cap = cap
        self.size = 0
        self.items: collections.deque = collections.deque()
        self._changed = asyncio.Event()

    async def put(self, item) -> None:
        n = len(item[1]) if item is not _EOF else 0
        while self.items and self.size + n > self.cap:
            self._changed.clear()
            await self._changed.wait()
        self.items.append(item)
        self.size += n
        self._changed.set()

    async def get(self):
        while not self.items:
            self._changed.clear()
            await self._changed.wait()
        item = self.items.popleft()
        if item is not _EOF:
            self.size -= len(item[1])
        self._changed.set()
        return item


class _Closed(Exception):
    """The connection is closing: a stream's writer stops."""


class Stream:
    """One direction of one connection, toxics applied between reader and writer."""

    def __init__(self, conn: Connection, direction: str, reader, writer):
        self.conn = conn
        self.direction = direction
        self.reader = reader
        self.writer = writer
        self.queue = ByteQueue(conn.runner.limits.max_buffer_bytes)
        self.delivered = 0
        # The link's, shared by its connections: a bandwidth cap is the link's capacity.
        self.pacer = conn.runner.pacers[direction]
        self.released = 0.0  # when the previous delayed chunk went
        self.limit_base: dict[int, int] = {}  # limit_data toxic uid -> delivered when it applied

    async def read_loop(self) -> None:
        try:
            while True:
                data = await self.reader.read(CHUNK)
                if not data:
                    break
                await self.queue.put((time.monotonic(), data))
        except (ConnectionError, OSError):
            self.conn.close(None)  # the peer reset: so does the whole connection
            return
        await self.queue.put(_EOF)

    async def write_loop(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                if item is _EOF:
                    await self._pass_close()
                    return
                await self._deliver(*item)
        except (ConnectionError, OSError):
            self.conn.close(None)
        except _Closed:
            pass

    async def _pass_close(self) -> None:
        effects = self.conn.effects(self.direction)
        if effects.slow_close_ms:
            await asyncio.sleep(effects.slow_close_ms / 1000.0)
        self.conn.stream_ended(self)

    def sent_since(self, uid: int) -> int:
        base = self.limit_base.setdefault(uid, self.delivered)
        return self.delivered - base

    async def _deliver(self, arrival: float, data: bytes) -> None:
        runner = self.conn.runner
        while True:
            effects = self.conn.effects(self.direction)
            if effects.passthrough:
                await self._write(data)
                return
            if effects.hold:
                # A timeout toxic: nothing passes; the queue fills and TCP pushes back.
                await runner.toxics_changed()
                continue
            if effects.latencies:
                release = release_time(arrival, effects.delay(self.conn.rng), self.released)
                wait = release - time.monotonic()
                if wait > 0 and await runner.toxics_changed(wait):
                    continue  # the toxics changed while the chunk waited: apply the new ones
                self.released = release
            break
        allowed = effects.allowed(len(data), self.sent_since)
        if allowed < len(data):
            data = data[:allowed]
        pieces, delay_us = [data], 0
        if effects.slicer and data:
            average, variation, delay_us = effects.slicer
            pieces, offset = [], 0
            for size in slice_sizes(len(data), average, variation, self.conn.rng):
                pieces.append(data[offset : offset + size])
                offset += size
        for i, piece in enumerate(pieces):
            if i and delay_us:
                await asyncio.sleep(delay_us / 1e6)
            await self._paced_write(piece)
        if effects.limits and effects.limit_reached(self.sent_since):
            self.conn.close(f"limit_data reached on the {self.direction} stream")
            raise _Closed

    async def _paced_write(self, data: bytes) -> None:
        offset = 0
        while offset < len(data):
            rate = self.conn.effects(self.direction).rate
            if rate is None:
                await self._write(data[offset:])
                return
            piece = data[offset : offset + piece_size(rate)]
            wait = self.pacer.wait(len(piece), rate)
            if wait > 0:
                await asyncio.sleep(wait)
            await self._write(piece)
            offset += len(piece)

    async def _write(self, data: bytes) -> None:
        if self.conn.closing:
            raise _Closed
        if not data:
            return
        self.writer.write(data)
        await self.writer.drain()
        self.delivered += len(data)
        counters = self.conn.runner.proxy.counters
        if self.direction == UPSTREAM:
            counters.bytes_upstream += len(data)
        else:
            counters.bytes_downstream += len(data)


class Connection:
    """A client's connection through a link, and the one it opened to the upstream service."""

    def __init__(self, runner: ProxyRunner, client_reader, client_writer):
        self.runner = runner
        self.client_reader = client_reader
        self.client_writer = client_writer
        self.upstream_writer = None
        self.streams: dict[str, Stream] = {}
        self.rng = runner.rng
        self.applies: dict[int, bool] = {}  # toxic uid -> this connection's toxicity draw
        self.timers: dict[int, tuple[ConnectionTimer, asyncio.TimerHandle]] = {}
        self.closing = False
        self.ended = 0  # streams that passed a clean EOF on
        self.done = asyncio.Event()
        peer = client_writer.get_extra_info("peername")
        self.label = f"{peer[0]}:{peer[1]}" if peer else "?"

    def active(self, direction: str) -> list[Toxic]:
        chosen = []
        for toxic in self.runner.proxy.toxics:
            if toxic.stream != direction:
                continue
            if toxic.uid not in self.applies:
                self.applies[toxic.uid] = toxic.applies(self.rng)
            if self.applies[toxic.uid]:
                chosen.append(toxic)
        return chosen

    def effects(self, direction: str) -> Effects:
        if not self.runner.proxy.toxics:  # the common case, once per chunk: keep it cheap
            return NO_EFFECTS
        return Effects.of(self.active(direction))

    async def run(self) -> None:
        proxy = self.runner.proxy
        try:
            upstream_reader, self.upstream_writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", proxy.upstream_port, limit=CHUNK),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError) as exc:
            proxy.counters.upstream_failures += 1
            log.warning("%s: %s did not accept %s: %s", proxy.name, proxy.to, self.label, exc)
            self.close(None)
            return
        if self.closing:  # the link went down while connecting
            self.upstream_writer.close()
            return
        self.streams = {
            UPSTREAM: Stream(self, UPSTREAM, self.client_reader, self.upstream_writer),
            DOWNSTREAM: Stream(self, DOWNSTREAM, upstream_reader, self.client_writer),
        }
        self.arm_timers()
        tasks = []
        for stream in self.streams.values():
            tasks.append(asyncio.ensure_future(stream.read_loop()))
            tasks.append(asyncio.ensure_future(stream.write_loop()))
        try:
            await self.done.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- toxics that end a connection ---------------------------------------------------------
    def arm_timers(self) -> None:
        """Arm the timeout/reset_peer timers of toxics that apply now; disarm removed ones,
        re-arm (from now) those whose timeout was changed."""
        wanted: dict[int, ConnectionTimer] = {}
        for direction in STREAMS:
            for timer in connection_timers(self.active(direction)):
                wanted[timer.uid] = timer
        for uid, (timer, handle) in list(self.timers.items()):
            if wanted.get(uid) != timer:
                handle.cancel()
                del self.timers[uid]
        loop = asyncio.get_running_loop()
        for uid, timer in wanted.items():
            if uid not in self.timers:
                self.timers[uid] = (timer, loop.call_later(timer.seconds, self._fire, timer))

    def _fire(self, timer: ConnectionTimer) -> None:
        if timer.action == "reset":
            self.reset(timer.stream)
        else:
            self.close("timeout toxic")

    def stream_ended(self, stream: Stream) -> None:
        """A clean EOF on one stream is passed on (half close); when both ended, done."""
        self.ended += 1
        with contextlib.suppress(OSError, RuntimeError):
            if stream.writer.can_write_eof():
                stream.writer.write_eof()
        if self.ended >= 2:
            self.close(None)

    def close(self, why: str | None) -> None:
        """FIN both ways, after what was already written is flushed."""
        if self.closing:
            return
        if why:
            self.runner.proxy.counters.connections_cut += 1
            log.info("%s: closing %s (%s)", self.runner.proxy.name, self.label, why)
        self._end()
        for writer in (self.client_writer, self.upstream_writer):
            if writer is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    writer.close()

    def reset(self, stream: str = DOWNSTREAM) -> None:
        """TCP RST towards where the stream flows (the client for downstream), FIN the other."""
        if self.closing:
            return
        self.runner.proxy.counters.connections_cut += 1
        log.info("%s: resetting %s (reset_peer, %s)", self.runner.proxy.name, self.label, stream)
        target = self.client_writer if stream == DOWNSTREAM else self.upstream_writer
        self._end()
        for writer in (self.client_writer, self.upstream_writer):
            if writer is None:
                continue
            with contextlib.suppress(OSError, RuntimeError):
                if writer is target:
                    _linger_zero(writer.get_extra_info("socket"))
                    writer.transport.abort()
                else:
                    writer.close()

    def abort(self) -> None:
        """The service stops: drop everything now."""
        self._end()
        for writer in (self.client_writer, self.upstream_writer):
            if writer is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    writer.transport.abort()

    def _end(self) -> None:
        self.closing = True
        for _timer, handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        self.done.set()


class ProxyRunner:
    """One link: its listening socket, its connections, its toxics' effect on them."""

    def __init__(self, proxy: Proxy, sock: socket.socket, limits: Limits, rng: random.Random):
        self.proxy = proxy
        self.sock = sock  # listening while enabled; bound only (holding the port) while down
        self.limits = limits
        self.rng = rng
        self.server: asyncio.base_events.Server | None = None
        self.connections: set[Connection] = set()
        self.pacers = {direction: Pacer(time.monotonic) for direction in STREAMS}
        self._changed = asyncio.Event()

    async def start(self) -> None:
        self.sock.setblocking(False)
        self.server = await asyncio.start_server(self._accept, sock=self.sock, limit=CHUNK)
        self.proxy.enabled = True

    async def _accept(self, reader, writer) -> None:
        proxy = self.proxy
        if len(self.connections) >= self.limits.max_connections:
            proxy.counters.refused_over_cap += 1
            log.warning("%s: %d connections open, refusing one", proxy.name, len(self.connections))
            _linger_zero(writer.get_extra_info("socket"))
            writer.transport.abort()
            return
        conn = Connection(self, reader, writer)
        self.connections.add(conn)
        proxy.counters.connections_total += 1
        proxy.counters.connections_active = len(self.connections)
        try:
            await conn.run()
        finally:
            conn.close(None)
            self.connections.discard(conn)
            proxy.counters.connections_active = len(self.connections)

    def buffered(self) -> int:
        """Bytes held between readers and writers now (socket buffers not counted)."""
        return sum(s.queue.size for c in self.connections for s in c.streams.values())

    # -- toxics -------------------------------------------------------------------------------
    async def toxics_changed(self, timeout: float | None = None) -> bool:
        """Wait until the toxics change (True) or `timeout` seconds pass (False)."""
        event = self._changed
        if timeout is None:
            await event.wait()
            return True
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def notify(self) -> None:
        """The toxics changed: wake every waiting stream, re-arm connection timers."""
        self._changed.set()
        self._changed = asyncio.Event()
        for conn in list(self.connections):
            if not conn.closing and conn.streams:
                conn.arm_timers()

    # -- down and up --------------------------------------------------------------------------
    async def disable(self) -> None:
        if not self.proxy.enabled:
            return
        port = self.proxy.listen_port
        self.server.close()  # closes the listening socket at once
        self.server = None
        for conn in list(self.connections):
            conn.close("link down")
        # Hold the port: bound, not listening, so a SYN gets RST (connection refused) and
        # no other process takes the port before the link is up again.
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind(("127.0.0.1", port))
        except OSError as exc:
            holder.close()
            holder = None
            log.error("%s: could not hold port %d while down: %s", self.proxy.name, port, exc)
        self.sock = holder
        self.proxy.enabled = False
        log.info("%s: down", self.proxy.name)

    async def enable(self) -> None:
        if self.proxy.enabled:
            return
        if self.sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", self.proxy.listen_port))
            except OSError as exc:
                sock.close()
                raise errors.ProxyStartFailed(
                    f"127.0.0.1:{self.proxy.listen_port} is taken: {exc}"
                ) from None
            self.sock = sock
        self.sock.listen(128)
        await self.start()
        log.info("%s: up", self.proxy.name)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for conn in list(self.connections):
            conn.abort()
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()


class LinkService:
    """Every link of the lab: the engine thread and the operations the HTTP API calls."""

    def __init__(
        self,
        links: Links,
        sockets: dict[str, socket.socket],
        limits: Limits = Limits(),
        seed: int | None = None,
    ):
        self.links = links
        self.limits = limits
        self.sockets = sockets
        self.rng = random.Random(seed)
        self.loop = asyncio.new_event_loop()
        self.runners: dict[str, ProxyRunner] = {}
        self.thread = threading.Thread(target=self._run, name="links", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> LinkService:
        self.thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start_all())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._stop_all())
        self.loop.close()

    async def _start_all(self) -> None:
        for proxy in self.links:
            runner = ProxyRunner(proxy, self.sockets[proxy.name], self.limits, self.rng)
            await runner.start()
            self.runners[proxy.name] = runner
            log.info("%s: %s -> %s (%s)", proxy.name, proxy.listen, proxy.upstream, proxy.to)

    async def _stop_all(self) -> None:
        for runner in self.runners.values():
            await runner.stop()
        # Aborted connections end their own tasks; cancel only what is left after a moment
        # (a cancelled accept handler would be reported by asyncio as an error).
        tasks = [t for t in asyncio.all_tasks(self.loop) if t is not asyncio.current_task()]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=2.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)

    def call(self, fn: Callable, *args):
        """Run `fn(*args)` (a function or a coroutine function) on the loop; its result."""

        async def run():
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    # -- operations (on the loop) -------------------------------------------------------------
    def proxies(self) -> dict:
        return self.call(lambda: {p.name: p.to_json() for p in self.links})

    def proxy(self, name: str) -> dict:
        return self.call(lambda: self.links.get(name).to_json())

    def update_proxy(self, name: str, body) -> dict:
        async def update():
            proxy = self.links.get(name)
            enabled = proxy.update(body)
            runner = self.runners[name]
            await (runner.enable() if enabled else runner.disable())
            return proxy.to_json()

        return self.call(update)

    def toxics(self, name: str) -> list:
        return self.call(lambda: [t.to_json() for t in self.links.get(name).toxics])

    def toxic(self, name: str, toxic: str) -> dict:
        return self.call(lambda: self.links.get(name).toxic(toxic).to_json())

    def _changing(self, name: str, change: Callable):
        def run():
            proxy = self.links.get(name)
            result = change(proxy)
            self.runners[name].notify()
            return result

        return self.call(run)

    def add_toxic(self, name: str, body) -> dict:
        return self._changing(name, lambda p: p.add_toxic(body).to_json())

    def update_toxic(self, name: str, toxic: str, body) -> dict:
        return self._changing(name, lambda p: p.update_toxic(toxic, body).to_json())

    def remove_toxic(self, name: str, toxic: str) -> None:
        self._changing(name, lambda p: p.remove_toxic(toxic))

    def reset(self) -> None:
        """Toxiproxy's `POST /reset`: every link enabled, every toxic removed."""

        async def reset():
            for proxy in self.links:
                runner = self.runners[proxy.name]
                await runner.enable()
                proxy.toxics.clear()
                runner.notify()

        self.call(reset)

    def state(self) -> dict:
        def state():
            return {
                "limits": {
                    "max_connections": self.limits.max_connections,
                    "max_buffer_bytes": self.limits.max_buffer_bytes,
                },
                "proxies": {
                    p.name: {**p.state(), "buffered_bytes": self.runners[p.name].buffered()}
                    for p in self.links
                },
            }

        return self.call(state)
