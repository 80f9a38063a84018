"""Micro benchmark of the replication wire format on 4 MiB messages: encode, decode, seal,
open, next to baselines measured in the same run on the same bytes (a memory copy, zlib's
CRC32, raw zstd, raw AES-GCM). Prints figures; asserts nothing.

    .venv/bin/python -m bench.wire
"""

from __future__ import annotations

import os
import random
import statistics
import time
import zlib

import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lab.kit import wire

MIB = 2**20
SIZE = 4 * MIB


def best_ms(fn, repeat: int = 15) -> tuple[float, float]:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1000, statistics.median(times) * 1000


def payloads() -> dict[str, bytes]:
    rng = random.Random(7)
    half_zero = b"".join(rng.randbytes(8192) if i % 2 else bytes(8192) for i in range(SIZE // 8192))
    return {"random": rng.randbytes(SIZE), "half zero pages": half_zero}


def message(data: bytes, record_size: int) -> wire.Message:
    records = tuple(
        wire.Record(offset, memoryview(data)[offset : offset + record_size])
        for offset in range(0, len(data), record_size)
    )
    tags = (wire.Tag(len(records), wire.TagKind.CRASH_CONSISTENT, "cc-1", 1.7e9),)
    return wire.Message("vm-1", "disk-0", 1, len(records), 8 * 2**30, records, tags)


def row(name: str, ms: tuple[float, float]) -> None:
    best, median = ms
    rate = SIZE / MIB / (best / 1000)
    print(f"  {name:<34} {best:8.2f} ms  (median {median:6.2f})  {rate:8.0f} MiB/s")


def main() -> None:
    key = os.urandom(32)
    for label, data in payloads().items():
        print(f"\n4 MiB of {label}")
        print(" baselines, same bytes, same run:")
        row("bytes copy (bytearray)", best_ms(lambda data=data: bytearray(data)))
        row("zlib.crc32", best_ms(lambda data=data: zlib.crc32(data)))
        compressor = zstandard.ZstdCompressor(level=wire.DEFAULT_ZSTD_LEVEL)
        row("zstd level 3 compress", best_ms(lambda d=data, c=compressor: c.compress(d)))
        aead = AESGCM(key)
        nonce = os.urandom(12)
        row("AES-256-GCM encrypt", best_ms(lambda d=data, a=aead, n=nonce: a.encrypt(n, d, b"")))
        for record_size in (8192, SIZE):
            m = message(data, record_size)
            encoded = wire.encode(m)
            sealed = wire.seal(m, key)
            n = len(m.records)
            print(f" wire, {n} record(s) of {record_size // 1024} KiB"
                  f" (sealed {len(sealed) / MIB:.2f} MiB):")  # fmt: skip
            row("encode", best_ms(lambda m=m: wire.encode(m)))
            row("decode (verify every CRC)", best_ms(lambda e=encoded: wire.decode(e)))
            row("seal (encode+zstd+GCM)", best_ms(lambda m=m: wire.seal(m, key)))
            row("open (GCM+unzstd+decode)", best_ms(lambda s=sealed: wire.open_sealed(s, key)))
            row(
                "encode+decode+seal+open",
                best_ms(
                    lambda m=m: wire.open_sealed(wire.seal(wire.decode(wire.encode(m)), key), key)
                ),
            )


if __name__ == "__main__":
    main()
