"""Durable state of plain ARM resources (Compute, Network): one SQLite database in WAL mode.

A resource is a row (type, resource group, name) -> JSON document in the provider's own
vocabulary; names and groups compare case-insensitively, as ARM's do. Long-running
operations are rows too (`operations`), so a restarted ARM process can answer a poll of an
operation it accepted before, and pick up one that had not finished. Every write is a short
`BEGIN IMMEDIATE` transaction; nested `transaction()` calls join the outer one, so a model can
check and write several resources atomically (allocating an IP address, attaching a disk).

Nothing here knows HTTP or any resource type; the models own the documents.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    type TEXT NOT NULL COLLATE NOCASE, resource_group TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE, doc TEXT NOT NULL,
    PRIMARY KEY (type, resource_group, name));
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS operations_by_status ON operations (status);
"""


def _dumps(doc) -> str:
    return json.dumps(doc, separators=(",", ":"))


class ResourceStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        with self._write_lock:
            self.connection().executescript(_SCHEMA)

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
        with self._write_lock:
            conn = self.connection()
            if conn.in_transaction:
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- resources ----------------------------------------------------------------------------
    def get(self, type_: str, group: str, name: str) -> dict | None:
        row = (
            self.connection()
            .execute(
                "SELECT doc FROM resources WHERE type = ? AND resource_group = ? AND name = ?",
                (type_, group, name),
            )
            .fetchone()
        )
        return json.loads(row["doc"]) if row else None

    def put(self, type_: str, group: str, name: str, doc: dict) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO resources (type, resource_group, name, doc) "
                "VALUES (?, ?, ?, ?)",
                (type_, group, name, _dumps(doc)),
            )

    def delete(self, type_: str, group: str, name: str) -> bool:
        with self.transaction() as db:
            cur = db.execute(
                "DELETE FROM resources WHERE type = ? AND resource_group = ? AND name = ?",
                (type_, group, name),
            )
            return cur.rowcount > 0

    def list(self, type_: str, group: str | None = None) -> list[dict]:
        """Documents of a type (in one group, or all), sorted by (group, name) lower-cased."""
        sql, args = "SELECT doc FROM resources WHERE type = ?", [type_]
        if group is not None:
            sql += " AND resource_group = ?"
            args.append(group)
        sql += " ORDER BY lower(resource_group), lower(name)"
        return [json.loads(r["doc"]) for r in self.connection().execute(sql, args).fetchall()]

    def count(self, type_: str) -> int:
        return (
            self.connection()
            .execute("SELECT COUNT(*) AS n FROM resources WHERE type = ?", (type_,))
            .fetchone()["n"]
        )

    def wipe(self, *types: str) -> None:
        with self.transaction() as db:
            for type_ in types:
                db.execute("DELETE FROM resources WHERE type = ?", (type_,))

    # -- long-running operations --------------------------------------------------------------
    def get_operation(self, operation_id: str) -> dict | None:
        row = (
            self.connection()
            .execute("SELECT doc FROM operations WHERE id = ?", (operation_id,))
            .fetchone()
        )
        return json.loads(row["doc"]) if row else None

    def put_operation(self, doc: dict) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO operations (id, status, doc) VALUES (?, ?, ?)",
                (doc["id"], doc["status"], _dumps(doc)),
            )

    def operations(self, status: str | None = None) -> list[dict]:
        sql, args = "SELECT doc FROM operations", []
        if status is not None:
            sql += " WHERE status = ?"
            args.append(status)
        return [json.loads(r["doc"]) for r in self.connection().execute(sql, args).fetchall()]

    def wipe_operations(self) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM operations")
