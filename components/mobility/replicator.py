"""The agent's replication: initial copy, then the change journal, to its process server.

Follows docs/data-path.md. The filter starts tracking first, then the initial replication
plan goes to the Azure side, then each disk's allocated extents (SEEK_DATA/SEEK_HOLE, never
holes) as the initial-replication stream; once every disk's initial copy is acknowledged, the
tag `ir-complete-<epoch>` goes into the journal, and from then on the journal is drained into
differentials. Every message is written to the outbox before it is sent and removed only when
the process server acknowledges it; failures are retried with backoff, and the process
server's back-pressure (503 + Retry-After) slows the agent down.

When the change stream breaks (an unclean stop, a grown disk, an overflowing journal, a
differential refused again and again) the replicator stops sending, reports the resync as
required, and waits; a resync generation asked by the configuration server runs through
`resync_agent.ResyncRun`, after which the journal streams are that generation's.
"""

from __future__ import annotations

import logging
import threading
import time

from components.http_client import JsonClient, ServerError
from lab.kit import wire

from . import filter as disk_filter
from . import resync_agent
from .journal import MARKER, TAG_APP, TAG_CRASH, JournalTag, JournalWrite
from .outbox import AgentState, Outbox
from .resync_agent import ResyncFailed, ResyncRun, required_entry, stream_base

log = logging.getLogger(__name__)

CHUNK = 4 << 20  # bytes per message: Azurite takes 4 MiB page writes
MAX_IR_RECORDS = 2048  # records in one initial-replication message
# Differentials go out at least this often (wall seconds), or at once when a full message is
# pending: small writes travel in batches, and the replica is never staler than this.
DRAIN_SECONDS = 1.0
IDLE_MARKER_SECONDS = 2.0  # wall seconds without writes before a freshness marker is sent
BACKOFF = (0.2, 0.5, 1, 2, 5)
MAX_REJECTIONS = 3
FINAL_DRAIN_SECONDS = 30.0  # how long a clean shutdown waits for the last changes to go


class JournalOverflow(Exception):
    """The journal overflowed while a differential waited to be sent."""


class ResyncRequired(Exception):
    """The change stream cannot continue as it is (a differential the process server keeps
    refusing); replication must resynchronise."""


