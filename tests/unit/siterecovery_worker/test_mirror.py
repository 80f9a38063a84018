"""The worker's mirrored seed disks: a snapshot holds every write before it, even while
another flush of the same disk is still sending (slowly, or failing: storage restarting)."""

from __future__ import annotations

import threading

import pytest

from fakes.azure.siterecovery.worker.mirror import MirroredSeedDisks
from tests.unit.siterecovery_worker.memory import MemorySeeds

BLOB = "asrseeddisk-vm-e1-0"
SIZE = 8 << 20


class SlowSeeds(MemorySeeds):
    """Page writes of the first flush wait until released; `fail` makes them fail then."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.hold = True
        self.fail = False

    def page_ranges(self, blob):
        return []

    def write(self, blob, offset, data):
        if self.hold:
            self.entered.set()
            assert self.release.wait(30), "the test never released the write"
            if self.fail:
                raise ConnectionError("storage is restarting")
        super().write(blob, offset, data)


@pytest.mark.parametrize("fail", [False, True])
def test_a_snapshot_waits_for_a_flush_still_sending(tmp_path, fail):
    backend = SlowSeeds()
    backend.fail = fail
    seeds = MirroredSeedDisks(backend, tmp_path / "mirror")
    seeds.create(BLOB, SIZE)
    seeds.write(BLOB, 0, b"a" * 4096)  # before the tag

    errors = []

    def periodic_flush():
        try:
            seeds.flush(BLOB)
        except ConnectionError as exc:
            errors.append(exc)

    flusher = threading.Thread(target=periodic_flush)
    flusher.start()
    assert backend.entered.wait(10)
    snapshots = []
    snapper = threading.Thread(target=lambda: snapshots.append(seeds.snapshot(BLOB)))
    snapper.start()
    snapper.join(timeout=1.0)  # a snapshot that does not wait would be done by now
    backend.hold = False
    backend.release.set()
    flusher.join(10)
    snapper.join(10)
    assert not flusher.is_alive() and not snapper.is_alive()
    assert len(errors) == (1 if fail else 0)  # a failed flush's ranges are sent again
    (snap,) = snapshots
    assert backend.snapshots[(BLOB, snap)][:4096] == b"a" * 4096
