"""Link proxies and toxics as data, in Toxiproxy's model, without sockets or clocks of their own.

A `Proxy` is one of the lab's network links: a TCP forwarder from a listening port to an
upstream service, enabled or down, with an ordered list of `Toxic`s. A toxic acts on one
stream (`upstream`: client to server, `downstream`: server to client, the default) of the
connections it applies to (`toxicity`: the chance, drawn once per connection, that it does).

The arithmetic the engine needs is here, with the clock and the random source passed in:
`Effects` (what the toxics of one stream do to a chunk: hold it, delay it, cap its rate,
truncate it, slice it), `Pacer` (bandwidth), `slice_sizes` (slicer), `connection_timers`
(timeout and reset_peer close a connection after a delay).

Units are Toxiproxy's: milliseconds, KB/s with KB = 1000 bytes, slicer delay in microseconds.

Not emulated: proxies created, deleted or re-pointed at run time (the lab's links are declared
in the topology and their ports chosen by the launcher); HTTP-level toxics; `slow_open`,
`limit_time`, `packet_loss` and other toxics of Toxiproxy forks.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from . import errors

UPSTREAM = "upstream"
DOWNSTREAM = "downstream"
STREAMS = (UPSTREAM, DOWNSTREAM)

# Attributes of each toxic type and their defaults (Go's zero values, as Toxiproxy decodes).
TOXIC_ATTRIBUTES: dict[str, dict[str, int]] = {
    "latency": {"latency": 0, "jitter": 0},  # ms, ± ms
    "bandwidth": {"rate": 0},  # KB/s; 0 = no cap
    "slow_close": {"delay": 0},  # ms before a close is passed on
    "timeout": {"timeout": 0},  # ms until the connection is closed; 0 = never, data held
    "reset_peer": {"timeout": 0},  # ms until the connection is reset (TCP RST)
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},  # bytes, bytes, µs
    "limit_data": {"bytes": 0},  # bytes, then the connection is closed
}

_uids = itertools.count(1)


@dataclass(frozen=True)
class Toxic:
    name: str
    type: str
    stream: str = DOWNSTREAM
    toxicity: float = 1.0
    attributes: dict = field(default_factory=dict)
    # Identity of this toxic as added: connections remember their toxicity draw and their
    # limit_data count by it, so re-adding a toxic of the same name starts afresh.
    uid: int = field(default_factory=lambda: next(_uids), compare=False)

    def to_json(self) -> dict:
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }

    def applies(self, rng: random.Random) -> bool:
        """Drawn once per connection, as Toxiproxy runs a noop in its place otherwise."""
        return self.toxicity >= 1.0 or rng.random() < self.toxicity

    def __getitem__(self, attribute: str) -> int:
        return self.attributes[attribute]


def _toxicity(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.BadRequestBody("toxicity must be a number between 0 and 1")
    if not 0.0 <= value <= 1.0:
        raise errors.BadRequestBody("toxicity must be between 0 and 1")
    return float(value)


def _attributes(type_: str, given, base: dict) -> dict:
    if given is None:
        return dict(base)
    if not isinstance(given, dict):
        raise errors.BadRequestBody("attributes must be a JSON object")
    known = TOXIC_ATTRIBUTES[type_]
    values = dict(base)
    for key, value in given.items():
        if key not in known:
            raise errors.BadRequestBody(
                f"unknown attribute {key!r} for a {type_} toxic (known: {', '.join(known)})"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise errors.BadRequestBody(f"{key} must be a non-negative integer, not {value!r}")
        values[key] = value
    if (
        type_ == "slicer"
        and values["average_size"]
        and (values["size_variation"] >= values["average_size"])
    ):
        raise errors.BadRequestBody("size_variation must be smaller than average_size")
    return values


def parse_toxic(body) -> Toxic:
    """A toxic from a `POST /proxies/{p}/toxics` body, with Toxiproxy's defaults and checks."""
    if not isinstance(body, dict):
        raise errors.BadRequestBody("the body must be a JSON object")
    stream = body.get("stream") or DOWNSTREAM
    if stream not in STREAMS:
        raise errors.InvalidStream()
    type_ = body.get("type")
    if not isinstance(type_, str) or type_ not in TOXIC_ATTRIBUTES:
        raise errors.InvalidToxicType()
    name = body.get("name") or f"{type_}_{stream}"
    if not isinstance(name, str):
        raise errors.BadRequestBody("name must be a string")
    toxicity = _toxicity(body.get("toxicity", 1.0))
    attributes = _attributes(type_, body.get("attributes"), TOXIC_ATTRIBUTES[type_])
    return Toxic(name, type_, stream, toxicity, attributes)


