"""The broker: queues, topics and subscriptions of one namespace, their messages and locks.

No HTTP here. Entities come from the topology's `servicebus:` section; messages live in SQLite
in the service's data directory, so they survive a restart (a crash too: WAL journal). Every
operation is one transaction under one lock; receivers that wait (long polling) wait on a
condition that sends and unlocks signal.

Semantics, as the real service: a peek-lock delivers the head message (lowest sequence number
that is visible: not locked, not scheduled for later, not expired) and locks it for the entity's
lock duration; DeliveryCount counts deliveries, so a message whose lock expired or that was
unlocked comes back with DeliveryCount + 1. Once a message has been delivered
max_delivery_count times without being completed it moves to the entity's dead-letter queue
(`<entity>/$DeadLetterQueue`) with DeadLetterReason `MaxDeliveryCountExceeded`. A message past
its TimeToLive is dropped (as with the default EnableDeadLetteringOnMessageExpiration=false).
A topic copies each message to every subscription (each with its own lock and delivery count).

Lock durations, TTL and scheduled enqueue times follow the wall clock (`clock`, injectable for
tests), not the lab clock: the clients that hold locks renew them against LockedUntilUtc with
their own wall-clock timers, and a lab clock running 100x would expire every lock within a
second of real processing.

Not emulated: sessions, transactions, deferral, scheduled-message cancellation, subscription
rules and filters (every subscription takes every message), auto-forwarding, duplicate
detection, partitioning, dead-lettering on expiry, entity management (create/delete/list).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import errors

DEAD_LETTER = "$DeadLetterQueue"
MAX_DELIVERY_REASON = "MaxDeliveryCountExceeded"
# How often a waiting receiver re-checks for locks that expired meanwhile (nothing signals
# an expiry): a bound on how late a lock-expired message is redelivered to a long poll.
EXPIRY_POLL_SECONDS = 0.2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    entity TEXT NOT NULL,          -- canonical path of the queue, subscription or DLQ
    root TEXT NOT NULL,            -- the queue or topic it was sent to (size quota)
    seq INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT,
    props TEXT NOT NULL,           -- broker properties the sender set, JSON
    user_props TEXT NOT NULL,      -- custom properties, JSON
    size INTEGER NOT NULL,
    enqueued_at REAL NOT NULL,
    available_at REAL NOT NULL,    -- ScheduledEnqueueTimeUtc, or enqueue time
    expires_at REAL,               -- NULL: never
    ttl REAL,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    lock_token TEXT,
    locked_until REAL
);
CREATE INDEX IF NOT EXISTS messages_head ON messages (entity, seq);
CREATE INDEX IF NOT EXISTS messages_lock ON messages (lock_token);
CREATE TABLE IF NOT EXISTS sequences (root TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Entity:
    path: str  # as in the topology: "q", "t", "t/subscriptions/s", "q/$DeadLetterQueue"
    kind: str  # queue | topic | subscription
    root: str  # the queue or topic messages are sent to
    lock_duration: float = 60.0
    max_delivery_count: int = 10
    max_size_bytes: int = 1024 * 2**20
    dead_letter: bool = False
    subscriptions: tuple[str, ...] = ()  # a topic's subscription paths


@dataclass
class NewMessage:
    """A message as a sender gives it; broker properties already checked by the caller."""

    body: bytes
    content_type: str | None = None
    message_id: str | None = None
    time_to_live: float | None = None
    scheduled_enqueue_time: float | None = None  # epoch seconds
    properties: dict = field(default_factory=dict)  # Label, CorrelationId, SessionId, To, ...
    user_properties: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        # What counts against the message size limit: body plus properties, as on the wire.
        props = json.dumps(self.properties) if self.properties else ""
        users = sum(len(str(k)) + len(str(v)) for k, v in self.user_properties.items())
        return len(self.body) + len(props) + users + len(self.message_id or "")


@dataclass(frozen=True)
class Delivery:
    """A message as a receiver gets it."""

    entity: str
    sequence_number: int
    message_id: str
    body: bytes
    content_type: str | None
    properties: dict
    user_properties: dict
    enqueued_time: float
    delivery_count: int
    time_to_live: float | None
    scheduled_enqueue_time: float | None
    lock_token: str | None = None
    locked_until: float | None = None


def entities_from_topology(spec: dict) -> dict[str, Entity]:
    """Entities by lower-cased path (entity names are case-insensitive in Service Bus)."""
    out: dict[str, Entity] = {}

    def add(entity: Entity) -> None:
        out[entity.path.lower()] = entity

    for q in spec.get("queues", []):
        kwargs = dict(
            root=q["name"],
            lock_duration=float(q.get("lock_duration_seconds", 60)),
            max_delivery_count=int(q.get("max_delivery_count", 10)),
            max_size_bytes=int(q.get("max_size_mb", 1024)) * 2**20,
        )
        add(Entity(q["name"], "queue", **kwargs))
        add(Entity(f"{q['name']}/{DEAD_LETTER}", "queue", dead_letter=True, **kwargs))
    for t in spec.get("topics", []):
        size = int(t.get("max_size_mb", 1024)) * 2**20
        subs = [f"{t['name']}/subscriptions/{s['name']}" for s in t.get("subscriptions", [])]
        add(Entity(t["name"], "topic", t["name"], max_size_bytes=size, subscriptions=tuple(subs)))
        for path, s in zip(subs, t.get("subscriptions", [])):
            kwargs = dict(
                root=t["name"],
                lock_duration=float(s.get("lock_duration_seconds", 60)),
                max_delivery_count=int(s.get("max_delivery_count", 10)),
                max_size_bytes=size,
            )
            add(Entity(path, "subscription", **kwargs))
            add(Entity(f"{path}/{DEAD_LETTER}", "subscription", dead_letter=True, **kwargs))
    return out


class Broker:
    def __init__(
        self,
        spec: dict,
        db_path: str | Path,
        clock: Callable[[], float] = time.time,
    ):
        self.namespace = spec["namespace"]
        self.max_message_bytes = int(spec.get("max_message_kb", 256)) * 1024
        self.entities = entities_from_topology(spec)
        self.clock = clock
        self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process crash
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._closed = False

    # -- names ---------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return f"{self.namespace}.servicebus.windows.net"

    def resource_uri(self, path: str) -> str:
        return f"sb://{self.host}/{path}"

    def entity(self, path: str) -> Entity:
        entity = self.entities.get(path.strip("/").lower())
        if entity is None:
            raise errors.MessagingEntityNotFound(self.resource_uri(path.strip("/")))
        return entity

    # -- plumbing ------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self):
        with self._lock:
            if self._closed:
                raise errors.ServiceBusError("The messaging service is shutting down.")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            self._db.close()

    # -- send ----------------------------------------------------------------------------------
    def send(self, path: str, messages: list[NewMessage]) -> list[int]:
        """Enqueue messages on a queue or topic; returns their sequence numbers."""
        entity = self.entity(path)
        if entity.kind == "subscription" or entity.dead_letter:
            raise errors.BadRequest(
                f"Cannot send to '{entity.path}': send to its queue or topic; subscriptions "
                "and dead-letter queues only receive."
            )
        total = 0
        for message in messages:
            self._check_message(message)
            total += message.size
        if len(messages) > 1 and total > self.max_message_bytes:
            # A batch travels as one message: the limit applies to the whole of it.
            raise errors.MessageTooLarge(total, self.max_message_bytes)
        targets = [entity.path] if entity.kind == "queue" else list(entity.subscriptions)
        with self._transaction() as db:
            used = self._root_size(db, entity.root)
            if targets and used + total > entity.max_size_bytes:
                kind = "Queue" if entity.kind == "queue" else "Topic"
                raise errors.QuotaExceeded(kind, entity.path, used, entity.max_size_bytes)
            row = db.execute("SELECT last_seq FROM sequences WHERE root=?", (entity.root,))
            seq = (row.fetchone() or (0,))[0]
            now = self.clock()
            numbers = []
            for message in messages:
                seq += 1
                numbers.append(seq)
                message_id = message.message_id or uuid.uuid4().hex
                available = max(now, message.scheduled_enqueue_time or now)
                ttl = message.time_to_live
                expires = available + ttl if ttl is not None else None
                for target in targets:
                    db.execute(
                        "INSERT INTO messages (entity, root, seq, message_id, body, content_type,"
                        " props, user_props, size, enqueued_at, available_at, expires_at, ttl)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            target,
                            entity.root,
                            seq,
                            message_id,
                            message.body,
                            message.content_type,
                            json.dumps(message.properties),
                            json.dumps(message.user_properties),
                            message.size,
                            now,
                            available,
                            expires,
                            ttl,
                        ),
                    )
            db.execute(
                "INSERT INTO sequences (root, last_seq) VALUES (?, ?)"
                " ON CONFLICT(root) DO UPDATE SET last_seq=excluded.last_seq",
                (entity.root, seq),
            )
            self._changed.notify_all()
        return numbers

    def _check_message(self, message: NewMessage) -> None:
        if message.size > self.max_message_bytes:
            raise errors.MessageTooLarge(message.size, self.max_message_bytes)
        if message.time_to_live is not None and message.time_to_live <= 0:
            raise errors.BadRequest(
                f"The TimeToLive {message.time_to_live!r} is not valid: it must be positive."
            )

    @staticmethod
    def _root_size(db, root: str) -> int:
        # A topic's message counts once however many subscriptions hold a copy.
        row = db.execute(
            "SELECT COALESCE(SUM(size), 0) FROM"
            " (SELECT MAX(size) AS size FROM messages WHERE root=? GROUP BY seq)",
            (root,),
        ).fetchone()
        return int(row[0])

    # -- receive -------------------------------------------------------------------------------
    def receive(self, path: str, *, lock: bool, timeout: float = 0.0) -> Delivery | None:
        """The head message, locked (peek-lock) or removed (receive-and-delete); waits up to
        `timeout` seconds for one; None if there is none by then."""
        entity = self.entity(path)
        if entity.kind == "topic":
            raise errors.BadRequest(
                f"Cannot receive from topic '{entity.path}': receive from one of its "
                f"subscriptions, {entity.path}/subscriptions/<name>."
            )
        deadline = time.monotonic() + max(0.0, timeout)
        with self._changed:
            while True:
                if self._closed:
                    return None
                delivery = self._take(entity, lock)
                remaining = deadline - time.monotonic()
                if delivery is not None or remaining <= 0:
                    return delivery
                self._changed.wait(min(remaining, EXPIRY_POLL_SECONDS))

    def _take(self, entity: Entity, lock: bool) -> Delivery | None:
        with self._transaction() as db:
            now = self.clock()
            self._sweep(db, entity, now)
            row = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE entity=? AND available_at<=?"
                " AND (locked_until IS NULL OR locked_until<=?) ORDER BY seq LIMIT 1",
                (entity.path, now, now),
            ).fetchone()
            if row is None:
                return None
            message = _delivery(row)
            count = message.delivery_count + 1
            if lock:
                token = str(uuid.uuid4())
                until = now + entity.lock_duration
                db.execute(
                    "UPDATE messages SET delivery_count=?, lock_token=?, locked_until=? WHERE id=?",
                    (count, token, until, row[0]),
                )
                return replace(message, delivery_count=count, lock_token=token, locked_until=until)
            db.execute("DELETE FROM messages WHERE id=?", (row[0],))
            return replace(message, delivery_count=count)

    def _sweep(self, db, entity: Entity, now: float) -> None:
        """Drop expired messages and dead-letter exhausted ones (those not locked right now)."""
        db.execute(
            "DELETE FROM messages WHERE entity=? AND expires_at IS NOT NULL AND expires_at<=?"
            " AND (locked_until IS NULL OR locked_until<=?)",
            (entity.path, now, now),
        )
        if not entity.dead_letter:
            self._dead_letter(
                db,
                "entity=? AND delivery_count>=? AND (locked_until IS NULL OR locked_until<=?)",
                (entity.path, entity.max_delivery_count, now),
                entity,
            )

    @staticmethod
    def _dead_letter(db, where: str, params: tuple, entity: Entity) -> None:
        db.execute(
            "UPDATE messages SET entity=?, lock_token=NULL, locked_until=NULL, expires_at=NULL,"
            " user_props=json_set(user_props, '$.DeadLetterReason', ?,"
            " '$.DeadLetterErrorDescription',"
            " 'Message could not be consumed after ' || delivery_count || ' delivery attempts.')"
            f" WHERE {where}",
            (f"{entity.path}/{DEAD_LETTER}", MAX_DELIVERY_REASON, *params),
        )

    # -- settle --------------------------------------------------------------------------------
    def _locked(self, db, entity: Entity, ref: str, lock_token: str, now: float):
        try:
            uuid.UUID(lock_token)
        except ValueError:
            raise errors.BadRequest(f"The lock token '{lock_token}' is not a valid GUID.") from None
        row = db.execute(
            "SELECT id, seq, message_id, locked_until, delivery_count FROM messages"
            " WHERE entity=? AND lock_token=?",
            (entity.path, lock_token),
        ).fetchone()
        if row is None or (str(row[1]) != ref and row[2] != ref) or row[3] <= now:
            raise errors.MessageLockLost()
        return row

    def complete(self, path: str, ref: str, lock_token: str) -> None:
        """Delete a locked message (`ref` is its MessageId or SequenceNumber)."""
        entity = self.entity(path)
        with self._transaction() as db:
            row = self._locked(db, entity, ref, lock_token, self.clock())
            db.execute("DELETE FROM messages WHERE id=?", (row[0],))

    def unlock(self, path: str, ref: str, lock_token: str) -> None:
        """Abandon a locked message: it is visible again, or dead-lettered if exhausted."""
        entity = self.entity(path)
        with self._transaction() as db:
            row = self._locked(db, entity, ref, lock_token, self.clock())
            if not entity.dead_letter and row[4] >= entity.max_delivery_count:
                self._dead_letter(db, "id=?", (row[0],), entity)
            else:
                db.execute(
                    "UPDATE messages SET lock_token=NULL, locked_until=NULL WHERE id=?", (row[0],)
                )
            self._changed.notify_all()

    def renew_lock(self, path: str, ref: str, lock_token: str) -> float:
        """Extend a lock by the entity's lock duration from now; returns the new expiry."""
        entity = self.entity(path)
        with self._transaction() as db:
            now = self.clock()
            row = self._locked(db, entity, ref, lock_token, now)
            until = now + entity.lock_duration
            db.execute("UPDATE messages SET locked_until=? WHERE id=?", (until, row[0]))
            return until

    # -- control API ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Empty every entity (sequence numbers start again at 1)."""
        with self._transaction() as db:
            db.execute("DELETE FROM messages")
            db.execute("DELETE FROM sequences")

    def counts(self, path: str) -> dict:
        """Messages of one entity by state, as /_lab/state shows them."""
        entity = self.entity(path)
        with self._lock:
            now = self.clock()
            row = self._db.execute(
                "SELECT"
                " COALESCE(SUM(available_at<=? AND (locked_until IS NULL OR locked_until<=?)"
                "   AND (expires_at IS NULL OR expires_at>?)), 0),"
                " COALESCE(SUM(locked_until IS NOT NULL AND locked_until>?), 0),"
                " COALESCE(SUM(available_at>?), 0),"
                " COALESCE(SUM(size), 0)"
                " FROM messages WHERE entity=?",
                (now, now, now, now, now, entity.path),
            ).fetchone()
        active, locked, scheduled, size = (int(v) for v in row)
        return {"active": active, "locked": locked, "scheduled": scheduled, "size_bytes": size}

    def state(self) -> dict:
        entities = []
        for entity in self.entities.values():
            if entity.dead_letter:
                continue
            item = {"path": entity.path, "kind": entity.kind}
            if entity.kind == "topic":
                item["subscriptions"] = list(entity.subscriptions)
            else:
                item.update(self.counts(entity.path))
                item["lock_duration_seconds"] = entity.lock_duration
                item["max_delivery_count"] = entity.max_delivery_count
                item["dead_letter"] = self.counts(f"{entity.path}/{DEAD_LETTER}")["active"]
            entities.append(item)
        return {
            "namespace": self.namespace,
            "namespace_host": self.host,
            "max_message_bytes": self.max_message_bytes,
            "entities": entities,
        }


_COLUMNS = (
    "id, entity, seq, message_id, body, content_type, props, user_props, enqueued_at,"
    " delivery_count, ttl, available_at, lock_token, locked_until"
)


def _delivery(row) -> Delivery:
    (_id, entity, seq, message_id, body, content_type, props, user_props, enqueued_at,
     count, ttl, available_at, token, until) = row  # fmt: skip
    return Delivery(
        entity=entity,
        sequence_number=seq,
        message_id=message_id,
        body=bytes(body),
        content_type=content_type,
        properties=json.loads(props),
        user_properties=json.loads(user_props),
        enqueued_time=max(enqueued_at, available_at),
        delivery_count=count,
        time_to_live=ttl,
        scheduled_enqueue_time=available_at if available_at > enqueued_at else None,
        lock_token=token,
        locked_until=until,
    )
