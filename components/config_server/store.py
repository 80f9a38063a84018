"""The configuration server's database (SQLite): its secrets, the process servers and master
targets that registered with it, the mobility agents, the vCenters it discovers and what it
found there, and the VMs it was asked to protect.

All times are lab time (epoch seconds from the lab clock).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS process_servers (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, url TEXT NOT NULL, ip TEXT NOT NULL,
    key_hash TEXT NOT NULL, registered_at REAL NOT NULL, last_heartbeat REAL,
    health TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS master_targets (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, url TEXT NOT NULL, ip TEXT NOT NULL,
    os_family TEXT NOT NULL, key_hash TEXT NOT NULL, registered_at REAL NOT NULL,
    last_heartbeat REAL, health TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY, vm_id TEXT UNIQUE NOT NULL, hostname TEXT NOT NULL,
    os_family TEXT NOT NULL, ip_addresses TEXT NOT NULL, version TEXT NOT NULL,
    disks TEXT NOT NULL, registered_at REAL NOT NULL, last_heartbeat REAL,
    status TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS vcenters (
    name TEXT PRIMARY KEY, host TEXT NOT NULL, port INTEGER NOT NULL, run_as TEXT NOT NULL,
    status TEXT NOT NULL, last_discovery REAL, error TEXT);
CREATE TABLE IF NOT EXISTS inventory (
    vcenter TEXT NOT NULL, vm_id TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (vcenter, vm_id));
CREATE TABLE IF NOT EXISTS protections (
    vm_id TEXT PRIMARY KEY, settings TEXT NOT NULL, state TEXT NOT NULL,
    updated_at REAL NOT NULL);
"""


class ConfigStore:
    def __init__(self, path: str | Path):
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _q(self, sql: str, args=()):
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _x(self, sql: str, args=()) -> None:
        with self._lock:
            self._db.execute(sql, args)

    # -- settings ---------------------------------------------------------------------------
    def setting(self, key: str) -> str | None:
        rows = self._q("SELECT value FROM settings WHERE key=?", (key,))
        return rows[0]["value"] if rows else None

    def set_setting(self, key: str, value: str) -> None:
        self._x("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))

    def secret(self, key: str, nbytes: int = 32) -> str:
        """A secret made once and kept (the passphrase, the agent-token key)."""
        with self._lock:
            value = self.setting(key)
            if value is None:
                value = secrets.token_urlsafe(nbytes)
                self.set_setting(key, value)
            return value

    # -- process servers and master targets ---------------------------------------------------
    def upsert_server(self, table: str, row: dict) -> None:
        assert table in ("process_servers", "master_targets")
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f"{c}=excluded.{c}" for c in row if c != "id")
        self._x(
            f"INSERT INTO {table} ({cols}) VALUES ({marks}) "
            f"ON CONFLICT(name) DO UPDATE SET {updates}",
            tuple(row.values()),
        )

    def servers(self, table: str) -> list[dict]:
        assert table in ("process_servers", "master_targets")
        rows = self._q(f"SELECT * FROM {table} ORDER BY name")
        return [dict(r, health=json.loads(r["health"])) for r in rows]

    def server(self, table: str, server_id: str) -> dict | None:
        rows = [s for s in self.servers(table) if s["id"] == server_id or s["name"] == server_id]
        return rows[0] if rows else None

    def server_heartbeat(self, table: str, server_id: str, at: float, health: dict) -> None:
        assert table in ("process_servers", "master_targets")
        self._x(
            f"UPDATE {table} SET last_heartbeat=?, health=? WHERE id=?",
            (at, json.dumps(health), server_id),
        )

    # -- agents -----------------------------------------------------------------------------
    def upsert_agent(self, row: dict) -> None:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f"{c}=excluded.{c}" for c in row if c not in ("id", "vm_id"))
        self._x(
            f"INSERT INTO agents ({cols}) VALUES ({marks}) "
            f"ON CONFLICT(vm_id) DO UPDATE SET {updates}",
            tuple(row.values()),
        )

    def agents(self) -> list[dict]:
        return [_agent(r) for r in self._q("SELECT * FROM agents ORDER BY hostname")]

    def agent(self, agent_id: str) -> dict | None:
        rows = self._q("SELECT * FROM agents WHERE id=? OR vm_id=?", (agent_id, agent_id))
        return _agent(rows[0]) if rows else None

    def agent_heartbeat(self, agent_id: str, at: float, status: dict) -> None:
        self._x(
            "UPDATE agents SET last_heartbeat=?, status=? WHERE id=?",
            (at, json.dumps(status), agent_id),
        )

    # -- vCenters and what they hold ------------------------------------------------------------
    def upsert_vcenter(self, name, host, port, run_as, status="Discovering") -> None:
        self._x(
            "INSERT INTO vcenters (name, host, port, run_as, status) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET host=excluded.host, port=excluded.port, "
            "run_as=excluded.run_as",
            (name, host, port, run_as, status),
        )

    def vcenters(self) -> list[dict]:
        return [dict(r) for r in self._q("SELECT * FROM vcenters ORDER BY name")]

    def vcenter_status(self, name, status, at=None, error=None) -> None:
        self._x(
            "UPDATE vcenters SET status=?, last_discovery=COALESCE(?, last_discovery), "
            "error=? WHERE name=?",
            (status, at, error, name),
        )

    def replace_inventory(self, vcenter: str, vms: list[dict]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute("DELETE FROM inventory WHERE vcenter=?", (vcenter,))
                self._db.executemany(
                    "INSERT INTO inventory VALUES (?, ?, ?)",
                    [(vcenter, vm["id"], json.dumps(vm)) for vm in vms],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def inventory(self, vcenter: str | None = None) -> list[dict]:
        if vcenter is None:
            rows = self._q("SELECT data FROM inventory")
        else:
            rows = self._q("SELECT data FROM inventory WHERE vcenter=?", (vcenter,))
        return [json.loads(r["data"]) for r in rows]

    def vm(self, vm_id: str) -> dict | None:
        rows = self._q("SELECT vcenter, data FROM inventory WHERE vm_id=?", (vm_id,))
        if not rows:
            return None
        return dict(json.loads(rows[0]["data"]), vcenter=rows[0]["vcenter"])

    # -- protections ----------------------------------------------------------------------------
    def set_protection(self, vm_id: str, settings: dict, state: str, at: float) -> None:
        self._x(
            "INSERT OR REPLACE INTO protections VALUES (?, ?, ?, ?)",
            (vm_id, json.dumps(settings), state, at),
        )

    def protection(self, vm_id: str) -> dict | None:
        rows = self._q("SELECT * FROM protections WHERE vm_id=?", (vm_id,))
        if not rows:
            return None
        r = rows[0]
        return {"vm_id": r["vm_id"], "settings": json.loads(r["settings"]), "state": r["state"]}

    def protections(self) -> list[dict]:
        return [
            {"vm_id": r["vm_id"], "settings": json.loads(r["settings"]), "state": r["state"]}
            for r in self._q("SELECT * FROM protections")
        ]

    def remove_protection(self, vm_id: str) -> None:
        self._x("DELETE FROM protections WHERE vm_id=?", (vm_id,))


def _agent(row) -> dict:
    d = dict(row)
    for key in ("ip_addresses", "disks", "status"):
        d[key] = json.loads(d[key])
    return d
