"""The drill runner: steps with narration, checks, figures, and a short report.

A `Drill` is what a scenario's `run(drill)` gets: the lab (its state directory and lab.json),
clients (`drill.asr` for Site Recovery through the SDK), `step(title)` to narrate and time a
step, `check(condition, what)` to fail the drill with a clear message, `wait_for(condition,
timeout, what)` to wait with a deadline (never a bare sleep), and `figure(name, value)` for
the report. A drill may speed the lab clock up: the runner sets it back afterwards.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.kit.clock import LabClock
from lab.kit.labinfo import read_lab


class DrillFailed(Exception):
    """A check of the drill did not hold; the message says which and why."""


@dataclass
class StepResult:
    title: str
    seconds: float = 0.0
    ok: bool = True
    notes: list[str] = field(default_factory=list)


class Narrator:
    """Where narration goes (the CLI prints it; tests collect it)."""

    def step(self, title: str) -> None: ...
    def say(self, text: str) -> None: ...
    def done(self, result: StepResult) -> None: ...


class Drill:
    def __init__(self, state_dir: str | Path, narrator: Narrator | None = None):
        self.state_dir = Path(state_dir)
        self.lab = read_lab(self.state_dir)
        self.narrator = narrator or Narrator()
        self.steps: list[StepResult] = []
        self.figures: dict[str, object] = {}
        self.clock = LabClock(self.state_dir / "clock.json")
        self._asr = None

    @property
    def asr(self):
        if self._asr is None:
            from lab.asr import Asr

            self._asr = Asr(self.state_dir)
        return self._asr

    def close(self) -> None:
        if self._asr is not None:
            self._asr.close()

    # -- narration ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def step(self, title: str):
        result = StepResult(title)
        self.steps.append(result)
        self.narrator.step(title)
        t0 = time.monotonic()
        try:
            yield result
        except BaseException:
            result.ok = False
            raise
        finally:
            result.seconds = time.monotonic() - t0
            self.narrator.done(result)

    def say(self, text: str) -> None:
        if self.steps:
            self.steps[-1].notes.append(text)
        self.narrator.say(text)

    def figure(self, name: str, value) -> None:
        self.figures[name] = value

    # -- checks -------------------------------------------------------------------------------
    def check(self, condition, what: str) -> None:
        if not condition:
            raise DrillFailed(what)

    def wait_for(self, condition, timeout: float, what: str, interval: float = 0.2):
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise DrillFailed(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)  # polling the lab with a deadline

    # -- the report ---------------------------------------------------------------------------
    def report(self, name: str, ok: bool, error: str | None = None) -> dict:
        return {
            "scenario": name,
            "ok": ok,
            "error": error,
            "seconds": round(sum(s.seconds for s in self.steps), 2),
            "steps": [asdict(s) | {"seconds": round(s.seconds, 2)} for s in self.steps],
            "figures": self.figures,
        }


def run_scenario(name: str, state_dir, narrator: Narrator | None = None) -> dict:
    """Run one scenario against the lab in `state_dir`; returns its report (never raises for
    a failed check: the report says what failed)."""
    from scenarios import load

    module = load(name)
    drill = Drill(state_dir, narrator)
    speed = drill.clock.speed  # drills speed the clock up; the lab gets its own speed back
    try:
        module.run(drill)
        return drill.report(module.NAME, True)
    except DrillFailed as exc:
        return drill.report(module.NAME, False, str(exc))
    finally:
        drill.clock.set_speed(speed)
        drill.close()


def dump(report: dict) -> str:
    return json.dumps(report, indent=2, default=str)
