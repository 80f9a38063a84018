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

_LOG = re.compile(r"^(?P<vm>[^/]+)/(?P<stream>[^/]+)/(?P<first>\d{16})-(?P<last>\d{16})\.log$")
_PLAN = re.compile(r"^manifests/(?P<vm>[^/]+)/ir-plan-(?P<epoch>[^/]+)\.json$")


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
    """`<epoch>-<index>` (change journal) or `<epoch>-<index>-ir` (initial replication)."""

    epoch: str
    index: int
    initial: bool

    @property
    def name(self) -> str:
        return f"{self.epoch}-{self.index}{IR_SUFFIX if self.initial else ''}"


def parse_log(name: str, size: int = 0) -> LogRef | None:
    match = _LOG.match(name)
    if match is None:
        return None
    return LogRef(name, match["vm"], match["stream"], int(match["first"]), int(match["last"]), size)


def parse_stream(stream: str) -> Stream | None:
    initial = stream.endswith(IR_SUFFIX)
    base = stream[: -len(IR_SUFFIX)] if initial else stream
    epoch, sep, index = base.rpartition("-")
    if not sep or not epoch or not index.isdigit():
        return None
    return Stream(epoch, int(index), initial)


def parse_plan_name(name: str) -> tuple[str, str] | None:
    """(vm id, epoch) of `manifests/<vm>/ir-plan-<epoch>.json`."""
    match = _PLAN.match(name)
    return (match["vm"], match["epoch"]) if match else None


def log_name(vm_id: str, stream: str, first: int, last: int) -> str:
    return f"{vm_id}/{stream}/{first:016d}-{last:016d}.log"


def ir_stream(epoch: str, index: int) -> str:
    return f"{epoch}-{index}{IR_SUFFIX}"


def journal_stream(epoch: str, index: int) -> str:
    return f"{epoch}-{index}"


def stream_prefix(vm_id: str, stream: str) -> str:
    return f"{vm_id}/{stream}/"


def plan_blob(vm_id: str, epoch: str) -> str:
    return f"{MANIFESTS}/{vm_id}/ir-plan-{epoch}.json"


def manifest_blob(vm_id: str, tag_id: str) -> str:
    return f"{MANIFESTS}/{vm_id}/{tag_id}.json"


def first_tag(epoch: str) -> str:
    """The crash-consistent tag that makes the first recovery point of an epoch."""
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
    prefixes: list[str], vm_id: str, epoch: str, known_old: set[str]
) -> list[str]:
    """Of a VM's stream 'directories' in the cache (`<vm>/<stream>/`), those of an epoch known
    to be older than the current one. Streams of an unknown epoch are left alone: a newer
    epoch's logs may reach the cache before its plan does."""
    out = []
    for prefix in prefixes:
        stream = parse_stream(prefix[len(vm_id) + 1 :].rstrip("/"))
        if stream is not None and stream.epoch != epoch and stream.epoch in known_old:
            out.append(prefix)
    return out
