"""The vault's durable state: one SQLite database in WAL mode, shared by processes.

The ARM process (HTTP handlers, the job runner) and the Site Recovery worker (a separate
process, later) open the same file; WAL lets readers run while one writer writes, and every
write is a short `BEGIN IMMEDIATE` transaction, so the worker's updates are visible to the
next ARM request without any cache to invalidate.

Rows are keyed by names (case-insensitive, as ARM names are) and carry the resource as a JSON
document (`doc`) in ARM's camelCase vocabulary; the models read and write those documents.
Nothing here knows HTTP.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

DB_FILE = "siterecovery.db"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fabrics (
    name TEXT PRIMARY KEY COLLATE NOCASE, kind TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS containers (
    fabric TEXT COLLATE NOCASE, name TEXT COLLATE NOCASE, doc TEXT NOT NULL,
    PRIMARY KEY (fabric, name));
CREATE TABLE IF NOT EXISTS vcenters (
    fabric TEXT COLLATE NOCASE, name TEXT COLLATE NOCASE, doc TEXT NOT NULL,
    PRIMARY KEY (fabric, name));
CREATE TABLE IF NOT EXISTS protectable_items (
    fabric TEXT COLLATE NOCASE, container TEXT COLLATE NOCASE, name TEXT COLLATE NOCASE,
    vcenter TEXT COLLATE NOCASE, doc TEXT NOT NULL, PRIMARY KEY (fabric, container, name));
CREATE TABLE IF NOT EXISTS mobility_agents (
    fabric TEXT COLLATE NOCASE, vm TEXT COLLATE NOCASE, doc TEXT NOT NULL,
    PRIMARY KEY (fabric, vm));
CREATE TABLE IF NOT EXISTS policies (name TEXT PRIMARY KEY COLLATE NOCASE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recovery_plans (
    name TEXT PRIMARY KEY COLLATE NOCASE, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mappings (
    fabric TEXT COLLATE NOCASE, container TEXT COLLATE NOCASE, name TEXT COLLATE NOCASE,
    doc TEXT NOT NULL, PRIMARY KEY (fabric, container, name));
CREATE TABLE IF NOT EXISTS protected_items (
    fabric TEXT COLLATE NOCASE, container TEXT COLLATE NOCASE, name TEXT COLLATE NOCASE,
    doc TEXT NOT NULL, PRIMARY KEY (fabric, container, name));
CREATE TABLE IF NOT EXISTS recovery_points (
    fabric TEXT COLLATE NOCASE, container TEXT COLLATE NOCASE, item TEXT COLLATE NOCASE,
    name TEXT COLLATE NOCASE, time REAL NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (fabric, container, item, name));
CREATE INDEX IF NOT EXISTS recovery_points_by_time
    ON recovery_points (fabric, container, item, time);
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY COLLATE NOCASE, seq INTEGER NOT NULL, state TEXT NOT NULL,
    doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state);
CREATE TABLE IF NOT EXISTS events (
    name TEXT PRIMARY KEY COLLATE NOCASE, time REAL NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS work_items (
    id TEXT PRIMARY KEY COLLATE NOCASE, fabric TEXT COLLATE NOCASE NOT NULL,
    state TEXT NOT NULL, seq INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS work_items_by_state ON work_items (fabric, state);
"""

# Tables and their key columns, for the generic document helpers below.
KEYS: dict[str, tuple[str, ...]] = {
    "fabrics": ("name",),
    "containers": ("fabric", "name"),
    "vcenters": ("fabric", "name"),
    "protectable_items": ("fabric", "container", "name"),
    "mobility_agents": ("fabric", "vm"),
    "policies": ("name",),
    "recovery_plans": ("name",),
    "mappings": ("fabric", "container", "name"),
    "protected_items": ("fabric", "container", "name"),
    "recovery_points": ("fabric", "container", "item", "name"),
    "jobs": ("name",),
    "events": ("name",),
    "work_items": ("id",),
}


def dumps(doc) -> str:
    return json.dumps(doc, separators=(",", ":"))


class Store:
    """Connections (one per thread) and transactions over the vault's database."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        # executescript commits on its own: run it outside any transaction.
        with self._write_lock:
            self.connection().executescript(_SCHEMA)
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=10.0, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE: other writers wait, readers do not).

        Nested calls join the outer transaction. Callbacks given to `after_commit` inside it
        run once it has committed (e.g. waking long-polls that must see the new rows).
        """
        with self._write_lock:
            conn = self.connection()
            if conn.in_transaction:
                yield conn
                return
            self._local.after = []
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                self._local.after = []
                raise
            conn.execute("COMMIT")
            callbacks, self._local.after = self._local.after, []
        for callback in callbacks:
            callback()

    def after_commit(self, callback) -> None:
        conn = self.connection()
        if conn.in_transaction:
            self._local.after.append(callback)
        else:
            callback()

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- meta ---------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.connection().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def next_seq(self, db: sqlite3.Connection, counter: str) -> int:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (f"seq:{counter}",)).fetchone()
        value = int(row["value"]) + 1 if row else 1
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (f"seq:{counter}", str(value))
        )
        return value

    # -- documents ----------------------------------------------------------------------------
    def get(self, table: str, *key: str) -> dict | None:
        cols = KEYS[table]
        where = " AND ".join(f"{c} = ?" for c in cols)
        row = self.connection().execute(f"SELECT doc FROM {table} WHERE {where}", key).fetchone()
        return json.loads(row["doc"]) if row else None

    def put(self, db: sqlite3.Connection, table: str, key: tuple, doc: dict, **extra) -> None:
        cols = list(KEYS[table]) + list(extra) + ["doc"]
        values = list(key) + list(extra.values()) + [dumps(doc)]
        marks = ", ".join("?" for _ in cols)
        db.execute(f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({marks})", values)

    def delete(self, db: sqlite3.Connection, table: str, *key: str) -> int:
        cols = KEYS[table]
        where = " AND ".join(f"{c} = ?" for c in cols[: len(key)])
        return db.execute(f"DELETE FROM {table} WHERE {where}", key).rowcount

    def select(
        self, table: str, where: str = "", args: tuple = (), order: str = ""
    ) -> list[sqlite3.Row]:
        sql = f"SELECT * FROM {table}"
        if where:
            sql += f" WHERE {where}"
        if order:
            sql += f" ORDER BY {order}"
        return self.connection().execute(sql, args).fetchall()

    def docs(self, table: str, where: str = "", args: tuple = (), order: str = "") -> list[dict]:
        return [json.loads(r["doc"]) for r in self.select(table, where, args, order)]

    def count(self, table: str, where: str = "", args: tuple = ()) -> int:
        sql = f"SELECT COUNT(*) AS n FROM {table}" + (f" WHERE {where}" if where else "")
        return self.connection().execute(sql, args).fetchone()["n"]

    def wipe(self) -> None:
        """Every row of every table but `meta` (the registration key survives a reset)."""
        with self.transaction() as db:
            for table in KEYS:
                db.execute(f"DELETE FROM {table}")
