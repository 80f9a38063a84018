"""The agent's outbox: differentials taken from the journal, kept until acknowledged.

A message is written here (fsync) before it is sent and deleted only when its process server
acknowledged it, so an agent restart or a refused send loses nothing: what is here is sent
again, in order. Also the agent's small state file (initial replication progress, tag
counters), kept the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class Outbox:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob("*.tmp"):
            stale.unlink()
        existing = [int(p.stem) for p in self.dir.glob("*.msg")]
        self._next = max(existing, default=0) + 1

    def put(self, data: bytes) -> Path:
        path = self.dir / f"{self._next:016d}.msg"
        self._next += 1
        write_durably(path, data)
        return path

    def pending(self) -> list[Path]:
        return sorted(self.dir.glob("*.msg"))

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    @property
    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.pending())


class AgentState:
    """A JSON document kept durably (the agent's replication progress)."""

    def __init__(self, path: Path, default: dict):
        self.path = Path(path)
        self.data = json.loads(self.path.read_text()) if self.path.exists() else dict(default)
        self.fresh = not self.path.exists()

    def save(self) -> None:
        write_durably(self.path, json.dumps(self.data).encode())
