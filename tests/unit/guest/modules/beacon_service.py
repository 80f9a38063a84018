"""A test service: records in its spill directory when it started and how it was stopped."""

from __future__ import annotations

import json


class Beacon:
    def __init__(self, api):
        self.api = api
        self._write(
            "started",
            {
                "boot_count": api.boot_count,
                "previous_shutdown_clean": api.previous_shutdown_clean,
                "settings": api.settings,
                "disks": len(api.disks),
            },
        )

    def stop(self, clean: bool) -> None:
        self._write("stopped", {"clean": clean, "boot_count": self.api.boot_count})

    def _write(self, name, data):
        (self.api.spill_dir / f"{name}.json").write_text(json.dumps(data))


def start(guest_api):
    return Beacon(guest_api)
