"""The lab clock: one clock per lab, shared by every process of that lab.

Lab time = base + speed x (wall seconds since the base was set). A jump moves the base forward;
a speed change re-bases at the current lab time so that lab time never goes backwards. The
state lives in one small JSON file in the lab's state directory, replaced atomically, and each
process re-reads it when the file changes, so `drlab clock jump 2h` reaches every service.

Every time rule of the lab (recovery-point intervals, retention, RPO, heartbeat expiry, the
off-hours resync window) reads this clock. Token lifetimes and TLS certificates do not: the
clients that check them (MSAL, Azurite, OpenSSL) use the wall clock.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

CLOCK_FILE = "clock.json"

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str) -> float:
    """'90s', '15m', '2h', '1d', '1h30m' or a plain number of seconds -> seconds."""
    text = text.strip().lower()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 1d, 1h30m)")
    return total


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return "".join(parts)


@dataclass(frozen=True)
class ClockState:
    base_lab: float  # lab epoch seconds at base_wall
    base_wall: float  # wall epoch seconds when the base was set
    speed: float
    jumped: float = 0.0  # total of all jumps, for display

    def at(self, wall: float) -> float:
        return self.base_lab + self.speed * (wall - self.base_wall)


class LabClock:
    """Reads (and, for the CLI and launcher, changes) a lab's clock file."""

    def __init__(self, path: str | os.PathLike, wall=time.time):
        self.path = Path(path)
        self._wall = wall
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._state: ClockState | None = None

    # -- creation -----------------------------------------------------------------------------
    @classmethod
    def start(cls, path, speed: float = 1.0, wall=time.time) -> LabClock:
        """Set the clock for a lab that is coming up; lab time continues from a previous run."""
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        clock = cls(path, wall)
        now = wall()
        base = now
        if clock.path.exists():
            try:
                base = max(now, clock.state().at(now))
            except (OSError, ValueError, KeyError):
                base = now
        clock._write(ClockState(base_lab=base, base_wall=now, speed=float(speed)))
        return clock

    # -- reading ------------------------------------------------------------------------------
    def state(self) -> ClockState:
        st = os.stat(self.path)
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp or self._state is None:
                data = json.loads(self.path.read_text())
                self._state = ClockState(**data)
                self._stamp = stamp
            return self._state

    def time(self) -> float:
        """Lab time as epoch seconds."""
        return self.state().at(self._wall())

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    @property
    def speed(self) -> float:
        return self.state().speed

    def lab_to_wall_seconds(self, lab_seconds: float) -> float:
        return lab_seconds / self.speed

    def sleep(self, lab_seconds: float, stop: threading.Event | None = None) -> bool:
        """Sleep for a span of lab time; wakes early on a jump. Returns False if stopped."""
        return self.sleep_until(self.time() + lab_seconds, stop)

    def sleep_until(self, lab_time: float, stop: threading.Event | None = None) -> bool:
        stop = stop or threading.Event()
        while True:
            remaining = lab_time - self.time()
            if remaining <= 0:
                return True
            # Short real slices so a jump or speed change is noticed promptly.
            if stop.wait(min(remaining / self.speed, 0.25)):
                return False

    # -- changing -----------------------------------------------------------------------------
    def jump(self, seconds: float) -> ClockState:
        if seconds < 0:
            raise ValueError("the lab clock only moves forward")
        s = self.state()
        return self._write(
            ClockState(s.base_lab + seconds, s.base_wall, s.speed, s.jumped + seconds)
        )

    def set_speed(self, speed: float) -> ClockState:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        now = self._wall()
        s = self.state()
        return self._write(ClockState(s.at(now), now, float(speed), s.jumped))

    def _write(self, state: ClockState) -> ClockState:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(asdict(state)))
        os.replace(tmp, self.path)
        with self._lock:
            self._stamp = None
        return state

    def describe(self) -> dict:
        s = self.state()
        now = self._wall()
        lab = s.at(now)
        return {
            "lab_time": datetime.fromtimestamp(lab, UTC).isoformat(),
            "lab_epoch": lab,
            "speed": s.speed,
            "ahead_of_wall_seconds": lab - now,
            "jumped_seconds": s.jumped,
        }
