"""The worker's durable progress: its own SQLite database in the service's data directory.

What it records is what makes applying idempotent and resumable after a crash at any point:

- per VM, the epoch adopted and its protected item (and the RPO alert state);
- per seed disk (VM, epoch, disk index), its page blob and size;
- per stream, the last sequence applied (and what the last applied message said);
- per (VM, epoch, tag, disk), the snapshot taken there, so a log applied again after a crash
  reuses it instead of snapshotting a disk that already moved past the tag;
- per (VM, epoch, tag), the recovery point made (kept, marked pruned, after retention);
- retired epochs, whose leftover logs are stale.

WAL mode, one connection per thread, short write transactions. The vault's own state is not
here: it is the ARM process's database, written through `replication_state`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from . import names

DB_FILE = "progress.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vms (
    vm_id TEXT PRIMARY KEY COLLATE NOCASE, epoch TEXT NOT NULL, fabric TEXT NOT NULL,
    container TEXT NOT NULL, item TEXT NOT NULL, plan TEXT NOT NULL, adopted_at REAL NOT NULL,
    rpo_alert INTEGER NOT NULL DEFAULT 0, rpo_alert_since REAL,
    generation INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS seed_disks (
    vm_id TEXT COLLATE NOCASE, epoch TEXT, disk_index INTEGER, disk_id TEXT NOT NULL,
    blob TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (vm_id, epoch, disk_index));
CREATE TABLE IF NOT EXISTS streams (
    vm_id TEXT COLLATE NOCASE, stream TEXT, epoch TEXT NOT NULL, disk_index INTEGER NOT NULL,
    initial INTEGER NOT NULL, applied INTEGER NOT NULL DEFAULT 0, captured_at REAL,
    payload_bytes INTEGER NOT NULL DEFAULT 0, sealed_bytes INTEGER NOT NULL DEFAULT 0,
    logs INTEGER NOT NULL DEFAULT 0, done INTEGER NOT NULL DEFAULT 0,
    first_point INTEGER NOT NULL DEFAULT 0, updated_at REAL,
    PRIMARY KEY (vm_id, stream));
CREATE TABLE IF NOT EXISTS snapshots (
    vm_id TEXT COLLATE NOCASE, epoch TEXT, tag_id TEXT, disk_index INTEGER,
    snapshot TEXT NOT NULL, kind INTEGER NOT NULL, lab_time REAL NOT NULL, group_id TEXT,
    PRIMARY KEY (vm_id, epoch, tag_id, disk_index));
CREATE TABLE IF NOT EXISTS points (
    vm_id TEXT COLLATE NOCASE, epoch TEXT, tag_id TEXT, name TEXT NOT NULL, time REAL NOT NULL,
    type TEXT NOT NULL, group_id TEXT, manifest TEXT, pruned INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (vm_id, epoch, tag_id));
CREATE TABLE IF NOT EXISTS retired (
    vm_id TEXT COLLATE NOCASE, epoch TEXT, at REAL NOT NULL, PRIMARY KEY (vm_id, epoch));
"""


def _dict(row: sqlite3.Row | None) -> dict | None:
    return dict(row) if row is not None else None


