"""Automatic resync in the off-hours window: the vault starts a Resynchronize job for an item
whose mobility agent reports that it needs one, but only inside the topology's window of lab
time (`replication.resync_window`, UTC, may wrap midnight), as the real service does "outside
office hours".

An item is due when: automatic resync is on (`replication.automatic_resync`), lab time is in
the window, the item is Protected, its agent's last reported `resync.required` is set and its
`resync.state` is not Running, the report is not older than the item's last resync (its
generation is not behind `lastResync.generation`), no resync job of the item is open, and no
automatic resync of it failed since this window opened (a failed one is tried again when the
next window opens; a person may always ask for one).

`in_window` and `window_opened_at` are pure functions of a lab time; `ResyncScheduler.tick`
does one pass (tests call it), `start()` runs it every few wall seconds in a thread of the ARM
process. Lab time is the lab clock's, so `drlab clock jump` reaches the window.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from fakes.azure.arm.errors import ArmError

from . import resync

log = logging.getLogger(__name__)

DEFAULT_WINDOW = ("22:00", "06:00")
TICK_SECONDS = 2.0  # wall seconds between two passes


def minutes_of(hhmm: str) -> int:
    """'HH:MM' -> minutes after midnight."""
    hours, _, minutes = hhmm.partition(":")
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 23 and 0 <= m <= 59) or len(minutes) != 2:
        raise ValueError(f"not a time of day HH:MM: {hhmm!r}")
    return h * 60 + m


def _minute_of_day(t: float) -> float:
    dt = datetime.fromtimestamp(t, UTC)
    return dt.hour * 60 + dt.minute + (dt.second + dt.microsecond / 1e6) / 60


def in_window(t: float, start: str, end: str) -> bool:
    """Is lab time `t` (epoch seconds) in the daily window [start, end) (UTC)? The window wraps
    midnight when end is before start; start == end is the whole day."""
    s, e = minutes_of(start), minutes_of(end)
    now = _minute_of_day(t)
    if s == e:
        return True
    if s < e:
        return s <= now < e
    return now >= s or now < e


def window_opened_at(t: float, start: str, end: str) -> float | None:
    """When the window `t` is in opened (epoch seconds), or None outside the window."""
    if not in_window(t, start, end):
        return None
    s = minutes_of(start)
    day = datetime.fromtimestamp(t, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    opened = day + timedelta(minutes=s)
    if opened.timestamp() > t:  # a window that wrapped midnight opened yesterday
        opened -= timedelta(days=1)
    return opened.timestamp()


class ResyncScheduler:
    def __init__(
        self,
        vault,
        *,
        automatic: bool = True,
        window: tuple[str, str] = DEFAULT_WINDOW,
        tick_seconds: float = TICK_SECONDS,
    ):
        for hhmm in window:
            minutes_of(hhmm)
        self.vault = vault
        self.automatic = automatic
        self.window = window
        self.tick_seconds = tick_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_topology(cls, vault, topology: dict) -> ResyncScheduler:
        """From the topology's `replication` section (its defaults when there is none)."""
        replication = topology.get("replication") or {}
        window = replication.get("resync_window") or {}
        return cls(
            vault,
            automatic=replication.get("automatic_resync", True),
            window=(window.get("start", DEFAULT_WINDOW[0]), window.get("end", DEFAULT_WINDOW[1])),
        )

    # -- one pass -----------------------------------------------------------------------------
    def due(self, now: float) -> list[dict]:
        """The protected items an automatic resync should start for now."""
        if not self.automatic:
            return []
        opened = window_opened_at(now, *self.window)
        if opened is None:
            return []
        out = []
        for doc in self.vault.store.docs("protected_items", "", (), "fabric, container, name"):
            if doc["protectionState"] != "Protected":
                continue
            status = resync.agent_resync(self.vault, doc)
            if not resync.resync_required(status) or status.get("state") == "Running":
                continue
            # A report from before the last resync finished still says "required".
            last = doc.get("lastResync") or {}
            if (status.get("generation") or 0) < (last.get("generation") or 0):
                continue
            failed = doc.get("automaticResyncFailedAt")
            if failed is not None and failed >= opened:
                continue
            if resync.running_job(self.vault, doc) is not None:
                continue
            out.append(doc)
        return out

    def tick(self) -> list[dict]:
        """Start the due resyncs; returns the jobs started."""
        started = []
        for doc in self.due(self.vault.clock.time()):
            try:
                job = resync.start_repair(self.vault, doc, automatic=True)
            except ArmError as exc:  # changed meanwhile (disabled, a job started): next pass
                log.info("automatic resync of %s not started: %s", doc["friendlyName"], exc)
                continue
            log.info(
                "automatic resync of %s started (job %s): %s",
                doc["friendlyName"],
                job["name"],
                (resync.agent_resync(self.vault, doc).get("required") or {}).get("reason"),
            )
            started.append(job)
        return started

    # -- the thread ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="resync-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                self.tick()
            except Exception:  # the database may be busy or reset: next pass
                log.exception("automatic resync pass failed")