def updated_toxic(toxic: Toxic, body) -> Toxic:
    """`POST|PATCH /proxies/{p}/toxics/{t}`: attributes and toxicity change, the rest stays.

    A changed toxicity is a new draw on every connection (a new uid), as Toxiproxy restarts
    the toxic on each link.
    """
    if not isinstance(body, dict):
        raise errors.BadRequestBody("the body must be a JSON object")
    attributes = _attributes(toxic.type, body.get("attributes"), toxic.attributes)
    toxicity = _toxicity(body.get("toxicity", toxic.toxicity))
    if toxicity != toxic.toxicity:
        return Toxic(toxic.name, toxic.type, toxic.stream, toxicity, attributes)
    return replace(toxic, attributes=attributes, uid=toxic.uid)


# -- proxies --------------------------------------------------------------------------------
@dataclass
class LinkCounters:
    """What crossed a link since the lab started (never reset: byte counts are history)."""

    bytes_upstream: int = 0  # delivered to the upstream service
    bytes_downstream: int = 0  # delivered back to clients
    connections_total: int = 0
    connections_active: int = 0
    refused_over_cap: int = 0  # accepted and reset at once: max_connections reached
    upstream_failures: int = 0  # the upstream service did not accept
    connections_cut: int = 0  # closed or reset by a toxic (timeout, reset_peer, limit_data) or down

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Proxy:
    """One lab link: `from_` (whose traffic crosses it) to the service `to`."""

    name: str
    from_: str
    to: str
    listen_port: int
    upstream_port: int
    enabled: bool = True
    toxics: list[Toxic] = field(default_factory=list)
    counters: LinkCounters = field(default_factory=LinkCounters)

    @property
    def listen(self) -> str:
        return f"127.0.0.1:{self.listen_port}"

    @property
    def upstream(self) -> str:
        return f"127.0.0.1:{self.upstream_port}"

    def to_json(self) -> dict:
        """Toxiproxy's shape of a proxy (with its toxics)."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.toxics],
        }

    def state(self) -> dict:
        """The lab's view: Toxiproxy's shape plus where the link runs and what crossed it."""
        return {
            **self.to_json(),
            "from": self.from_,
            "to": self.to,
            "url": f"https://{self.listen}",
            **self.counters.to_json(),
        }

    # -- toxics -------------------------------------------------------------------------------
    def toxic(self, name: str) -> Toxic:
        for t in self.toxics:
            if t.name == name:
                return t
        raise errors.ToxicNotFound()

    def add_toxic(self, body) -> Toxic:
        toxic = parse_toxic(body)
        if any(t.name == toxic.name for t in self.toxics):
            raise errors.ToxicAlreadyExists()
        self.toxics.append(toxic)
        return toxic

    def update_toxic(self, name: str, body) -> Toxic:
        old = self.toxic(name)
        new = updated_toxic(old, body)
        self.toxics[self.toxics.index(old)] = new
        return new

    def remove_toxic(self, name: str) -> None:
        self.toxics.remove(self.toxic(name))

    def update(self, body) -> bool:
        """`POST|PATCH /proxies/{p}`: only `enabled` may change; returns the wanted state."""
        if not isinstance(body, dict):
            raise errors.BadRequestBody("the body must be a JSON object")
        for key, current in (("listen", self.listen), ("upstream", self.upstream)):
            if key in body and body[key] != current:
                raise errors.NotImplementedInLab(
                    f"ProxyUpdate of {key} (the lab's links are declared in the topology and "
                    f"their ports chosen by the launcher)"
                )
        enabled = body.get("enabled", self.enabled)
        if not isinstance(enabled, bool):
            raise errors.BadRequestBody("enabled must be true or false")
        return enabled

    def stream_toxics(self, stream: str) -> list[Toxic]:
        return [t for t in self.toxics if t.stream == stream]


class Links:
    """Every link proxy of the lab, by name."""

    def __init__(self, proxies: list[Proxy]):
        self.proxies = {p.name: p for p in proxies}

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise errors.ProxyNotFound() from None

    def __iter__(self):
        return iter(self.proxies.values())


# -- what toxics do: arithmetic, no I/O -----------------------------------------------------
@dataclass(frozen=True)
class Effects:
    """What the active toxics of one stream of one connection do to the next chunk."""

    hold: bool = False  # a timeout toxic: nothing passes until it is removed
    latencies: tuple[tuple[int, int], ...] = ()  # (latency ms, jitter ms) per latency toxic
    rate: int | None = None  # bytes per second: the lowest bandwidth cap
    limits: tuple[tuple[int, int], ...] = ()  # (toxic uid, bytes) per limit_data toxic
    slicer: tuple[int, int, int] | None = None  # average_size, size_variation, delay µs
    slow_close_ms: int = 0

    @classmethod
    def of(cls, toxics: list[Toxic]) -> Effects:
        hold, latencies, rates, limits, slicer, slow_close = False, [], [], [], None, 0
        for t in toxics:
            if t.type == "timeout":
                hold = True
            elif t.type == "latency":
                latencies.append((t["latency"], t["jitter"]))
            elif t.type == "bandwidth" and t["rate"] > 0:
                rates.append(t["rate"] * 1000)
            elif t.type == "limit_data":
                limits.append((t.uid, t["bytes"]))
            elif t.type == "slicer" and t["average_size"] > 0:
                slicer = (t["average_size"], t["size_variation"], t["delay"])
            elif t.type == "slow_close":
                slow_close = max(slow_close, t["delay"])
        return cls(
            hold, tuple(latencies), min(rates, default=None), tuple(limits), slicer, slow_close
        )

    @property
    def passthrough(self) -> bool:
        return self == NO_EFFECTS

    def delay(self, rng: random.Random) -> float:
        """Seconds a chunk waits after it arrived: each latency ± its jitter, never negative."""
        total = 0.0
        for latency, jitter in self.latencies:
            total += latency + (rng.uniform(-jitter, jitter) if jitter else 0.0)
        return max(0.0, total) / 1000.0

    def allowed(self, size: int, sent_since: Callable[[int], int]) -> int:
        """How many of `size` bytes may pass before a limit_data toxic closes the connection;
        `sent_since(uid)` is what this stream delivered since that toxic applied."""
        allowed = size
        for uid, limit in self.limits:
            allowed = min(allowed, max(0, limit - sent_since(uid)))
        return allowed

    def limit_reached(self, sent_since: Callable[[int], int]) -> bool:
        return any(sent_since(uid) >= limit for uid, limit in self.limits)


NO_EFFECTS = Effects()


def release_time(arrival: float, delay: float, previous: float) -> float:
    """When a delayed chunk may go: its own delay, never before the chunk ahead of it
    (jitter must not reorder a byte stream)."""
    return max(arrival + delay, previous)


class Pacer:
    """A bandwidth cap: how long to wait before sending n more bytes at `rate` bytes/s.

    Toxiproxy's bandwidth toxic sleeps len/rate before passing each chunk on, carrying its
    timing error to the next; here the debt is kept as the time the line is free again, and
    an idle line earns no credit (no burst after a pause). The engine keeps one per link and
    stream, shared by the link's connections: the cap is the link's capacity, where
    Toxiproxy caps each connection on its own.
    """

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.free_at: float | None = None

    def wait(self, size: int, rate: int) -> float:
        now = self.clock()
        start = now if self.free_at is None else max(now, self.free_at)
        self.free_at = start + size / rate
        return self.free_at - now


def piece_size(rate: int) -> int:
    """Bytes sent per step under a cap: 100 ms worth, as Toxiproxy splits slow chunks, so a
    changed or removed cap takes effect within 100 ms."""
    return max(1, rate // 10)


def slice_sizes(total: int, average: int, variation: int, rng: random.Random) -> list[int]:
    """Toxiproxy's slicer: split `total` bytes about in halves until each piece is within
    `variation` of `average` (evenly varying, no small piece at either end)."""
    if total <= 0:
        return []
    sizes = []
    stack = [(0, total)]
    while stack:
        start, end = stack.pop()
        if (end - start) - average <= variation:
            sizes.append(end - start)
            continue
        offset = rng.randint(-variation, variation - 1) if variation else 0
        mid = start + (end - start) // 2 + offset
        stack.append((mid, end))
        stack.append((start, mid))
    return sizes


@dataclass(frozen=True)
class ConnectionTimer:
    uid: int  # the toxic's
    action: str  # "close" (timeout) or "reset" (reset_peer)
    stream: str
    seconds: float


def connection_timers(toxics: list[Toxic]) -> list[ConnectionTimer]:
    """Timers a connection arms when these toxics apply to it: `timeout` closes it after its
    timeout (0: never, it only holds data), `reset_peer` resets it after its timeout (0: now).

    The lab counts from the moment the toxic applies to the connection (added while the
    connection is open, or the connection opened while the toxic is there); Toxiproxy's
    reset_peer waits for the next chunk of data and its timeout restarts at each chunk.
    """
    timers = []
    for t in toxics:
        if t.type == "timeout" and t["timeout"] > 0:
            timers.append(ConnectionTimer(t.uid, "close", t.stream, t["timeout"] / 1000.0))
        elif t.type == "reset_peer":
            timers.append(ConnectionTimer(t.uid, "reset", t.stream, t["timeout"] / 1000.0))
    return timers
