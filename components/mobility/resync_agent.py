"""The agent's side of a resync: when one is needed, and how one generation runs.

A resync is needed when the change stream has a hole the journal cannot fill: the machine
stopped uncleanly (the filter's journal was lost), a disk grew, the journal overflowed while
changes could not be sent (a cut link, a full process server), or the process server kept
refusing a differential. The agent then stops sending differentials (they could not make a
consistent replica), reports `required` with the reason, and waits to be told to resync.

Resync generation g (asked by the configuration server's settings, `resync_generation`):

1. a fresh journal from this instant (writes during the resync are sent after it);
2. the resync plan (`rs-plan`) to the Azure side through the process server: the worker
   stops applying the old stream and publishes the seed disks' block checksums;
3. per disk, batch by batch: the replica's checksums (through the process server), ours over
   the allocated extents, and only the blocks that differ (or that the replica has and the
   source does not, as zeros) on the stream `<epoch>.<g>-<disk>-rs`, ending with END_OF_PASS;
4. the crash-consistent tag `rs-complete-<epoch>-<g>`: the first recovery point after it.

Progress is kept by batch, so an agent restarted mid-resync carries on where it was (a batch
half sent is compared and sent again: the blocks are the source's current ones either way).
A resync that cannot reach the process server for `GIVE_UP_SECONDS` fails, names the cause,
and leaves the resync required.
"""

from __future__ import annotations

import logging
import time

from components import resync as engine
from components.http_client import ServerError
from lab.kit import wire

from . import filter as disk_filter
from .journal import TAG_CRASH

log = logging.getLogger(__name__)

GIVE_UP_SECONDS = 30.0  # wall seconds without reaching the process server: the resync fails
READY_WAIT_SECONDS = 300.0  # how long the Azure side may take to publish its checksums
CHUNK = 4 << 20

RESYNC_REQUIRED, DISK_RESIZED = "ResyncRequired", "DiskResized"
REASONS = {
    "unclean-shutdown": (
        RESYNC_REQUIRED,
        "The machine stopped without a clean shutdown: the changes it tracked in memory were lost.",
    ),
    "disk-resized": (DISK_RESIZED, "A protected disk was resized."),
    "journal-overflow": (
        RESYNC_REQUIRED,
        "The change journal outgrew its limit while changes could not be sent "
        "(the process server or its link to Azure was unavailable for too long).",
    ),
    "change-stream-broken": (
        RESYNC_REQUIRED,
        "The process server kept refusing a differential: the change stream is broken.",
    ),
}


class ResyncFailed(Exception):
    pass


def stream_base(epoch: str, generation: int) -> str:
    """Streams of generation 0 are `<epoch>-<disk>`; a resync's are `<epoch>.<g>-<disk>`."""
    return epoch if not generation else f"{epoch}.{generation}"


def complete_tag(epoch: str, generation: int) -> str:
    return f"rs-complete-{epoch}-{generation}"


def initial_status() -> dict:
    return {
        "required": None,
        "generation": 0,
        "state": "Idle",
        "error": None,
        "started_at": None,
        "finished_at": None,
        "percent": 0,
        "disks": {},
        "checked_boot": None,
    }


def required_entry(reason: str, now: float, disks, detail: str | None = None) -> dict:
    code, message = REASONS[reason]
    return {
        "code": code,
        "reason": reason,
        "message": f"{message} {detail}".strip() if detail else message,
        "disks": sorted(disks),
        "since": now,
    }


