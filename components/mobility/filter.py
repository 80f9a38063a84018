"""The mobility service's disk filter: a guest driver in every disk's write path.

`attach(device, disk_index, guest_api)` is the driver entry point the guest OS calls at boot
for each disk. Each write lands on the disk below and, while the VM is being tracked, is
appended in write order to the VM's change journal; one VM-wide lock covers both steps and the
tags, so a tag is an exact instant on every disk of the VM. Nothing is tracked until the agent
starts tracking (when replication begins): an unprotected VM costs nothing.

Verify mode (the lab's proof that a recovery point equals the source): the filter keeps a
digest of every non-zero 64 KiB block, updated on each write, and at each tag keeps a copy —
the manifest of the source disk at that instant. It costs a read-back of the touched blocks per
write; it is meant for drills and tests, and can be turned off in the driver's settings.

A hard power-off loses the journal (it is memory and a spill file, as the real filter's
memory); the next boot knows (`previous_shutdown_clean`), and the agent must resynchronise.
So must it when the journal overflows (`journal_limit_mb` of spill: the agent could not send
for too long) or a disk grows (`resized`). A resync starts a fresh journal (`restart_tracking`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading

from .journal import ChangeJournal, JournalTag

log = logging.getLogger(__name__)

DIGEST_BLOCK = 64 << 10
_ZERO_BLOCK = bytes(DIGEST_BLOCK)


def block_digest(data: bytes) -> bytes | None:
    """The digest of one block, or None for an all-zero block (a hole is zeros)."""
    if data == _ZERO_BLOCK[: len(data)]:
        return None
    return hashlib.blake2b(data, digest_size=16).digest()


class FilterState:
    """The filter of one VM (one guest process): its disks, journal and digests."""

    def __init__(self):
        self.lock = threading.RLock()
        self.disks: dict[int, MobilityFilter] = {}
        self.journal: ChangeJournal | None = None
        self.verify_mode = True
        self.previous_shutdown_clean = True
        self.spill_dir = None
        self.memory_limit = 32 << 20
        self.spill_limit = 512 << 20
        self.digests: dict[int, dict[int, bytes]] = {}
        self.manifests: dict[str, dict[int, dict[int, bytes]]] = {}
        self.resized: dict[int, int] = {}  # disk -> new size, until the agent takes it
        self._configured = False

    def configure(self, guest_api) -> None:
        with self.lock:
            if self._configured:
                return
            settings = guest_api.settings
            self.verify_mode = bool(settings.get("verify_mode", True))
            self.memory_limit = int(settings.get("journal_memory_mb", 32)) << 20
            self.spill_limit = int(settings.get("journal_limit_mb", 512)) << 20
            self.previous_shutdown_clean = guest_api.previous_shutdown_clean
            self.spill_dir = guest_api.spill_dir
            self._configured = True
            # Tracking resumes at boot, before anything else writes: the agent starts later,
            # and writes made before it would otherwise be in no journal.
            self._resume_saved()

    @property
    def tracking(self) -> bool:
        return self.journal is not None

    # -- the agent's controls ---------------------------------------------------------------
    @property
    def saved_path(self):
        return self.spill_dir / "journal.saved"

    def start_tracking(self) -> ChangeJournal:
        """Begin journaling every write (replication starts). Idempotent. After a clean
        shutdown the journal kept then is picked up where it was."""
        with self.lock:
            if self.journal is None:
                self._resume_saved()
            if self.journal is None:
                self._new_journal()
                self.saved_path.unlink(missing_ok=True)
            return self.journal

    def _resume_saved(self) -> None:
        """Pick up the journal a clean shutdown kept (an unclean one's is gone for good)."""
        if not self.saved_path.exists():
            return
        if self.previous_shutdown_clean:
            spill = self.spill_dir / "journal.spill"
            self.journal, extra = ChangeJournal.restore(
                self.saved_path, spill, self.memory_limit, self.spill_limit
            )
            self.digests = {
                int(disk): {int(b): bytes.fromhex(h) for b, h in blocks.items()}
                for disk, blocks in extra.get("digests", {}).items()
            }
            log.info(
                "tracking resumed with %d journaled entries kept at shutdown",
                self.journal.pending_entries,
            )
        self.saved_path.unlink(missing_ok=True)

    def _new_journal(self) -> None:
        spill = self.spill_dir / "journal.spill"
        self.journal = ChangeJournal(sorted(self.disks), spill, self.memory_limit, self.spill_limit)
        self.manifests = {}
        if self.verify_mode:
            self.digests = {i: d.scan_digests() for i, d in self.disks.items()}
        log.info("tracking changes on %d disks", len(self.disks))

    def restart_tracking(self) -> ChangeJournal:
        """A fresh journal from this instant (a resync begins): what the old one held, or
        lost, is the resync's to bring over."""
        with self.lock:
            if self.journal is not None:
                self.journal.close()
            self.saved_path.unlink(missing_ok=True)
            self._new_journal()
            return self.journal

    @property
    def overflowed(self) -> bool:
        journal = self.journal
        return journal is not None and journal.overflowed

    def keep_for_next_boot(self) -> None:
        """At a clean shutdown: save the journal (and digests) so nothing written is lost."""
        with self.lock:
            if self.journal is None:
                return
            digests = {
                str(disk): {str(b): d.hex() for b, d in blocks.items()}
                for disk, blocks in self.digests.items()
            }
            kept = self.journal.save(self.saved_path, {"digests": digests})
            self.journal.close()
            self.journal = None
            log.info("journal kept for the next boot (%d entries)", kept)

    def stop_tracking(self) -> None:
        with self.lock:
            if self.journal is not None:
                self.journal.close()
            self.journal = None
            self.digests = {}
            self.manifests = {}

    def tag(self, tag_id: str, kind: str, lab_time: float, group: str | None = None):
        """Insert a tag on every disk at this instant; in verify mode keep the manifest."""
        with self.lock:
            if self.journal is None:
                raise RuntimeError("not tracking: there is nothing to tag")
            tag = self.journal.append_tag(tag_id, kind, lab_time, group)
            if self.verify_mode:
                self.manifests[tag_id] = {disk: dict(d) for disk, d in self.digests.items()}
            return tag

    @contextlib.contextmanager
    def hold_writes(self):
        """Hold every write of the VM (a multi-VM barrier) while the block runs; a tag taken
        inside it by the same thread goes in at that instant."""
        with self.lock:
            yield

    def pop_manifest(self, tag: JournalTag) -> dict[int, dict[int, bytes]] | None:
        with self.lock:
            return self.manifests.pop(tag.tag_id, None)

    def take_resized(self) -> dict[int, int]:
        with self.lock:
            resized, self.resized = self.resized, {}
            return resized

    # -- the write path ---------------------------------------------------------------------
    def record(self, disk: MobilityFilter, offset: int, data: bytes) -> None:
        """Called with the lock held, after the write reached the disk below."""
        if self.journal is None:
            return
        self.journal.append_write(disk.index, offset, data)
        if self.verify_mode:
            digests = self.digests.setdefault(disk.index, {})
            first = offset // DIGEST_BLOCK
            last = (offset + len(data) - 1) // DIGEST_BLOCK
            for block in range(first, last + 1):
                digest = disk.digest_of(block)
                if digest is None:
                    digests.pop(block, None)
                else:
                    digests[block] = digest


STATE = FilterState()


class MobilityFilter:
    """One disk's filter device: the same operations as the device below it."""

    def __init__(self, lower, index: int, state: FilterState):
        self.lower = lower
        self.index = index
        self.state = state

    @property
    def size(self) -> int:
        return self.lower.size

    def read(self, offset: int, length: int) -> bytes:
        return self.lower.read(offset, length)

    def write(self, offset: int, data: bytes) -> None:
        with self.state.lock:
            self.lower.write(offset, data)
            self.state.record(self, offset, data)

    def flush(self) -> None:
        self.lower.flush()

    def resize(self, new_size: int) -> None:
        with self.state.lock:
            self.lower.resize(new_size)
            self.state.resized[self.index] = new_size

    def close(self) -> None:
        # Only a clean shutdown closes disks (a hard power-off calls nothing): keep the
        # journal then, once, before the first disk goes.
        self.state.keep_for_next_boot()
        self.lower.close()

    # -- for the agent ----------------------------------------------------------------------
    def allocated_extents(self) -> list[tuple[int, int]]:
        """(offset, length) of the data the disk holds (SEEK_DATA/SEEK_HOLE below us)."""
        extents = getattr(self.lower, "allocated_extents", None)
        if extents is None:
            return [(0, self.size)]
        return extents()

    def digest_of(self, block: int) -> bytes | None:
        start = block * DIGEST_BLOCK
        length = min(DIGEST_BLOCK, self.size - start)
        return block_digest(self.lower.read(start, length))

    def scan_digests(self) -> dict[int, bytes]:
        digests = {}
        for offset, length in self.allocated_extents():
            first = offset // DIGEST_BLOCK
            last = (offset + length - 1) // DIGEST_BLOCK
            for block in range(first, last + 1):
                digest = self.digest_of(block)
                if digest is not None:
                    digests[block] = digest
        return digests


def attach(device, disk_index: int, guest_api) -> MobilityFilter:
    """Driver entry point: filter one disk of this guest."""
    STATE.configure(guest_api)
    with STATE.lock:
        flt = MobilityFilter(device, disk_index, STATE)
        STATE.disks[disk_index] = flt
        if STATE.journal is not None:  # a disk attached while tracking joins the journal
            STATE.journal.add_disk(disk_index)
        return flt
