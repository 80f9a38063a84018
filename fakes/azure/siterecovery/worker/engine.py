"""The apply engine: one disk's cache logs into its seed page blob, strictly in order.

Per disk, the initial-replication stream (`<epoch>-<i>-ir`) up to its END_OF_PASS message,
then the change-journal stream (`<epoch>-<i>`) from sequence 1. After resync g, the same with
that generation's streams: its pass (`<epoch>.<g>-<i>-rs`, only the blocks that differed),
then its journal (`<epoch>.<g>-<i>`); no point before its first tag, `rs-complete-<epoch>-<g>`.
For each log, in this order:

1. open it (authenticated, decompressed, checked) and check it is the log its name says;
2. write each segment's records as page writes; at each tag at or after the epoch's first
   tag (`ir-complete-<epoch>`), snapshot the seed blob (or reuse the snapshot recorded for
   that tag) and record the snapshot;
3. record the progress (the stream's applied sequence);
4. delete the log from the cache.

A crash between any two steps repeats the log from step 1 at the next start: page writes are
idempotent when replayed in order, a tag passed before is never snapshotted again, a progress
record makes the log "already applied" (deleted without applying). A log whose first sequence
is past the next one expected waits (a gap: it may still be uploading).

No storage client here: the engine talks to `CacheLogs` and `SeedDisks` backends (Azure in the
service, in-memory in unit tests) and records progress in `progress.Progress`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Protocol

from lab.kit import wire

from . import names
from .names import LogRef
from .pages import PageWriter, coalesce
from .plan import IrPlan
from .progress import Progress

log = logging.getLogger(__name__)


class CacheLogs(Protocol):
    def list_logs(self, prefix: str) -> list[LogRef]: ...  # sorted by name
    def read(self, name: str) -> bytes: ...
    def delete(self, name: str) -> None: ...  # absent is fine


class SeedDisks(Protocol):
    def create(self, blob: str, size: int) -> None: ...
    def write(self, blob: str, offset: int, data) -> None: ...
    def clear(self, blob: str, offset: int, length: int) -> None: ...
    def resize(self, blob: str, size: int) -> None: ...
    def snapshot(self, blob: str) -> str: ...
    def delete(self, blob: str) -> None: ...  # with its snapshots; absent is fine
    def delete_snapshot(self, blob: str, snapshot: str) -> None: ...


Faults = Callable[[str], None]


def no_faults(operation: str) -> None:
    return None


@dataclass(frozen=True)
class SeedDisk:
    index: int
    disk_id: str
    blob: str
    size: int


@dataclass(frozen=True)
class VmReplication:
    """A VM's adopted epoch: its protected item, plan and seed disks."""

    vm_id: str
    epoch: str
    item: object  # replication_state.ProtectedItemKey
    plan: IrPlan
    seeds: dict[int, SeedDisk]
    generation: int = 0  # the resync generation whose streams are applied

    @property
    def first_tag(self) -> str:
        """The epoch's first point's tag: the VM is protected once it exists."""
        return names.first_tag(self.epoch)

    @property
    def generation_tag(self) -> str:
        """The first point of the current generation (after its resync)."""
        return names.first_tag(self.epoch, self.generation)

    @property
    def indexes(self) -> list[int]:
        return sorted(self.seeds)


@dataclass
class DiskStatus:
    """Where one disk's apply stands after a run."""

    index: int
    stream: str
    applied: int
    logs_applied: int = 0
    pending: int = 0  # logs listed in the stream and not applied yet
    gap: tuple[int, int] | None = None  # (first, last) missing sequence numbers
    blocked: str | None = None  # a log that cannot be applied, and why
    errors: list[str] = field(default_factory=list)


class LogRejected(Exception):
    """A log that opens badly or is not what its name says: it is not applied."""