class Progress:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        with self._write_lock:
            self._conn().executescript(_SCHEMA)
            columns = {r[1] for r in self._conn().execute("PRAGMA table_info(vms)")}
            if "generation" not in columns:  # a database from before resync generations
                self._conn().execute(
                    "ALTER TABLE vms ADD COLUMN generation INTEGER NOT NULL DEFAULT 0"
                )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=10.0, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a recorded step must survive a power cut as well as a kill -9.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            conn = self._conn()
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

    def _one(self, sql: str, args: tuple = ()) -> dict | None:
        return _dict(self._conn().execute(sql, args).fetchone())

    def _all_rows(self, sql: str, args: tuple = ()) -> list[dict]:
        return [dict(r) for r in self._conn().execute(sql, args).fetchall()]

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- settings -------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        with self.transaction() as db:
            if value is None:
                db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- VMs and their epochs -------------------------------------------------------------------
    def vms(self) -> list[dict]:
        return self._all_rows("SELECT * FROM vms ORDER BY vm_id")

    def vm(self, vm_id: str) -> dict | None:
        return self._one("SELECT * FROM vms WHERE vm_id = ?", (vm_id,))

    def adopt(self, vm_id: str, epoch: str, item: tuple, plan: dict, seeds: list[dict]) -> None:
        """Record a VM's epoch, its seed disks and its streams (nothing applied), at once."""
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO vms (vm_id, epoch, fabric, container, item, plan, "
                "adopted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (vm_id, epoch, *item, json.dumps(plan), now),
            )
            for seed in seeds:
                db.execute(
                    "INSERT OR REPLACE INTO seed_disks VALUES (?, ?, ?, ?, ?, ?)",
                    (vm_id, epoch, seed["index"], seed["disk_id"], seed["blob"], seed["size"]),
                )
                for initial, stream in ((1, f"{epoch}-{seed['index']}-ir"), (0, None)):
                    name = stream or f"{epoch}-{seed['index']}"
                    db.execute(
                        "INSERT OR IGNORE INTO streams (vm_id, stream, epoch, disk_index, "
                        "initial, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (vm_id, name, epoch, seed["index"], initial, now),
                    )

    def switch_generation(self, vm_id: str, epoch: str, generation: int, indexes) -> None:
        """Resync `generation` begins: its streams (the pass, then the journal) replace the
        earlier ones for every disk, at once."""
        now = time.time()
        with self.transaction() as db:
            for index in indexes:
                for initial, name in (
                    (1, names.pass_stream(epoch, index, generation)),
                    (0, names.journal_stream(epoch, index, generation)),
                ):
                    db.execute(
                        "INSERT OR IGNORE INTO streams (vm_id, stream, epoch, disk_index, "
                        "initial, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (vm_id, name, epoch, index, initial, now),
                    )
            db.execute(
                "UPDATE vms SET generation = ? WHERE vm_id = ? AND epoch = ?",
                (generation, vm_id, epoch),
            )

    def set_item(self, vm_id: str, item: tuple) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE vms SET fabric = ?, container = ?, item = ? WHERE vm_id = ?",
                (*item, vm_id),
            )

    def set_alert(self, vm_id: str, alerting: bool, since: float | None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE vms SET rpo_alert = ?, rpo_alert_since = ? WHERE vm_id = ?",
                (int(alerting), since, vm_id),
            )

    def retire(self, vm_id: str, epoch: str) -> None:
        """Forget an epoch's progress (its seed disks and snapshots are already deleted)."""
        with self.transaction() as db:
            for table in ("seed_disks", "streams", "snapshots", "points"):
                db.execute(f"DELETE FROM {table} WHERE vm_id = ? AND epoch = ?", (vm_id, epoch))
            db.execute("DELETE FROM vms WHERE vm_id = ? AND epoch = ?", (vm_id, epoch))
            db.execute(
                "INSERT OR REPLACE INTO retired VALUES (?, ?, ?)", (vm_id, epoch, time.time())
            )

    def retired_epochs(self, vm_id: str) -> set[str]:
        rows = self._all_rows("SELECT epoch FROM retired WHERE vm_id = ?", (vm_id,))
        return {r["epoch"] for r in rows}

    def forget_vm(self, vm_id: str) -> None:
        with self.transaction() as db:
            for table in ("vms", "seed_disks", "streams", "snapshots", "points", "retired"):
                db.execute(f"DELETE FROM {table} WHERE vm_id = ?", (vm_id,))

    # -- seed disks -----------------------------------------------------------------------------
    def seed_disks(self, vm_id: str, epoch: str | None = None) -> list[dict]:
        if epoch is None:
            return self._all_rows(
                "SELECT * FROM seed_disks WHERE vm_id = ? ORDER BY epoch, disk_index", (vm_id,)
            )
        return self._all_rows(
            "SELECT * FROM seed_disks WHERE vm_id = ? AND epoch = ? ORDER BY disk_index",
            (vm_id, epoch),
        )

    def set_seed_size(self, vm_id: str, epoch: str, index: int, size: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE seed_disks SET size = ? WHERE vm_id = ? AND epoch = ? AND disk_index = ?",
                (size, vm_id, epoch, index),
            )

    # -- streams --------------------------------------------------------------------------------
    def streams(self, vm_id: str, epoch: str) -> list[dict]:
        return self._all_rows(
            "SELECT * FROM streams WHERE vm_id = ? AND epoch = ? ORDER BY disk_index, initial DESC",
            (vm_id, epoch),
        )

    def stream(self, vm_id: str, stream: str) -> dict | None:
        return self._one("SELECT * FROM streams WHERE vm_id = ? AND stream = ?", (vm_id, stream))

    def record_applied(
        self,
        vm_id: str,
        stream: str,
        *,
        last: int,
        captured_at: float,
        payload_bytes: int,
        sealed_bytes: int,
        done: bool,
    ) -> None:
        """The log ending at `last` is applied (its pages written, its tags snapshotted)."""
        with self.transaction() as db:
            changed = db.execute(
                "UPDATE streams SET applied = ?, captured_at = ?, "
                "payload_bytes = payload_bytes + ?, sealed_bytes = sealed_bytes + ?, "
                "logs = logs + 1, done = MAX(done, ?), updated_at = ? "
                "WHERE vm_id = ? AND stream = ? AND applied < ?",
                (
                    last,
                    captured_at,
                    payload_bytes,
                    sealed_bytes,
                    int(done),
                    time.time(),
                    vm_id,
                    stream,
                    last,
                ),
            ).rowcount
            if not changed and self.stream(vm_id, stream) is None:
                raise KeyError(f"no stream {stream} of VM {vm_id}")

    # -- snapshots at tags ----------------------------------------------------------------------
    def snapshot(self, vm_id: str, epoch: str, tag_id: str, index: int) -> str | None:
        row = self._one(
            "SELECT snapshot FROM snapshots WHERE vm_id = ? AND epoch = ? AND tag_id = ? "
            "AND disk_index = ?",
            (vm_id, epoch, tag_id, index),
        )
        return row["snapshot"] if row else None

    def record_snapshot(
        self,
        vm_id: str,
        epoch: str,
        tag,  # lab.kit.wire.Tag
        index: int,
        snapshot: str,
        *,
        stream: str,
        first_point: bool,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    vm_id,
                    epoch,
                    tag.tag_id,
                    index,
                    snapshot,
                    int(tag.kind),
                    float(tag.lab_time),
                    tag.group_id,
                ),
            )
            if first_point:
                db.execute(
                    "UPDATE streams SET first_point = 1 WHERE vm_id = ? AND stream = ?",
                    (vm_id, stream),
                )

    def tag_snapshots(self, vm_id: str, epoch: str, tag_id: str) -> list[dict]:
        return self._all_rows(
            "SELECT * FROM snapshots WHERE vm_id = ? AND epoch = ? AND tag_id = ? "
            "ORDER BY disk_index",
            (vm_id, epoch, tag_id),
        )

    def tags_without_point(self, vm_id: str, epoch: str, disks: int) -> list[dict]:
        """Tags every disk has a snapshot for but no recovery point records, oldest first."""
        return self._all_rows(
            "SELECT s.tag_id, MIN(s.lab_time) AS lab_time, MIN(s.kind) AS kind, "
            "MIN(s.group_id) AS group_id, COUNT(*) AS disks FROM snapshots s "
            "LEFT JOIN points p ON p.vm_id = s.vm_id AND p.epoch = s.epoch AND p.tag_id = s.tag_id "
            "WHERE s.vm_id = ? AND s.epoch = ? AND p.tag_id IS NULL "
            "GROUP BY s.tag_id HAVING COUNT(*) >= ? ORDER BY MIN(s.lab_time)",
            (vm_id, epoch, disks),
        )

    def pending_tags(self, vm_id: str, epoch: str) -> list[dict]:
        """Tags some disks reached and others not yet (no point yet)."""
        return self._all_rows(
            "SELECT s.tag_id, COUNT(*) AS disks FROM snapshots s "
            "LEFT JOIN points p ON p.vm_id = s.vm_id AND p.epoch = s.epoch AND p.tag_id = s.tag_id "
            "WHERE s.vm_id = ? AND s.epoch = ? AND p.tag_id IS NULL GROUP BY s.tag_id",
            (vm_id, epoch),
        )

    # -- recovery points ------------------------------------------------------------------------
    def point(self, vm_id: str, epoch: str, tag_id: str) -> dict | None:
        return self._one(
            "SELECT * FROM points WHERE vm_id = ? AND epoch = ? AND tag_id = ?",
            (vm_id, epoch, tag_id),
        )

    def record_point(
        self,
        vm_id: str,
        epoch: str,
        tag_id: str,
        *,
        name: str,
        time: float,
        type: str,
        group_id: str | None,
        manifest: str | None,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO points (vm_id, epoch, tag_id, name, time, type, group_id, "
                "manifest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (vm_id, epoch, tag_id, name, time, type, group_id, manifest),
            )

    def points(self, vm_id: str, epoch: str, *, pruned: bool = False) -> list[dict]:
        """Points of an epoch, newest first (kept ones only unless `pruned`)."""
        where = "" if pruned else " AND pruned = 0"
        return self._all_rows(
            f"SELECT * FROM points WHERE vm_id = ? AND epoch = ?{where} ORDER BY time DESC",
            (vm_id, epoch),
        )

    def mark_pruned(self, vm_id: str, epoch: str, tag_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE points SET pruned = 1 WHERE vm_id = ? AND epoch = ? AND tag_id = ?",
                (vm_id, epoch, tag_id),
            )
