"""Processes of a lab: identity by (pid, start time), graceful-then-forced stop, and the registry
of processes that services start themselves (guests), so `drlab down` stops those too.

A process is only ever signalled if its pid still belongs to the process the lab started (the
start time recorded at spawn must match), never by name.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

REGISTRY_DIR = Path("run") / "procs"


@dataclass(frozen=True)
class ProcRef:
    pid: int
    started: float  # psutil create_time
    name: str = ""

    @classmethod
    def of(cls, pid: int, name: str = "") -> ProcRef:
        return cls(pid, psutil.Process(pid).create_time(), name)

    def process(self) -> psutil.Process | None:
        """The live process, if the pid still belongs to the one recorded."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.started) > 0.05:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def alive(self) -> bool:
        return self.process() is not None


def stop_all(
    refs: Iterable[ProcRef],
    grace: float = 3.0,
    done: Callable[[ProcRef], bool] | None = None,
) -> list[ProcRef]:
    """SIGTERM each, wait up to `grace` seconds, then SIGKILL what is left (and its group).

    `done(ref)` may report a process as finished before it exits (Azurite closes its server on
    SIGTERM but can linger); it is then killed at once. Returns the ones that had to be killed.
    """
    live = [(r, p) for r in refs if (p := r.process()) is not None]
    for _ref, proc in live:
        _signal(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    pending = list(live)
    while pending and time.monotonic() < deadline:
        still = []
        for ref, proc in pending:
            if not _running(proc):
                continue
            if done is not None and done(ref):
                _signal(proc, signal.SIGKILL)
                continue
            still.append((ref, proc))
        pending = still
        if pending:
            time.sleep(0.02)
    killed = []
    for ref, proc in pending:
        _signal(proc, signal.SIGKILL)
        killed.append(ref)
    # Children a service left in its own process group (it is the group leader) go too.
    for ref, _ in live:
        try:
            os.killpg(ref.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    # A killed process is gone once it is a zombie: its reaper may be slow (or be us).
    deadline = time.monotonic() + 2.0
    while any(_running(p) for _, p in live) and time.monotonic() < deadline:
        time.sleep(0.01)
    return killed


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal(proc: psutil.Process, sig) -> None:
    try:
        proc.send_signal(sig)
    except (psutil.NoSuchProcess, ProcessLookupError):
        pass


# -- processes started by services ------------------------------------------------------------
def register(state_dir: str | os.PathLike, key: str, pid: int) -> ProcRef:
    ref = ProcRef.of(pid, key)
    directory = Path(state_dir) / REGISTRY_DIR
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{key}.json").write_text(json.dumps(asdict(ref)))
    return ref


def unregister(state_dir: str | os.PathLike, key: str) -> None:
    (Path(state_dir) / REGISTRY_DIR / f"{key}.json").unlink(missing_ok=True)


def registered(state_dir: str | os.PathLike) -> list[ProcRef]:
    directory = Path(state_dir) / REGISTRY_DIR
    refs = []
    for path in sorted(directory.glob("*.json")) if directory.exists() else []:
        try:
            refs.append(ProcRef(**json.loads(path.read_text())))
        except (ValueError, TypeError):
            continue
    return refs