class DiskApplier:
    """Applies one disk's available logs; one instance per run, one run per disk at a time."""

    def __init__(
        self,
        vm: VmReplication,
        index: int,
        *,
        cache: CacheLogs,
        seeds: SeedDisks,
        progress: Progress,
        key: bytes,
        writer: PageWriter,
        on_tag: Callable[[VmReplication, str], None] = lambda vm, tag: None,
        on_applied: Callable[[VmReplication, int, wire.Message, int], None] | None = None,
        faults: Faults = no_faults,
        prefetch: Executor | None = None,
    ):
        self.vm = vm
        self.index = index
        self.seed = vm.seeds[index]
        self.cache = cache
        self.seeds = seeds
        self.progress = progress
        self.key = key
        self.writer = writer
        self.on_tag = on_tag
        self.on_applied = on_applied
        self.faults = faults
        self.prefetch = prefetch
        self._ahead: dict[str, Future] = {}
        self._size = self.seed.size

    @property
    def ir_stream(self) -> str:
        """The pass before the journal: the initial copy, or the current resync's."""
        return names.pass_stream(self.vm.epoch, self.index, self.vm.generation)

    @property
    def journal_stream(self) -> str:
        return names.journal_stream(self.vm.epoch, self.index, self.vm.generation)

    def current_stream(self) -> dict:
        ir = self.progress.stream(self.vm.vm_id, self.ir_stream)
        if ir is None:
            raise KeyError(f"VM {self.vm.vm_id} epoch {self.vm.epoch} has no disk {self.index}")
        if not ir["done"]:
            return ir
        return self.progress.stream(self.vm.vm_id, self.journal_stream)

    # -- a run --------------------------------------------------------------------------------
    def run(self, should_stop: Callable[[], bool] = lambda: False) -> DiskStatus:
        """Apply every log that can be applied now; return where the disk stands."""
        total = 0
        try:
            while not should_stop():
                stream = self.current_stream()
                self.faults("list")
                refs = self.cache.list_logs(names.stream_prefix(self.vm.vm_id, stream["stream"]))
                status = self._apply_listed(stream, refs, should_stop)
                total += status.logs_applied
                switched = self.current_stream()["stream"] != stream["stream"]
                if not status.logs_applied and not switched:
                    status.logs_applied = total
                    return status
            stream = self.current_stream()
            return DiskStatus(self.index, stream["stream"], stream["applied"], total)
        finally:
            for future in self._ahead.values():
                future.cancel()
            self._ahead.clear()

    def _apply_listed(self, stream: dict, refs: list[LogRef], should_stop) -> DiskStatus:
        name, applied = stream["stream"], stream["applied"]
        initial = bool(stream["initial"])
        status = DiskStatus(self.index, name, applied)
        live = [r for r in refs if r.last > applied]
        for ref in refs:
            if ref.last <= applied:  # applied before (a crash before its delete, a re-upload)
                self.faults("delete")
                self.cache.delete(ref.name)
        for pos, ref in enumerate(live):
            if should_stop():
                break
            if ref.first > applied + 1:
                status.gap = (applied + 1, ref.first - 1)
                break
            if ref.first <= applied:
                status.blocked = (
                    f"log {ref.name} overlaps what is applied (through sequence {applied})"
                )
                break
            following = live[pos + 1] if pos + 1 < len(live) else None
            try:
                message, sealed = self._open(ref, following)
            except LogRejected as exc:
                status.blocked = str(exc)
                break
            self._apply(name, initial, ref, message, sealed)
            applied = ref.last
            status.applied = applied
            status.logs_applied += 1
            if initial and message.flags & wire.Flags.END_OF_PASS:
                break  # the journal stream is next
        status.pending = sum(1 for r in live if r.last > applied)
        return status

    # -- one log ------------------------------------------------------------------------------
    def _read_and_open(self, ref: LogRef) -> tuple[wire.Message, int]:
        self.faults("download")
        data = self.cache.read(ref.name)
        try:
            message = wire.open_sealed(data, self.key)
        except wire.CorruptMessage as exc:
            raise LogRejected(f"log {ref.name} cannot be opened: {exc}") from exc
        expected = (self.vm.vm_id, ref.stream, ref.first, ref.last)
        actual = (message.vm_id, message.disk_id, message.first_sequence, message.last_sequence)
        if actual != expected:
            raise LogRejected(f"log {ref.name} holds {actual}, not what its name says")
        return message, len(data)

    def _open(self, ref: LogRef, following: LogRef | None) -> tuple[wire.Message, int]:
        ahead = self._ahead.pop(ref.name, None)
        result = ahead.result() if ahead is not None else None
        if (
            self.prefetch is not None
            and following is not None
            and following.first == ref.last + 1
            and following.name not in self._ahead
        ):
            # Download and open the next log while this one's pages are written.
            self._ahead[following.name] = self.prefetch.submit(self._read_and_open, following)
        return result if result is not None else self._read_and_open(ref)

    def _apply(
        self, stream: str, initial: bool, ref: LogRef, message: wire.Message, sealed: int
    ) -> None:
        if message.disk_size > self._size:  # the source disk grew
            self.faults("resize")
            self.seeds.resize(self.seed.blob, message.disk_size)
            self.progress.set_seed_size(self.vm.vm_id, self.vm.epoch, self.index, message.disk_size)
            self._size = message.disk_size
        for records, tag in message.segments():
            if records:
                self.writer.write(self.seed.blob, coalesce(records))
            if tag is not None and not initial:
                self._reach(stream, tag)
        self.faults("record")
        self.progress.record_applied(
            self.vm.vm_id,
            stream,
            last=message.last_sequence,
            captured_at=message.captured_at,
            payload_bytes=message.payload_bytes,
            sealed_bytes=sealed,
            done=bool(initial and message.flags & wire.Flags.END_OF_PASS),
        )
        if self.on_applied is not None:
            self.on_applied(self.vm, self.index, message, sealed)
        self.faults("delete")
        self.cache.delete(ref.name)

    def _reach(self, stream: str, tag: wire.Tag) -> None:
        """The disk is exactly as the source was at `tag`: snapshot it (once per tag)."""
        first = self.vm.generation_tag
        row = self.progress.stream(self.vm.vm_id, stream)
        if not row["first_point"] and tag.tag_id != first:
            return  # before the first recovery point: the copy is not yet consistent
        vm_id, epoch = self.vm.vm_id, self.vm.epoch
        if self.progress.snapshot(vm_id, epoch, tag.tag_id, self.index) is None:
            self.faults("snapshot")
            snapshot = self.seeds.snapshot(self.seed.blob)
            self.progress.record_snapshot(
                vm_id,
                epoch,
                tag,
                self.index,
                snapshot,
                stream=stream,
                first_point=tag.tag_id == first,
            )
        self.on_tag(self.vm, tag.tag_id)
