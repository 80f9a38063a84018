"""Checksum resync of a 4 TiB sparse disk with 1 GiB allocated where 1% of the blocks differ.
Prints figures; asserts nothing.

    .venv/bin/python -m bench resync

The source and the replica are sparse files (the replica as the seed disk's local record of
its written ranges); 1% of the source's allocated 64 KiB blocks are then rewritten. The resync
(`components.resync`) compares checksums batch by batch and sends the differing blocks through
the real wire (records, zstd, AES-GCM with a vault key), applied to the replica, which must end
equal to the source. Baseline, same run: reading the allocated data without checksums.

Targets: bytes sent <= 1.1 x the differing bytes (the checksum exchange reported separately);
checksum scan >= 400 MB/s of allocated data.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from components import resync
from lab.kit import wire

from ._util import row

TiB, GiB, MiB = 1 << 40, 1 << 30, 1 << 20
SIZE = 4 * TiB
ALLOCATED = 1 * GiB
EXTENT = 16 * MiB
DIFFER = 0.01


def _extents(rnd: random.Random) -> list[tuple[int, int]]:
    count = ALLOCATED // EXTENT
    slots = sorted(rnd.sample(range(SIZE // EXTENT), count))
    return [(s * EXTENT, EXTENT) for s in slots]


def _allocated(fd: int, size: int) -> list[tuple[int, int]]:
    out, pos = [], 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, end - start))
        pos = end
    return out


def main() -> None:
    rnd = random.Random(20261202)
    base = Path(tempfile.mkdtemp(prefix="drlab-bench-resync-"))
    try:
        src_path, dst_path = base / "source-flat.vmdk", base / "replica.bin"
        src = os.open(src_path, os.O_RDWR | os.O_CREAT)
        dst = os.open(dst_path, os.O_RDWR | os.O_CREAT)
        os.ftruncate(src, SIZE)
        os.ftruncate(dst, SIZE)
        extents = _extents(rnd)
        print(f"  preparing: 4 TiB sparse disk, {len(extents)} extents of 16 MiB", flush=True)
        for offset, length in extents:
            data = rnd.randbytes(length)
            os.pwrite(src, data, offset)
            os.pwrite(dst, data, offset)
        blocks = [o // resync.BLOCK + i for o, n in extents for i in range(n // resync.BLOCK)]
        changed = rnd.sample(blocks, int(len(blocks) * DIFFER))
        for b in changed:
            os.pwrite(src, rnd.randbytes(resync.BLOCK), b * resync.BLOCK)
        os.fsync(src)
        os.fsync(dst)

        def reader(fd):
            return lambda offset, length: os.pread(fd, length, offset)

        source_extents = _allocated(src, SIZE)
        # Baseline: the allocated data read once, no checksums.
        t = time.perf_counter()
        read_bytes = 0
        for offset, length in source_extents:
            for s in range(offset, offset + length, resync.READ_CHUNK):
                read_bytes += len(os.pread(src, min(resync.READ_CHUNK, offset + length - s), s))
        raw_seconds = time.perf_counter() - t

        scan = resync.Scan(reader(src), resync.blocks_of(source_extents, SIZE), SIZE)
        t = time.perf_counter()
        for first, stop in scan.batches():
            scan.batch(first, stop)
        scan_seconds = time.perf_counter() - t

        key = os.urandom(32)
        sequence = 0

        def send(payload, clears):
            nonlocal sequence
            sequence += 1
            records = [wire.Record(o, d) for o, d in payload]
            records += [wire.Record(o, bytes(resync.BLOCK)) for o in clears]
            message = wire.Message(
                "bench-vm",
                "disk-0",
                sequence,
                sequence,
                SIZE,
                tuple(records),
                flags=wire.Flags.RESYNC,
            )
            sealed = wire.seal(message, key)
            for record in wire.open_sealed(sealed, key).records:  # the Azure side applies it
                os.pwrite(dst, bytes(record.data), record.offset)
            return len(sealed)

        t = time.perf_counter()
        counters = resync.resync_disk(
            resync.Scan(reader(src), resync.blocks_of(source_extents, SIZE), SIZE),
            resync.Scan(reader(dst), resync.blocks_of(extents, SIZE), SIZE),
            send,
        )
        total_seconds = time.perf_counter() - t

        check = resync.Scan(reader(dst), resync.blocks_of(_allocated(dst, SIZE), SIZE), SIZE)
        equal = all(
            check.batch(f, s) == resync.Scan(reader(src), scan.runs, SIZE).batch(f, s)
            for f, s in scan.batches()
        )
        os.close(src)
        os.close(dst)

        mb = 1e6
        print(row("allocated data (source)", f"{read_bytes / GiB:.2f} GiB"))
        print(
            row(
                "baseline: read allocated data, no checksums",
                f"{read_bytes / raw_seconds / mb:.0f} MB/s",
            )
        )
        print(
            row(
                "checksum scan of allocated data",
                f"{scan.bytes_read / scan_seconds / mb:.0f} MB/s",
                "target >= 400 MB/s",
                f"{scan_seconds / raw_seconds:.2f}x the plain read",
            )
        )
        ratio = counters.sent_bytes / counters.differing_bytes
        print(
            row(
                "blocks that differed",
                f"{counters.differing_bytes / MiB:.1f} MiB",
                "",
                f"{len(changed)} blocks",
            )
        )
        print(
            row(
                "bytes sent for them (sealed wire)",
                f"{counters.sent_bytes / MiB:.2f} MiB",
                "target <= 1.1x",
                f"{ratio:.3f}x the differing bytes",
            )
        )
        print(
            row("checksum exchange (replica -> source)", f"{counters.checksum_bytes / MiB:.2f} MiB")
        )
        print(row("total resync time (both scans, send, apply)", f"{total_seconds:.2f} s"))
        print(row("replica equals the source afterwards", "yes" if equal else "NO"))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