class ResyncRun:
    """One generation's resync, driven by the replicator's thread."""

    def __init__(self, replicator, generation: int):
        self.r = replicator
        self.g = generation
        self.status = replicator.state.data["resync"]
        self._unreachable_since: float | None = None

    # -- the whole run ------------------------------------------------------------------------
    def run(self) -> None:
        r, status = self.r, self.status
        if status["generation"] != self.g:
            self._begin()
        if not status.get("plan_sent"):
            self._post_plan()
        index = self._replica_index()
        for i in sorted(r.disks):
            self._disk(i, index["disks"].get(str(i), {}))
            if r.stop_event.is_set():
                raise InterruptedError("stopped")
        now = r.clock.time()
        disk_filter.STATE.tag(complete_tag(r.epoch, self.g), TAG_CRASH, now)
        status.update(state="Completed", finished_at=now, percent=100, required=None, error=None)
        r.state.data["last_crash"] = now
        r.note_sent()  # the journal's sends start from here
        r.state.save()
        log.info("resync %d complete: %s", self.g, self.summary())

    def summary(self) -> dict:
        totals = engine.Counters()
        for d in self.status["disks"].values():
            for k in vars(totals):
                setattr(totals, k, getattr(totals, k) + d.get(k, 0))
        return totals.to_json()

    def _begin(self) -> None:
        r, status = self.r, self.status
        now = r.clock.time()
        disk_filter.STATE.restart_tracking()  # writes from now on follow the resync
        disk_filter.STATE.take_resized()  # a grown disk is brought over by the resync itself
        r.record_disk_sizes()
        for path in r.outbox.pending():  # differentials of the old stream: the resync covers them
            r.outbox.done(path)
        status.update(
            generation=self.g,
            journal_generation=self.g,  # the fresh journal's streams
            state="Running",
            error=None,
            started_at=now,
            finished_at=None,
            percent=0,
            disks={},
            plan_sent=False,
        )
        r.state.save()

    def _post_plan(self) -> None:
        r, status = self.r, self.status
        self.call(
            "POST",
            "/v1/manifests",
            body={
                "kind": "rs-plan",
                "vm_id": r.api.vm_id,
                "epoch": r.epoch,
                "generation": self.g,
                "protected_item": r.settings["protected_item"],
                "lab_time": status["started_at"],
                "reason": (status.get("required") or {}).get("reason", "manual"),
                "disks": [
                    {
                        "index": i,
                        "disk_id": d["disk_id"],
                        "size": r.disk(i).size,
                        "allocated": sum(n for _, n in r.disk(i).allocated_extents()),
                    }
                    for i, d in sorted(r.disks.items())
                ],
            },
        )
        status["plan_sent"] = True
        r.state.save()
        log.info("resync %d started (%s)", self.g, status.get("required") or "asked")

    # -- the process server -------------------------------------------------------------------
    def call(self, method: str, path: str, **kwargs):
        """A request to the process server, retried until it answers; ResyncFailed when it
        cannot be reached for GIVE_UP_SECONDS. A 404 is returned to the caller (None)."""
        r = self.r
        attempt = 0
        while not r.stop_event.is_set():
            try:
                result = r.ps.call(method, path, **kwargs)
                self._unreachable_since = None
                return result
            except ServerError as exc:
                if exc.status == 404:
                    self._unreachable_since = None
                    return None
                now = time.monotonic()
                self._unreachable_since = self._unreachable_since or now
                if now - self._unreachable_since > GIVE_UP_SECONDS:
                    raise ResyncFailed(
                        f"the process server {r.settings['process_server']['url']} could not "
                        f"serve the resync for {GIVE_UP_SECONDS:.0f} s: {exc}"
                    ) from exc
                r.stop_event.wait(min(0.2 * 2**attempt, 2.0))
                attempt += 1
        raise InterruptedError("stopped")

    def _replica_index(self) -> dict:
        """What the Azure side published: each seed disk's checksum batches."""
        deadline = time.monotonic() + READY_WAIT_SECONDS
        while time.monotonic() < deadline:
            index = self.call("GET", f"/v1/resync/{self.r.epoch}/{self.g}")
            if index is not None:
                return index
            self.r.stop_event.wait(0.5)
            if self.r.stop_event.is_set():
                raise InterruptedError("stopped")
        raise ResyncFailed(
            f"the Azure side did not publish the seed disks' checksums within "
            f"{READY_WAIT_SECONDS:.0f} s (is the Site Recovery worker running?)"
        )

    def _replica_batch(self, index: int, first: int) -> dict[int, bytes]:
        data = self.call(
            "GET", f"/v1/resync/{self.r.epoch}/{self.g}/disks/{index}/sums/{first}", raw=True
        )
        if data is None:
            raise ResyncFailed(f"the replica's checksums of disk {index} at {first} are missing")
        return engine.decode_batch(data)

    # -- one disk -----------------------------------------------------------------------------
    def _disk(self, index: int, replica: dict) -> None:
        r = self.r
        disk = r.disk(index)
        progress = self.status["disks"].setdefault(
            str(index), {"next_batch": 0, "seq": 0, "done": False, "percent": 0}
        )
        if progress["done"]:
            return
        counters = engine.Counters(**{k: progress.get(k, 0) for k in vars(engine.Counters())})
        block = engine.BLOCK
        source = engine.Scan(
            disk.read, engine.blocks_of(disk.allocated_extents(), disk.size), disk.size
        )
        theirs = {int(f) for f in replica.get("batches", [])}
        batches = sorted({f for f, _ in source.batches()} | theirs)
        stream = f"{stream_base(r.epoch, self.g)}-{index}-rs"
        pending: list[wire.Record] = []
        pending_bytes = 0
        for pos, first in enumerate(batches):
            if first < progress["next_batch"]:
                continue
            if r.stop_event.is_set():
                raise InterruptedError("stopped")
            stop = first + engine.BATCH_BLOCKS
            their_sums = self._replica_batch(index, first) if first in theirs else {}
            counters.checksum_bytes += len(their_sums) * (4 + engine.DIGEST_SIZE)
            payload, clears = engine.batch_difference(source, their_sums, first, stop, counters)
            records = [wire.Record(offset, data) for offset, data in payload]
            # The replica has data where the source has a hole: zeros.
            records += [wire.Record(o, bytes(min(block, disk.size - o))) for o in clears]
            for record in records:
                if pending and pending_bytes + len(record.data) > CHUNK:
                    counters.sent_bytes += self._ship(stream, index, pending, progress, False)
                    pending, pending_bytes = [], 0
                pending.append(record)
                pending_bytes += len(record.data)
            # A batch's blocks all leave before its progress is recorded.
            if pending:
                counters.sent_bytes += self._ship(stream, index, pending, progress, False)
                pending, pending_bytes = [], 0
            progress["next_batch"] = stop
            progress["percent"] = (pos + 1) * 100 // max(1, len(batches))
            self._record(progress, counters)
        counters.sent_bytes += self._ship(stream, index, [], progress, True)
        progress["done"] = True
        progress["percent"] = 100
        self._record(progress, counters)

    def _record(self, progress: dict, counters: engine.Counters) -> None:
        progress.update(counters.to_json())
        progress["last_sent_at"] = self.r.clock.time()
        disks = self.status["disks"]
        total = len(self.r.disks) or 1
        self.status["percent"] = min(99, sum(d.get("percent", 0) for d in disks.values()) // total)
        self.r.state.save()

    def _ship(self, stream: str, index: int, records, progress: dict, last: bool) -> int:
        r = self.r
        seq = progress["seq"] + 1
        flags = wire.Flags.RESYNC | (wire.Flags.END_OF_PASS if last else 0)
        body = wire.encode(
            wire.Message(
                r.api.vm_id,
                stream,
                seq,
                seq,
                r.disk(index).size,
                tuple(records),
                flags=flags,
                captured_at=r.clock.time(),
            )
        )
        self.call(
            "POST",
            "/v1/differentials",
            data=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        progress["seq"] = seq
        r.bytes_sent += len(body)
        r.messages_sent += 1
        return len(body)
