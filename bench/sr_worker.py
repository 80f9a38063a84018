"""The Site Recovery worker's apply throughput: MB/s of page writes into seed disks, from
sealed logs already in the cache account, against Azurite's raw Put Page rate from one client
in the same run. Prints figures; asserts nothing.

    .venv/bin/python -m bench sr_worker

A lab of its own (Entra, ARM, both Azurites, Service Bus, mail, the worker). A protected VM
with two disks is enabled through the provider channel; its logs are sealed and uploaded to
the cache before its initial replication plan, so the timing covers the worker alone:
discover the plan, create the seed disks, download, open (AES-GCM, zstd), write pages,
record progress, delete each log.

- baseline: one client, `upload_page` of 4 MiB pages, sequential, into a page blob of the
  disks account (what the worker's page writes go to);
- initial replication: 2 disks x 128 MiB of 1 MiB extents, 4 MiB per log;
- change journal: 2 disks x 32 MiB of 64 KiB writes at random offsets, 4 MiB per log, a tag
  every log.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from lab import launcher
from lab.kit import wire

from ._util import row

MiB = 2**20
IR_MIB = 128  # per disk
JOURNAL_MIB = 32  # per disk
DISK = 512 * MiB
RAW_MIB = 256


def _messages_ir(vm_id: str, epoch: str, index: int, payload: bytes) -> list[wire.Message]:
    out = []
    for n, start in enumerate(range(0, IR_MIB * MiB, 4 * MiB), start=1):
        records = tuple(
            wire.Record(start + k * MiB, payload[(n + k) % 7 * MiB : (n + k) % 7 * MiB + MiB])
            for k in range(4)
        )
        last = start + 4 * MiB >= IR_MIB * MiB
        flags = wire.Flags.INITIAL_REPLICATION | (wire.Flags.END_OF_PASS if last else 0)
        out.append(
            wire.Message(vm_id, f"{epoch}-{index}-ir", n, n, DISK, records, (), flags, time.time())
        )
    return out


def _messages_journal(vm_id, epoch, index, payload, rng) -> list[wire.Message]:
    out, seq = [], 0
    tag = wire.Tag(0, wire.TagKind.CRASH_CONSISTENT, f"ir-complete-{epoch}", time.time())
    out.append(wire.Message(vm_id, f"{epoch}-{index}", 1, 1, DISK, (), (tag,), 0, time.time()))
    seq = 1
    for n in range(JOURNAL_MIB // 4):
        records = []
        for _ in range(64):
            offset = rng.randrange(0, DISK - 65536, 65536)
            at = rng.randrange(0, len(payload) - 65536, 512)
            records.append(wire.Record(offset, payload[at : at + 65536]))
        tag = wire.Tag(64, wire.TagKind.CRASH_CONSISTENT, f"cc-bench-{n}", time.time())
        out.append(
            wire.Message(
                vm_id,
                f"{epoch}-{index}",
                seq + 1,
                seq + 65,
                DISK,
                tuple(records),
                (tag,),
                0,
                time.time(),
            )
        )
        seq += 65
    return out


def main() -> None:
    from tests.integration.siterecovery_worker.conftest import WorkerLab, worker_topology
    from tests.unit.siterecovery_worker.source import blob_name

    base = Path(tempfile.mkdtemp(prefix="drlab-bench-srw-"))
    info = launcher.up(str(worker_topology(base)), base / "state")
    lab = WorkerLab(base / "state", info)
    try:
        payload = os.urandom(8 * MiB)
        rng = random.Random(7)

        # -- baseline: Azurite's raw page-write rate, one client --------------------------------
        disks = lab.blobs("disks").get_container_client("bench-raw")
        disks.create_container()
        raw = disks.get_blob_client("raw")
        raw.create_page_blob(RAW_MIB * MiB)
        t0 = time.perf_counter()
        for i in range(RAW_MIB // 4):
            chunk = payload[(i % 2) * 4 * MiB : (i % 2 + 1) * 4 * MiB]
            raw.upload_page(chunk, i * 4 * MiB, 4 * MiB)
        raw_rate = RAW_MIB / (time.perf_counter() - t0)

        # -- the worker -------------------------------------------------------------------------
        discovered = lab.protect("bench-vm-01", (DISK // MiB, DISK // MiB))
        source = lab.source_for(discovered)
        vm_id, epoch = source.vm_id, source.epoch
        cache = lab.cache()
        key = lab.key
        ir = [m for i in (0, 1) for m in _messages_ir(vm_id, epoch, i, payload)]
        journal = [m for i in (0, 1) for m in _messages_journal(vm_id, epoch, i, payload, rng)]
        for message in ir:
            cache.upload_blob(blob_name(message), wire.seal(message, key), overwrite=True)
        source.disks = [bytearray(0), bytearray(0)]  # sizes only; the plan says the rest
        plan = source.plan([IR_MIB * MiB, IR_MIB * MiB])
        plan["disks"] = [dict(d, size=DISK) for d in plan["disks"]]
        import json

        t0 = time.perf_counter()
        cache.upload_blob(f"manifests/{vm_id}/ir-plan-{epoch}.json", json.dumps(plan))

        def streams():
            state = lab.vm_state(vm_id)
            return {s["stream"]: s for s in state["streams"]} if state else {}

        adopted = None
        while True:
            s = streams()
            if s and adopted is None:
                adopted = time.perf_counter()
            if s and all(s[f"{epoch}-{i}-ir"]["done"] for i in (0, 1)):
                break
            time.sleep(0.05)
        ir_end = time.perf_counter()
        ir_rate = 2 * IR_MIB / (ir_end - t0)
        ir_rate_adopted = 2 * IR_MIB / (ir_end - adopted)

        for message in journal:
            cache.upload_blob(blob_name(message), wire.seal(message, key), overwrite=True)
        # Timed from the moment every journal log is in the cache (uploads overlap the apply,
        # so this is the tail the worker needs after the last upload, a lower bound on rate).
        t1 = time.perf_counter()
        last = journal[-1].last_sequence
        while not all(streams()[f"{epoch}-{i}"]["applied"] == last for i in (0, 1)):
            time.sleep(0.05)
        journal_end = time.perf_counter()
        journal_bytes = sum(m.payload_bytes for m in journal) / MiB
        journal_rate = journal_bytes / (journal_end - t1)

        print(f"  disks account (azurite-disks), {RAW_MIB} MiB / {2 * IR_MIB} MiB per test")
        print(row("raw upload_page, 4 MiB, one client", f"{raw_rate:.1f} MB/s", "", "baseline"))
        print(
            row(
                "worker: initial replication (plan -> done)",
                f"{ir_rate:.1f} MB/s",
                f"{ir_rate / raw_rate:.0%} of raw",
            )
        )
        print(
            row(
                "worker: initial replication (adopted -> done)",
                f"{ir_rate_adopted:.1f} MB/s",
                f"{ir_rate_adopted / raw_rate:.0%} of raw",
            )
        )
        print(
            row(
                "worker: journal, 64 KiB random writes",
                f"{journal_rate:.1f} MB/s",
                f"{journal_rate / raw_rate:.0%} of raw",
                "(after the last upload)",
            )
        )
    finally:
        if lab.cs is not None:
            lab.cs.stop()
        launcher.down(base / "state")
        shutil.rmtree(base, ignore_errors=True)
