"""Verify a recovery point: its snapshots block by block against the source's manifest at the
same tag, and the workload's application data on them.

Block digests as the manifest has them (docs/data-path.md): 64 KiB blocks, blake2b-128 of the
block's bytes (the last block may be shorter), all-zero blocks left out. Only the blocks that
the snapshot's written page ranges touch are read (listing ranges of a snapshot itself is
reliable in Azurite; diffs are not). The application check opens the snapshots as page-blob
disks with read-only SAS URLs and runs the guest's own offline check (`verify_disks`).

Not here: deciding which point or VM to verify (the service's route) and repairing anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

BLOCK = 65536
MAX_READ = 4 * 2**20


def digest(block: bytes) -> str:
    return hashlib.blake2b(block, digest_size=16).hexdigest()


def _zero(block: bytes) -> bool:
    return block.count(0) == len(block)


def block_runs(ranges: list[tuple[int, int]], size: int, block: int = BLOCK) -> list[range]:
    """Runs of block indexes touched by byte ranges (start, end exclusive), merged, in order."""
    runs: list[list[int]] = []
    for start, end in sorted(ranges):
        end = min(end, size)
        if end <= start:
            continue
        first, last = start // block, (end - 1) // block
        if runs and first <= runs[-1][1] + 1:
            runs[-1][1] = max(runs[-1][1], last)
        else:
            runs.append([first, last])
    return [range(a, b + 1) for a, b in runs]


def snapshot_digests(
    read: Callable[[int, int], bytes],
    ranges: list[tuple[int, int]],
    size: int,
    block: int = BLOCK,
    max_read: int = MAX_READ,
) -> dict[int, str]:
    """{block index: digest} of every non-zero block the ranges touch.

    Nearby runs are read together (a gap of up to a quarter of `max_read` is read and thrown
    away): a disk written in scattered small pieces has thousands of runs, and one request
    each would make a verify take minutes."""
    per_read = max(1, max_read // block)
    out: dict[int, str] = {}
    for start, stop, wanted in _spans(block_runs(ranges, size, block), per_read):
        offset = start * block
        data = read(offset, min(stop * block, size) - offset)
        for run in wanted:
            for b in run:
                piece = data[(b - start) * block : (b - start + 1) * block]
                if piece and not _zero(piece):
                    out[b] = digest(piece)
    return out


def _spans(runs: list[range], per_read: int):
    """(first block, stop block, [runs]) reads of at most `per_read` blocks covering `runs`."""
    gap = max(1, per_read // 4)
    span: list = []
    for run in runs:
        for s in range(run.start, run.stop, per_read):
            piece = range(s, min(run.stop, s + per_read))
            if span and piece.start - span[1] <= gap and piece.stop - span[0] <= per_read:
                span[1] = piece.stop
                span[2].append(piece)
                continue
            if span:
                yield tuple(span)
            span = [piece.start, piece.stop, [piece]]
    if span:
        yield tuple(span)


def first_difference(expected: dict[int, str], actual: dict[int, str]) -> dict | None:
    """The lowest block whose digest differs (a block missing on one side is zeros there)."""
    differing = [b for b in set(expected) | set(actual) if expected.get(b) != actual.get(b)]
    if not differing:
        return None
    b = min(differing)
    return {"block": b, "expected": expected.get(b), "actual": actual.get(b)}


def manifest_disk(manifest: dict, index: int) -> dict[int, str]:
    disks = manifest.get("disks") or {}
    return {int(k): v for k, v in (disks.get(str(index)) or {}).items()}


def compare_disk(
    index: int,
    disk_id: str,
    *,
    read: Callable[[int, int], bytes],
    ranges: list[tuple[int, int]],
    size: int,
    manifest: dict | None,
    block: int = BLOCK,
) -> dict:
    """One disk of a point against the manifest (if any)."""
    result = {"index": index, "disk_id": disk_id, "size": size, "compared": manifest is not None}
    if manifest is None:
        return result | {"first_difference": None}
    block = int(manifest.get("block_size", block))
    actual = snapshot_digests(read, ranges, size, block)
    expected = manifest_disk(manifest, index)
    diff = first_difference(expected, actual)
    if diff is not None:
        diff = {"disk": index, "disk_id": disk_id, "offset": diff["block"] * block, **diff}
    return result | {
        "blocks": len(actual),
        "manifest_blocks": len(expected),
        "first_difference": diff,
    }


def application_summary(result: dict, mode: str = "auto") -> dict:
    """The guest's `verify_disks` answer, as verify reports it. In "auto" mode, disks with no
    operating system or no journaled application are reported unchecked rather than failed
    (synthetic disks); "required" fails them."""
    errors = result.get("errors") or []
    absent = not (result.get("system_area") or {}).get("ok") or result.get("app_area") is None
    if mode == "auto" and absent:
        return {"checked": False, "ok": None, "reason": "; ".join(errors) or "no application"}
    return {
        "checked": True,
        "ok": bool(result.get("ok")),
        "committed_seq": result.get("committed_seq"),
        "committed_txn": result.get("committed_txn"),
        "records_checked": result.get("records_checked"),
        "errors": errors,
        "system_area": result.get("system_area"),
    }
