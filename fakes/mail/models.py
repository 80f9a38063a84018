"""The mailbox: every message the sink accepted, in SQLite in the service's data directory.

No SMTP and no HTTP here. A message is stored as received (its raw RFC 5322 bytes) with what a
reader wants at a glance: sender, recipients, subject, date and the plain-text body.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import sqlite3
import threading
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so `since` keeps working after a clear
    received_at REAL NOT NULL,
    envelope_from TEXT NOT NULL,
    envelope_to TEXT NOT NULL,   -- recipients, one per line
    header_from TEXT NOT NULL,
    subject TEXT NOT NULL,
    date TEXT NOT NULL,
    body TEXT NOT NULL,
    raw BLOB NOT NULL
);
"""


def _text_of(message) -> str:
    """The plain-text body (or the HTML one, or the whole payload) of a parsed message."""
    try:
        part = message.get_body(preferencelist=("plain", "html"))
        if part is not None:
            return part.get_content().replace("\r\n", "\n")
        return message.get_payload(decode=True).decode("utf-8", errors="replace")
    except Exception:  # a malformed message is still kept; its body shown as best we can
        payload = message.get_payload()
        return payload if isinstance(payload, str) else ""


class Mailbox:
    def __init__(self, db_path: str | Path):
        self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def add(self, raw: bytes, envelope_from: str, recipients: list[str], received_at: float):
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        header_from = str(parsed.get("From") or envelope_from)
        subject = str(parsed.get("Subject") or "")
        date = str(parsed.get("Date") or email.utils.formatdate(received_at, usegmt=True))
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO messages (received_at, envelope_from, envelope_to, header_from,"
                " subject, date, body, raw) VALUES (?,?,?,?,?,?,?,?)",
                (
                    received_at,
                    envelope_from,
                    "\n".join(recipients),
                    header_from,
                    subject,
                    date,
                    _text_of(parsed),
                    raw,
                ),
            )
            return cursor.lastrowid

    def list(self, since: int = 0, limit: int | None = None) -> list[dict]:
        query = f"SELECT {_COLUMNS} FROM messages WHERE id>? ORDER BY id"
        params: tuple = (since,)
        if limit is not None:
            query += " LIMIT ?"
            params += (limit,)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [_as_dict(row) for row in rows]

    def get(self, message_id: int) -> dict | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE id=?", (message_id,)
            ).fetchone()
        return _as_dict(row) if row else None

    def raw(self, message_id: int) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT raw FROM messages WHERE id=?", (message_id,)).fetchone()
        return bytes(row[0]) if row else None

    def delete(self, message_id: int | None = None) -> int:
        """Delete one message, or all of them; returns how many went."""
        with self._lock:
            if message_id is None:
                return self._db.execute("DELETE FROM messages").rowcount
            return self._db.execute("DELETE FROM messages WHERE id=?", (message_id,)).rowcount

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


_COLUMNS = "id, received_at, envelope_from, envelope_to, header_from, subject, date, body, raw"


def _as_dict(row) -> dict:
    (mid, received_at, envelope_from, envelope_to, header_from, subject, date, body, raw) = row
    return {
        "id": mid,
        "from": header_from,
        "to": envelope_to.split("\n") if envelope_to else [],
        "subject": subject,
        "date": date,
        "received": dt.datetime.fromtimestamp(received_at, dt.UTC).isoformat(),
        "envelope_from": envelope_from,
        "size": len(raw),
        "body": body,
    }
