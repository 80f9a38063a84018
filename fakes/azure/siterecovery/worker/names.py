"""Blob names of the data path (docs/data-path.md), in one place: cache logs, control records
(initial replication plans, verify-mode manifests), seed disks and their snapshots.

Pure functions; nothing here talks to storage.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

CACHE_CONTAINER = "asr-cache"  # in the cache account, written by process servers
SEED_CONTAINER = "asr-seed-disks"  # in the disks account, the worker's own
MANIFESTS = "manifests"
IR_SUFFIX = "-ir"
RS_SUFFIX = "-rs"  # a resync's pass: only the blocks that differed

_LOG = re.compile(r"^(?P<vm>[^/]+)/(?P<stream>[^/]+)/(?P<first>\d{16})-(?P<last>\d{16})\.log$")
_PLAN = re.compile(r"^manifests/(?P<vm>[^/]+)/ir-plan-(?P<epoch>[^/]+)\.json$")
_GENERATION = re.compile(r"^(?P<epoch>[^./]+)\.(?P<generation>[1-9][0-9]*)$")


@dataclass(frozen=True)
class LogRef:
    """A sealed log in the cache container, known by its name (not yet opened)."""

    name: str
    vm_id: str
    stream: str
    first: int
    last: int
    size: int = 0  # bytes, from the listing (0 if unknown)


@dataclass(frozen=True)
class Stream:
    """A disk's stream of an epoch and resync generation: `<epoch>-<index>` (the change
    journal), `<epoch>-<index>-ir` (the initial copy); after resync g, `<epoch>.<g>-<index>-rs`
    (the resync's pass) and `<epoch>.<g>-<index>` (the journal from the resync on)."""

    epoch: str
    index: int
    initial: bool
    generation: int = 0

    @property
    def name(self) -> str:
        if self.initial:
            return pass_stream(self.epoch, self.index, self.generation)
        return journal_stream(self.epoch, self.index, self.generation)


def parse_log(name: str, size: int = 0) -> LogRef | None:
    match = _LOG.match(name)
    if match is None:
        return None
    return LogRef(name, match["vm"], match["stream"], int(match["first"]), int(match["last"]), size)


def parse_stream(stream: str) -> Stream | None:
    initial = stream.endswith((IR_SUFFIX, RS_SUFFIX))
    base = stream[: -len(IR_SUFFIX)] if initial else stream
    epoch, sep, index = base.rpartition("-")
    if not sep or not epoch or not index.isdigit():
        return None
    generation = 0
    match = _GENERATION.match(epoch)
    if match is not None:
        epoch, generation = match["epoch"], int(match["generation"])
    if initial and stream.endswith(RS_SUFFIX) != bool(generation):
        return None  # `-ir` is generation 0's, `-rs` a resync's
    return Stream(epoch, int(index), initial, generation)


def parse_plan_name(name: str) -> tuple[str, str] | None:
    """(vm id, epoch) of `manifests/<vm>/ir-plan-<epoch>.json`."""
    match = _PLAN.match(name)
    return (match["vm"], match["epoch"]) if match else None


def log_name(vm_id: str, stream: str, first: int, last: int) -> str:
    return f"{vm_id}/{stream}/{first:016d}-{last:016d}.log"


def ir_stream(epoch: str, index: int) -> str:
    return f"{epoch}-{index}{IR_SUFFIX}"


def _base(epoch: str, generation: int) -> str:
    return epoch if not generation else f"{epoch}.{generation}"


def pass_stream(epoch: str, index: int, generation: int = 0) -> str:
    """The whole-disk pass before the journal: the initial copy, or a resync's."""
    if not generation:
        return ir_stream(epoch, index)
    return f"{_base(epoch, generation)}-{index}{RS_SUFFIX}"


def journal_stream(epoch: str, index: int, generation: int = 0) -> str:
    return f"{_base(epoch, generation)}-{index}"


def stream_prefix(vm_id: str, stream: str) -> str:
    return f"{vm_id}/{stream}/"


def plan_blob(vm_id: str, epoch: str) -> str:
    return f"{MANIFESTS}/{vm_id}/ir-plan-{epoch}.json"


def resync_plan_prefix(vm_id: str, epoch: str) -> str:
    return f"{MANIFESTS}/{vm_id}/rs-plan-{epoch}-"


def resync_plan_blob(vm_id: str, epoch: str, generation: int) -> str:
    return f"{resync_plan_prefix(vm_id, epoch)}{generation}.json"


def manifest_blob(vm_id: str, tag_id: str) -> str:
    return f"{MANIFESTS}/{vm_id}/{tag_id}.json"


def first_tag(epoch: str, generation: int = 0) -> str:
    """The crash-consistent tag that makes the first recovery point of an epoch, or the
    first after resync `generation`."""
    if generation:
        return f"rs-complete-{epoch}-{generation}"
    return f"ir-complete-{epoch}"


def seed_blob(vm_id: str, epoch: str, index: int) -> str:
    """One page blob per protected disk and epoch: a new enable gets new seed disks."""
    return f"asrseeddisk-{vm_id}-{epoch}-{index}"


def snapshot_ref(blob: str, snapshot: str) -> str:
    """How a recovery point names a disk's snapshot: relative to the disks account URL."""
    return f"{SEED_CONTAINER}/{blob}?snapshot={snapshot}"


def parse_snapshot_ref(ref: str) -> tuple[str, str, str]:
    """(container, blob, snapshot) of `snapshot_ref`."""
    path, _, query = ref.partition("?snapshot=")
    container, _, blob = path.partition("/")
    return container, blob, query


_POINTS = uuid.UUID("6f1c3a52-8d1e-4d8a-9b7e-2f0c5a1d9e44")


def recovery_point_name(vm_id: str, epoch: str, tag_id: str) -> str:
    """Deterministic, so that recording a point again after a crash changes nothing."""
    return str(uuid.uuid5(_POINTS, f"{vm_id}/{epoch}/{tag_id}"))


def stale_stream_prefixes(
    prefixes: list[str],
    vm_id: str,
    epoch: str,
    known_old: set[str],
    generation: int | None = None,
) -> list[str]:
    """Of a VM's stream 'directories' in the cache (`<vm>/<stream>/`), those of an epoch known
    to be older than the current one, and (given the current resync `generation`) those of
    the current epoch's earlier generations. Streams of an unknown epoch are left alone: a
    newer epoch's logs may reach the cache before its plan does."""
    out = []
    for prefix in prefixes:
        stream = parse_stream(prefix[len(vm_id) + 1 :].rstrip("/"))
        if stream is None:
            continue
        if stream.epoch != epoch and stream.epoch in known_old:
            out.append(prefix)
        elif stream.epoch == epoch and generation is not None and stream.generation < generation:
            out.append(prefix)  # a stream the current resync generation replaced
    return out
