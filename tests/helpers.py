"""Test helpers: waiting on conditions with deadlines (never bare sleeps), lab process checks."""

from __future__ import annotations

import time

import psutil


def wait_for(condition, timeout: float = 30.0, interval: float = 0.05, message: str = ""):
    """Poll `condition()` until it returns a truthy value; fail with `message` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            what = message or condition
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int, started: float | None = None) -> bool:
    try:
        proc = psutil.Process(pid)
        if started is not None and abs(proc.create_time() - started) > 0.05:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def port_listening(port: int) -> bool:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            return True
    return False
