"""The worker's tunables, kept in its progress database so a restart keeps what a test set
(`PUT /_lab/settings`); `/_lab/reset` puts the defaults back."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from .errors import BadRequest


@dataclass
class Settings:
    schedule_interval: float = 0.5  # wall seconds between passes over the VMs and their disks
    status_interval: float = 2.0  # wall seconds between RPO and progress refreshes
    janitor_interval: float = 5.0  # wall seconds between retention, stale-log and catch-up passes
    plan_interval: float = 2.0  # wall seconds between looks for a new epoch of an adopted VM
    gap_grace_seconds: float = 30.0  # a missing log becomes a health error after this long
    retry_seconds: float = 1.0  # wait after a failed run of a disk before the next

    @classmethod
    def load(cls, progress) -> Settings:
        raw = progress.meta("settings")
        settings = cls()
        if raw:
            settings.update(json.loads(raw), persist=None)
        return settings

    def update(self, values: dict, persist=None) -> Settings:
        if not isinstance(values, dict):
            raise BadRequest("settings are a JSON object")
        known = {f.name: f for f in fields(self)}
        unknown = set(values) - set(known)
        if unknown:
            raise BadRequest(f"unknown settings: {', '.join(sorted(unknown))}")
        for name, value in values.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise BadRequest(f"setting {name} must be a number") from None
            if not 0 < number <= 3600:
                raise BadRequest(f"setting {name} must be between 0 and 3600 seconds")
            setattr(self, name, number)
        if persist is not None:
            persist.set_meta("settings", json.dumps(asdict(self)))
        return self

    def reset(self, persist) -> None:
        for f in fields(self):
            setattr(self, f.name, f.default)
        persist.set_meta("settings", None)

    def to_json(self) -> dict:
        return asdict(self)
