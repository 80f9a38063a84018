"""The vCenter's durable state: VMs (identity, hardware, power state as clients saw it), the
event log and id counters, in SQLite in the service's data directory.

The rest of the inventory (datacenter, folders, cluster, hosts, datastores, networks) is
rebuilt from the topology at every start with the same ids, so only what clients can change is
stored. Writes are small and immediate (WAL), so a vCenter killed at any point restarts with
what it had answered.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from pyVmomi import SoapAdapter, vim
from pyVmomi.VmomiSupport import Object

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vms (moid TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (key INTEGER PRIMARY KEY, xml TEXT NOT NULL);
"""
KEEP_EVENTS = 5000


class Store:
    def __init__(self, path: Path, version: str):
        self.path = Path(path)
        self.version = version  # the pyvmomi version records are serialised with
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}
        self._batch = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- meta and counters --------------------------------------------------------------------
    def get_meta(self, key: str, default=None):
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, json.dumps(value))
            )

    def next_id(self, prefix: str) -> str:
        """'vm' -> 'vm-12': ids never reused, across restarts too."""
        with self._lock:
            n = self._counters.get(prefix)
            if n is None:
                row = self._db.execute(
                    "SELECT value FROM meta WHERE key=?", (f"next:{prefix}",)
                ).fetchone()
                n = json.loads(row[0]) if row else 1
            self._counters[prefix] = n + 1
            self._db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)",
                (f"next:{prefix}", json.dumps(n + 1)),
            )
            return f"{prefix}-{n}"

    def set_next_id(self, prefix: str, n: int) -> None:
        with self._lock:
            self._counters[prefix] = n
            self._db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)",
                (f"next:{prefix}", json.dumps(n)),
            )

    # -- batches (seeding 1,000 VMs is one transaction) ---------------------------------------
    def begin(self) -> None:
        with self._lock:
            if self._batch == 0:
                self._db.execute("BEGIN")
            self._batch += 1

    def commit(self) -> None:
        with self._lock:
            self._batch -= 1
            if self._batch == 0:
                self._db.execute("COMMIT")

    # -- VMs ----------------------------------------------------------------------------------
    def save_vm(self, vm) -> None:
        record = json.dumps(vm.to_record(self.version))
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO vms(moid, record) VALUES(?, ?)", (vm.moid, record)
            )

    def delete_vm(self, moid: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM vms WHERE moid=?", (moid,))

    def vm_records(self) -> list[dict]:
        rows = self._db.execute("SELECT record FROM vms").fetchall()
        records = [json.loads(r[0]) for r in rows]
        return sorted(records, key=lambda r: int(r["moid"].split("-")[-1]))

    # -- events -------------------------------------------------------------------------------
    def save_event(self, event) -> None:
        info = Object(name="event", type=vim.event.Event, version=self.version, flags=0)
        xml = SoapAdapter.SerializeToStr(event, info, self.version)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO events(key, xml) VALUES(?, ?)", (event.key, xml)
            )
            if event.key % 500 == 0:
                self._db.execute("DELETE FROM events WHERE key <= ?", (event.key - KEEP_EVENTS,))

    def events(self) -> list:
        rows = self._db.execute(
            "SELECT xml FROM events ORDER BY key DESC LIMIT ?", (KEEP_EVENTS,)
        ).fetchall()
        return [SoapAdapter.Deserialize(r[0], vim.event.Event) for r in reversed(rows)]

    def clear_events(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM events")

    # -- reset --------------------------------------------------------------------------------
    def wipe(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM vms")
            self._db.execute("DELETE FROM events")
            self._db.execute("DELETE FROM meta")
            self._counters.clear()