class Replicator:
    def __init__(self, agent, settings: dict, token: str):
        self.agent = agent
        self.api = agent.api
        self.settings = settings
        self.epoch = settings["epoch"]
        self.disks = {d["index"]: d for d in settings["disks"]}
        self.policy = settings["policy"]
        self.group = settings.get("group") if self.policy.get("multi_vm_sync") else None
        self.clock = self.api.clock
        self.ps = JsonClient(settings["process_server"]["url"], agent.ca)
        self.set_token(token)
        spill = self.api.spill_dir
        self.outbox = Outbox(spill / f"outbox-{self.epoch}")
        self.state = AgentState(
            spill / f"replication-{self.epoch}.json",
            {
                "ir": {},
                "ir_complete": False,
                "plan_sent": False,
                "tag_counter": 0,
                "last_crash": None,
                "last_app": None,
                "resync": resync_agent.initial_status(),
            },
        )
        self.state.data.setdefault("resync", resync_agent.initial_status())
        self.stop_event = threading.Event()
        self._final = threading.Event()  # a clean shutdown asks for a last point
        self._final_done = threading.Event()
        self.error: str | None = None
        self.bytes_sent = 0
        self.messages_sent = 0
        self.app_unsupported = False
        self._thread = threading.Thread(target=self._run, name="replicator", daemon=True)
        self._last_sent_at = time.monotonic()

    def set_token(self, token: str) -> None:
        self.ps.authorization = f"Agent {token}"

    def start(self) -> Replicator:
        self._thread.start()
        return self

    def stop(self, final: bool = False) -> None:
        """Stop replicating. With `final` (the guest shuts down cleanly), first put a
        crash-consistent tag `shutdown-<epoch>-<n>` into the journal and send everything up
        to it, so the last recovery point holds every write (a planned failover's point)."""
        if final and self._thread.is_alive():
            self._final.set()
            if not self._final_done.wait(FINAL_DRAIN_SECONDS):
                log.warning("the final changes were not all sent before shutdown")
        self.stop_event.set()
        self._thread.join(timeout=10)
        self.ps.close()

    def discard(self) -> None:
        """Forget this epoch's outbox and progress (replication was disabled or re-paired)."""
        for path in self.outbox.pending():
            self.outbox.done(path)
        self.state.path.unlink(missing_ok=True)
        try:
            self.outbox.dir.rmdir()
        except OSError:
            pass

    def status(self) -> dict:
        journal = disk_filter.STATE.journal
        return {
            "epoch": self.epoch,
            "initial_replication_complete": self.state.data["ir_complete"],
            "initial_replication": self.state.data["ir"],
            "journal_pending_bytes": journal.pending_bytes if journal else 0,
            "outbox_messages": len(self.outbox.pending()),
            "bytes_sent": self.bytes_sent,
            "messages_sent": self.messages_sent,
            "resync": {k: v for k, v in self.state.data["resync"].items() if k != "checked_boot"},
            "last_error": self.error,
        }

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._check_boot()
            if self.state.data["resync"]["required"] and not self._resync_asked():
                self._idle_until_resync()  # not even tracking: the resync starts afresh
                return
            journal = disk_filter.STATE.start_tracking()
            journal = self._resync_if_asked() or journal
            if self.state.data["resync"]["required"]:
                self._idle_until_resync()
                return
            self._flush_outbox()
            if not self.state.data["plan_sent"]:
                # A new pairing starts from a fresh journal: a journal kept from before (a
                # clean reboot while replication was re-enabled) belongs to no stream of it,
                # and the initial copy reads everything anyway.
                if journal.pending_entries:
                    journal = disk_filter.STATE.restart_tracking()
                self._send_plan()
            if not self.state.data["ir_complete"]:
                for index in sorted(self.disks):
                    self._initial_copy(index)
                    if self.stop_event.is_set():
                        return
                disk_filter.STATE.tag(f"ir-complete-{self.epoch}", TAG_CRASH, self.clock.time())
                self.state.data["ir_complete"] = True
                # Both schedules start at the first point (which is crash-consistent).
                self.state.data["last_crash"] = self.state.data["last_app"] = self.clock.time()
                self.state.save()
                log.info("initial replication of %d disks complete", len(self.disks))
            last_drain = last_marker = time.monotonic()
            while not self.stop_event.is_set():
                if self._final.is_set():
                    self.tag(
                        TAG_CRASH,
                        self.clock.time(),
                        self._next_tag_id(f"shutdown-{self.epoch}", self.clock.time()),
                    )
                    while journal.pending_entries and not self.stop_event.is_set():
                        self._drain(journal)
                    self._final_done.set()
                    return
                if self._stream_broken(journal):
                    self._idle_until_resync()
                    return
                self._take_tags()
                pending = journal.pending_bytes
                due = time.monotonic() - last_drain >= DRAIN_SECONDS
                if pending >= CHUNK or (pending and due):
                    # What is pending now goes, in batches that end at tags; what the guest
                    # writes meanwhile waits for the next round (chasing the journal's tail
                    # made a tiny message per send: hundreds a second under churn). A stream
                    # that breaks meanwhile (an overflow, a grown disk) is noticed between
                    # batches.
                    budget = journal.pending_entries
                    while budget > 0 and not self.stop_event.is_set():
                        budget -= self._drain(journal)
                        if self._final.is_set():
                            break
                        if self._stream_broken(journal):
                            self._idle_until_resync()
                            return
                    last_drain = time.monotonic()
                elif time.monotonic() - max(self._last_sent_at, last_marker) > IDLE_MARKER_SECONDS:
                    journal.append_marker(self.clock.time())
                    last_marker = time.monotonic()  # one per idle spell, not one per turn
                else:
                    self.stop_event.wait(0.05)
        except ResyncRequired as exc:
            self._require("change-stream-broken", sorted(self.disks), str(exc))
            log.error("replication stopped: resynchronisation required: %s", exc)
            self._idle_until_resync()
        except JournalOverflow:
            self._require("journal-overflow", sorted(self.disks))
            self._idle_until_resync()
        except InterruptedError:
            pass  # stopped while sending
        except Exception as exc:  # keep the guest alive; the agent reports the error
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("replication failed")
        finally:
            self._final_done.set()  # a shutdown never waits on a loop that has ended

    # -- resync -------------------------------------------------------------------------------
    @property
    def stream_base(self) -> str:
        return stream_base(self.epoch, self.state.data["resync"].get("journal_generation", 0))

    def _require(self, reason: str, disks, detail: str | None = None) -> None:
        """The change stream is broken: stop sending and say why (once per cause)."""
        resync = self.state.data["resync"]
        if resync["state"] == "Running":
            resync["state"] = "Failed"
            resync["error"] = f"the resync was interrupted: {resync_agent.REASONS[reason][1]}"
            resync["finished_at"] = self.clock.time()
        if not resync["required"]:
            resync["required"] = required_entry(reason, self.clock.time(), disks, detail)
        self.state.save()
        disk_filter.STATE.stop_tracking()  # nothing more is journaled until the resync
        log.warning("resync required (%s): %s", reason, resync["required"]["message"])

    def _check_boot(self) -> None:
        """Once per boot: a machine that stopped uncleanly lost its journal."""
        resync = self.state.data["resync"]
        boot = self.api.boot_count
        if resync.get("checked_boot") == boot:
            return
        resync["checked_boot"] = boot
        self.state.save()
        grown = self._grown_disks() if self.state.data["ir_complete"] else {}
        if grown:
            sizes = ", ".join(f"disk {i} to {size} bytes" for i, size in sorted(grown.items()))
            self._require("disk-resized", sorted(grown), f"({sizes})")
        if disk_filter.STATE.previous_shutdown_clean:
            return
        if not self.state.data["ir_complete"]:
            # The initial copy starts over: what it sent may be older than writes now lost.
            for progress in self.state.data["ir"].values():
                progress.update(next_offset=0, done=False)
            self.state.save()
            log.warning("unclean stop during the initial replication: copying again")
            return
        self._require("unclean-shutdown", sorted(self.disks))

    def _grown_disks(self) -> dict[int, int]:
        """Disks larger than when last copied: the filter saw them grow, or (across a reboot)
        their size says so."""
        known = self.state.data.setdefault("disk_sizes", {})
        grown = disk_filter.STATE.take_resized()
        for index in self.disks:
            size = self.disk(index).size
            if str(index) not in known:
                known[str(index)] = size
            elif size > known[str(index)]:
                grown[index] = size
        return grown

    def record_disk_sizes(self) -> None:
        """What the replica's disks now match (after the initial copy or a resync)."""
        self.state.data["disk_sizes"] = {str(i): self.disk(i).size for i in self.disks}

    def _stream_broken(self, journal) -> bool:
        if journal.overflowed:
            self._require("journal-overflow", sorted(self.disks))
            return True
        resized = self._grown_disks()
        if resized:
            sizes = ", ".join(f"disk {i} to {size} bytes" for i, size in sorted(resized.items()))
            self._require("disk-resized", sorted(resized), f"({sizes})")
            return True
        return False

    def _resync_asked(self) -> bool:
        """The settings ask for a resync generation not run yet (or one still running)."""
        wanted = int(self.settings.get("resync_generation") or 0)
        resync = self.state.data["resync"]
        if wanted <= 0 or wanted < resync["generation"]:
            return False
        # Done or failed: a new generation is needed to try again.
        return wanted > resync["generation"] or resync["state"] == "Running"

    def _resync_if_asked(self):
        """Run the resync generation the settings ask for, if not run yet; returns the new
        journal when it ran."""
        if not self._resync_asked():
            return None
        wanted = int(self.settings["resync_generation"])
        resync = self.state.data["resync"]
        if not self.state.data["ir_complete"]:
            resync["required"] = None  # the initial copy brings everything over anyway
            self.state.save()
            return None
        try:
            ResyncRun(self, wanted).run()
        except ResyncFailed as exc:
            resync.update(state="Failed", error=str(exc), finished_at=self.clock.time())
            if not resync["required"]:
                resync["required"] = required_entry(
                    "change-stream-broken", self.clock.time(), sorted(self.disks), str(exc)
                )
            self.state.save()
            disk_filter.STATE.stop_tracking()
            log.error("resync %d failed: %s", wanted, exc)
            return None
        return disk_filter.STATE.journal

    def _idle_until_resync(self) -> None:
        """Send nothing more (a new setting restarts the replicator)."""
        self._final_done.set()  # a clean shutdown has nothing to wait for
        self.stop_event.wait()

    def note_sent(self) -> None:
        """Something just reached the process server (no freshness marker is due)."""
        self._last_sent_at = time.monotonic()

    # -- sending ------------------------------------------------------------------------------
    def _send(self, body: bytes) -> None:
        """Send one encoded message until the process server acknowledges it."""
        attempt = rejections = 0
        while not self.stop_event.is_set():
            try:
                self.ps.call(
                    "POST",
                    "/v1/differentials",
                    data=body,
                    headers={"Content-Type": "application/octet-stream"},
                )
                self.bytes_sent += len(body)
                self.messages_sent += 1
                self._last_sent_at = time.monotonic()
                self.error = None
                return
            except ServerError as exc:
                self.error = str(exc)
                if exc.status == 400:  # the process server found it damaged
                    rejections += 1
                    if rejections >= MAX_REJECTIONS:
                        raise ResyncRequired(str(exc)) from exc
                    wait = 0.1
                elif exc.status == 503 and exc.retry_after:
                    wait = exc.retry_after  # back-pressure: the cache is full
                else:
                    wait = BACKOFF[min(attempt, len(BACKOFF) - 1)]
                    attempt += 1
                log.info("send refused or failed (retrying in %.1f s): %s", wait, exc)
                if disk_filter.STATE.overflowed:
                    # Said at once (the heartbeat goes to the configuration server, not
                    # through this link): the stream is broken whatever this send does.
                    raise JournalOverflow() from exc
                self.stop_event.wait(wait)
        raise InterruptedError("stopped")

    def _flush_outbox(self) -> None:
        for path in self.outbox.pending():
            self._send(path.read_bytes())
            self.outbox.done(path)

    def _post_record(self, body: dict) -> None:
        attempt = 0
        while not self.stop_event.is_set():
            try:
                self.ps.call("POST", "/v1/manifests", body)
                return
            except ServerError as exc:
                self.error = str(exc)
                wait = exc.retry_after or BACKOFF[min(attempt, len(BACKOFF) - 1)]
                attempt += 1
                self.stop_event.wait(wait)
        raise InterruptedError("stopped")

    def _ship(self, message: wire.Message, durable: bool = True) -> None:
        body = wire.encode(message)
        if not durable:
            # Initial-replication extents can be read from the disk again after a restart
            # (progress is kept by offset): they need no copy in the outbox.
            self._send(body)
            return
        path = self.outbox.put(body)
        self._send(body)
        self.outbox.done(path)

    # -- initial replication ----------------------------------------------------------------
    def disk(self, index: int):
        return disk_filter.STATE.disks[index]

    def _send_plan(self) -> None:
        self.record_disk_sizes()
        disks = []
        for index, d in sorted(self.disks.items()):
            extents = self.disk(index).allocated_extents()
            disks.append(
                {
                    "index": index,
                    "disk_id": d["disk_id"],
                    "size": self.disk(index).size,
                    "allocated": sum(length for _, length in extents),
                }
            )
        self._post_record(
            {
                "kind": "ir-plan",
                "vm_id": self.api.vm_id,
                "epoch": self.epoch,
                "protected_item": self.settings["protected_item"],
                "lab_time": self.clock.time(),
                "disks": disks,
            }
        )
        self.state.data["plan_sent"] = True
        self.state.save()

    def _initial_copy(self, index: int) -> None:
        disk = self.disk(index)
        progress = self.state.data["ir"].setdefault(
            str(index), {"next_offset": 0, "seq": 0, "done": False, "bytes": 0}
        )
        if progress["done"]:
            return
        stream = f"{self.epoch}-{index}-ir"
        # Pieces go together up to CHUNK bytes a message: a disk written in scattered small
        # pieces has thousands of extents, and a message (a log: fsync, upload, apply) each
        # made its initial replication crawl.
        batches = list(_batches(_chunks(disk.allocated_extents(), progress["next_offset"])))
        if not batches:
            batches = [[]]  # an empty disk still ends its pass
        for i, batch in enumerate(batches):
            if self.stop_event.is_set():
                return
            last = i == len(batches) - 1
            records = tuple(
                wire.Record(offset, disk.read(offset, length)) for offset, length in batch
            )
            flags = wire.Flags.INITIAL_REPLICATION | (wire.Flags.END_OF_PASS if last else 0)
            seq = progress["seq"] + 1
            self._ship(
                wire.Message(
                    self.api.vm_id,
                    stream,
                    seq,
                    seq,
                    disk.size,
                    records,
                    flags=flags,
                    captured_at=self.clock.time(),
                ),
                durable=False,
            )
            progress["seq"] = seq
            if batch:
                progress["next_offset"] = batch[-1][0] + batch[-1][1]
                progress["bytes"] += sum(length for _, length in batch)
            progress["done"] = last
            self.state.save()

    # -- tags ---------------------------------------------------------------------------------
    def _take_tags(self) -> None:
        if self.group:
            return  # the configuration server coordinates the group's tags
        now = self.clock.time()
        data = self.state.data
        crash_every = self.policy["crash_consistent_minutes"] * 60
        app_every = self.policy["app_consistent_minutes"] * 60
        app_due = app_every and now - (data["last_app"] or now) >= app_every
        if app_due and not self.app_unsupported and self._app_tag(now):
            data["last_app"] = data["last_crash"] = now
            self.state.save()
            return
        if now - (data["last_crash"] or now) >= crash_every:
            self.tag(TAG_CRASH, now)
            data["last_crash"] = now
            self.state.save()

    def _next_tag_id(self, prefix: str, now: float) -> str:
        self.state.data["tag_counter"] += 1
        return f"{prefix}-{int(now)}-{self.state.data['tag_counter']}"

    def tag(self, kind: str, now: float, tag_id: str | None = None, group: str | None = None):
        tag_id = tag_id or self._next_tag_id("cc" if kind == TAG_CRASH else "ac", now)
        return disk_filter.STATE.tag(tag_id, kind, now, group)

    def _app_tag(self, now: float) -> bool:
        try:
            with self.api.quiesce(timeout=10):
                self.tag(TAG_APP, now)
            return True
        except Exception as exc:  # no VSS-capable application: crash-consistent points only
            log.info("no app-consistent recovery points for this VM: %s", exc)
            self.app_unsupported = True
            return False

    # -- the journal --------------------------------------------------------------------------
    def _drain(self, journal) -> int:
        """Send one batch of the journal (up to CHUNK bytes or a tag); returns its entries."""
        entries = journal.take(max_bytes=CHUNK, stop_at_tag=True)
        if not entries:
            return 0
        captured = self.clock.time()
        manifest = None
        for index in sorted(self.disks):
            message = _message(
                self.api.vm_id,
                f"{self.stream_base}-{index}",
                index,
                entries,
                self.disk(index).size,
                captured,
            )
            if message is not None:
                self._ship(message)
        for entry in entries:
            if isinstance(entry, JournalTag) and entry.kind != MARKER:
                manifest = disk_filter.STATE.pop_manifest(entry)
                if manifest is not None:
                    self._post_record(_manifest_record(self.api.vm_id, self.epoch, entry, manifest))
        return len(entries)


