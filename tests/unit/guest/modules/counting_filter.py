"""A test disk driver: counts the writes it sees on each disk.

The counts go to `<spill_dir>/disk<N>.json` at every flush and at close, so a test outside the
guest process can read them; in-process tests read `INSTANCES`.
"""

from __future__ import annotations

import json

from fakes.guest.blockdev import FilterDevice

INSTANCES: list[CountingFilter] = []


class CountingFilter(FilterDevice):
    def __init__(self, lower, disk_index, guest_api):
        super().__init__(lower)
        self.disk_index = disk_index
        self.api = guest_api
        self.writes = 0
        self.bytes = 0
        self.flushes = 0
        self.previous_shutdown_clean = guest_api.previous_shutdown_clean

    def write(self, offset, data):
        self.writes += 1
        self.bytes += len(data)
        self.lower.write(offset, data)

    def flush(self):
        self.flushes += 1
        self.lower.flush()
        self._spill()

    def close(self):
        self._spill()
        self.lower.close()

    def _spill(self):
        state = {
            "writes": self.writes,
            "bytes": self.bytes,
            "flushes": self.flushes,
            "boot_count": self.api.boot_count,
            "previous_shutdown_clean": self.previous_shutdown_clean,
        }
        path = self.api.spill_dir / f"disk{self.disk_index}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)


def attach(device, disk_index, guest_api):
    driver = CountingFilter(device, disk_index, guest_api)
    INSTANCES.append(driver)
    return driver