def _message(vm_id, stream, index, entries, size, captured) -> wire.Message | None:
    """The part of a batch of journal entries that belongs to one disk."""
    records, tags, seqs = [], [], []
    for entry in entries:
        if isinstance(entry, JournalWrite):
            if entry.disk == index:
                records.append(wire.Record(entry.offset, entry.data))
                seqs.append(entry.seq)
        elif index in entry.seqs:
            seqs.append(entry.seqs[index])
            if entry.kind != MARKER:
                kind = (
                    wire.TagKind.APP_CONSISTENT
                    if entry.kind == TAG_APP
                    else wire.TagKind.CRASH_CONSISTENT
                )
                tags.append(wire.Tag(len(records), kind, entry.tag_id, entry.lab_time, entry.group))
    if not seqs:
        return None
    return wire.Message(
        vm_id, stream, min(seqs), max(seqs), size, tuple(records), tuple(tags), captured_at=captured
    )


def _manifest_record(vm_id: str, epoch: str, tag: JournalTag, manifest: dict) -> dict:
    return {
        "kind": "manifest",
        "vm_id": vm_id,
        "epoch": epoch,
        "tag_id": tag.tag_id,
        "block_size": disk_filter.DIGEST_BLOCK,
        "disks": {
            str(disk): {str(block): digest.hex() for block, digest in digests.items()}
            for disk, digests in manifest.items()
        },
    }


def _batches(chunks, limit: int = CHUNK, max_records: int = MAX_IR_RECORDS):
    """Consecutive pieces grouped into messages of at most `limit` bytes and `max_records`."""
    batch, size = [], 0
    for offset, length in chunks:
        if batch and (size + length > limit or len(batch) >= max_records):
            yield batch
            batch, size = [], 0
        batch.append((offset, length))
        size += length
    if batch:
        yield batch


def _chunks(extents, start: int):
    """(offset, length) pieces of at most CHUNK bytes of the extents, from `start` on."""
    for offset, length in extents:
        end = offset + length
        pos = max(offset, start)
        while pos < end:
            size = min(CHUNK, end - pos)
            yield pos, size
            pos += size
