"""The worker in a running lab: synthetic sealed logs from a "process server" (the test) become
seed disks and recovery points that the SDK lists and `drlab verify` checks; corruption on the
target is named by block; a kill -9 mid-apply changes nothing in the result; a new epoch
replaces the old; a disabled VM leaves nothing behind."""

from __future__ import annotations

import json
import random
import subprocess
import sys

from fakes.guest.app import JournalApp
from fakes.guest.config import DiskRef, GuestConfig
from fakes.guest.layout import Area
from fakes.guest.offline import install_os
from lab import launcher
from tests.helpers import wait_for

from .conftest import MiB


def with_guest(source, name: str, tmp_path) -> JournalApp:
    """Install the guest OS and its journaled application on the source disks."""
    config = GuestConfig(
        vm_id=source.vm_id,
        vm_name=name,
        os_family="linux",
        hostname=name,
        ip_addresses=["10.10.0.50"],
        disks=[DiskRef(f"Hard disk {i + 1}", "", len(d)) for i, d in enumerate(source.disks)],
        run_dir=str(tmp_path),
        accounts={"root": "x"},
    )
    devices = [source.device(i) for i in range(len(source.disks))]
    registry = install_os(devices, config, source.clock())
    area = Area.from_dict(registry.app_area)
    app = JournalApp(devices[area.disk], area.offset)
    assert app.recover().ok
    return app


def churn(source, rng, writes: int, size: int = 16384) -> None:
    for _ in range(writes):
        index = rng.randrange(len(source.disks))
        disk = source.disks[index]
        offset = rng.randrange(2 * MiB, len(disk) - size, 4096)  # clear of the OS and the app
        source.write(index, offset, rng.randbytes(size))


def drlab(lab, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *args, "--state-dir", str(lab.state_dir)],
        capture_output=True,
        text=True,
        timeout=180,
    )


def replicate(lab, source, app, rng) -> list[str]:
    """The initial copy while the guest works, the first point, two more tags."""
    for _ in range(5):
        app.commit()
    churn(source, rng, 10)
    lab.upload_plan(source)
    source.start_tracking()
    for i in range(len(source.disks)):
        ir = source.initial_replication(i)
        app.commit()  # the guest writes while its disks are copied
        lab.upload(ir)
    tags = [source.ir_complete()]
    for _ in range(2):
        app.commit()
        churn(source, rng, 6)
        tags.append(source.tag())
    app.commit()
    lab.upload_manifests(source)
    for i in range(len(source.disks)):
        lab.upload(source.flush(i, per_message=5))
    return tags


def test_logs_become_seed_disks_and_recovery_points_that_verify(worker_lab, tmp_path):
    lab, rng = worker_lab, random.Random(1)
    source = lab.source("lin-verify-01", (4, 8))
    app = with_guest(source, "lin-verify-01", tmp_path)
    tags = replicate(lab, source, app, rng)
    state = lab.wait_applied(source)
    assert state["initial_replication"]["percent"] == 100
    for index, blob in state["seed_disks"].items():
        assert lab.seed_bytes(blob) == bytes(source.disks[int(index)])
    assert not [b.name for b in lab.cache().list_blobs(name_starts_with=f"{source.vm_id}/")], (
        "applied logs are deleted"
    )

    points = wait_for(
        lambda: (p := lab.recovery_points(source.vm_id)) and len(p) == 3 and p,
        timeout=30,
        message="three recovery points through the SDK",
    )
    assert [p.properties.recovery_point_type for p in points] == ["CrashConsistent"] * 3
    item = wait_for(
        lambda: (
            (i := lab.protected_item(source.vm_id)).properties.protection_state == "Protected" and i
        ),
        timeout=30,
        message="the item to be Protected",
    )
    details = item.properties.provider_specific_details
    assert details.resync_progress_percentage == 100
    assert all(d.seed_managed_disk_id for d in details.protected_managed_disks)
    assert details.rpo_in_seconds is not None

    result = drlab(lab, "verify", "lin-verify-01", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    assert answer["ok"] and answer["tag_id"] == tags[-1]
    assert all(d["compared"] and d["first_difference"] is None for d in answer["disks"])
    assert answer["application"]["checked"] and answer["application"]["ok"]
    first = next(
        p
        for p in points
        if p.properties.recovery_point_time == min(q.properties.recovery_point_time for q in points)
    )
    result = drlab(lab, "verify", source.vm_id, "--point", first.name)
    assert result.returncode == 0 and "OK" in result.stdout, result.stdout + result.stderr

    # A byte flips in the seed disk (the target's fault): the next point carries it, and
    # verify names its block.
    blob = state["seed_disks"]["1"]
    disks = lab.blobs("disks").get_blob_client("asr-seed-disks", blob)
    offset = 5 * MiB + 3 * 65536
    page = bytearray(disks.download_blob(offset=offset, length=512).readall())
    page[17] ^= 0x5A
    disks.upload_page(bytes(page), offset, 512)
    if bytes(source.disks[1][offset : offset + 512]) == bytes(512):
        source.write(1, offset + 4096, b"\x01" * 512)  # make the block non-zero on the source
    source.tag()
    lab.upload_manifests(source)
    for i in range(len(source.disks)):
        lab.upload(source.flush(i))
    lab.wait_applied(source)
    wait_for(lambda: len(lab.recovery_points(source.vm_id)) == 4, timeout=30, message="4 points")
    result = drlab(lab, "verify", "lin-verify-01")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"disk 1 ({source.disk_ids[1]}) at offset {offset - offset % 65536}" in result.stderr


def test_a_worker_killed_mid_apply_resumes_to_the_same_result(worker_lab, tmp_path):
    lab, rng = worker_lab, random.Random(2)
    source = lab.source("lin-crash-01", (4, 8))
    app = with_guest(source, "lin-crash-01", tmp_path)
    lab.upload_plan(source)
    source.start_tracking()
    for i in range(len(source.disks)):
        lab.upload(source.initial_replication(i))
    tags = [source.ir_complete()]
    for _ in range(6):
        app.commit()
        churn(source, rng, 8, size=65536)
        tags.append(source.tag())
    lab.upload_manifests(source)
    # Slow page writes down so that the kill lands in the middle of the journal.
    rules = [{"operation": "apply", "delay_ms": 60}]
    assert lab.worker("POST", "/_lab/faults", json=rules).status_code == 200
    for i in range(len(source.disks)):
        lab.upload(source.flush(i, per_message=4))

    def midway():
        state = lab.vm_state(source.vm_id)
        journal = [s for s in (state or {}).get("streams", []) if not s["initial"]]
        started = any(s["applied"] > 0 for s in journal)
        unfinished = any(s["applied"] < source.seq[s["disk_index"]] for s in journal)
        return journal and started and unfinished and state

    wait_for(midway, timeout=60, interval=0.02, message="the journal half applied")
    launcher.restart_service(lab.state_dir, "sr-worker", kill=True)
    state = lab.wait_applied(source, timeout=90)
    for index, blob in state["seed_disks"].items():
        assert lab.seed_bytes(blob) == bytes(source.disks[int(index)])
    points = wait_for(
        lambda: (p := lab.recovery_points(source.vm_id)) and len(p) == len(tags) and p,
        timeout=30,
        message="a point per tag",
    )
    assert len({p.name for p in points}) == len(tags)
    for point in points:
        answer = lab.worker(
            "POST", "/_lab/verify", json={"vm": source.vm_id, "point": point.name}
        ).json()
        assert answer["ok"], answer
        assert answer["application"]["ok"]


def test_a_new_epoch_replaces_the_old_seed_disks_and_logs(worker_lab):
    lab, rng = worker_lab, random.Random(3)
    source = lab.source("lin-epoch-01", (2, 2))
    churn_small = lambda: [  # noqa: E731
        source.write(i, rng.randrange(0, MiB, 4096), rng.randbytes(4096)) for i in (0, 1)
    ]
    churn_small()
    lab.upload_plan(source)
    source.start_tracking()
    lab.upload(source.initial_replication(0))  # disk 1's copy never arrives
    old_state = wait_for(
        lambda: (s := lab.vm_state(source.vm_id)) and s["streams"][0]["done"] and s,
        timeout=30,
        message="disk 0 of the first epoch copied",
    )
    churn_small()
    stale = lab.upload(source.flush(0))  # journal of the old epoch, waiting for nothing

    renewed = lab.source_for(
        {
            "instanceUuid": source.vm_id,
            "disks": [
                {"id": d, "capacityInBytes": len(disk)}
                for d, disk in zip(source.disk_ids, source.disks, strict=True)
            ],
        }
    )
    renewed.disks = [bytearray(d) for d in source.disks]
    lab.upload_plan(renewed)
    new_state = wait_for(
        lambda: (s := lab.vm_state(source.vm_id)) and s["epoch"] == renewed.epoch and s,
        timeout=30,
        message="the new epoch adopted",
    )
    assert set(new_state["seed_disks"].values()).isdisjoint(old_state["seed_disks"].values())
    container = lab.blobs("disks").get_container_client("asr-seed-disks")
    names = {b.name for b in container.list_blobs(name_starts_with=f"asrseeddisk-{source.vm_id}")}
    assert names == set(new_state["seed_disks"].values())
    cache = lab.cache()
    wait_for(
        lambda: not any(cache.get_blob_client(n).exists() for n in stale),
        timeout=30,
        message="the old epoch's logs deleted",
    )
    renewed.start_tracking()
    for i in (0, 1):
        lab.upload(renewed.initial_replication(i))
    renewed.ir_complete()
    for i in (0, 1):
        lab.upload(renewed.flush(i))
    state = lab.wait_applied(renewed)
    for index, blob in state["seed_disks"].items():
        assert lab.seed_bytes(blob) == bytes(renewed.disks[int(index)])


def test_disabling_protection_purges_seed_disks_snapshots_and_cache(worker_lab):
    lab, rng = worker_lab, random.Random(4)
    source = lab.source("lin-purge-01", (2, 2))
    for i in (0, 1):
        source.write(i, 0, rng.randbytes(65536))
    lab.upload_plan(source)
    source.start_tracking()
    for i in (0, 1):
        lab.upload(source.initial_replication(i))
    source.ir_complete()
    lab.upload_manifests(source)
    for i in (0, 1):
        lab.upload(source.flush(i))
    state = lab.wait_applied(source)
    wait_for(lambda: lab.recovery_points(source.vm_id), timeout=30, message="a point")
    source.write(0, 65536, rng.randbytes(4096))
    leftover = lab.upload(source.flush(0) + [source.marker(1)])  # maybe applied, maybe not
    lab.disable(source.vm_id)

    container = lab.blobs("disks").get_container_client("asr-seed-disks")
    cache = lab.cache()

    def purged():
        seeds = list(
            container.list_blobs(
                name_starts_with=f"asrseeddisk-{source.vm_id}", include=["snapshots"]
            )
        )
        logs = list(cache.list_blobs(name_starts_with=f"{source.vm_id}/"))
        manifests = list(cache.list_blobs(name_starts_with=f"manifests/{source.vm_id}/"))
        return not seeds and not logs and not manifests and lab.vm_state(source.vm_id) is None

    wait_for(purged, timeout=30, message="everything of the VM purged")
    assert state["seed_disks"] and leftover


def test_marker_messages_keep_rpo_fresh_and_rates_show(worker_lab):
    lab = worker_lab
    source = lab.source("lin-marker-01", (2, 2))
    lab.upload_plan(source)
    source.start_tracking()
    for i in (0, 1):
        lab.upload(source.initial_replication(i))
    source.ir_complete()
    for i in (0, 1):
        lab.upload(source.flush(i) + [source.marker(i, captured_at=source.clock() - 120)])
    lab.wait_applied(source)
    item = wait_for(
        lambda: (
            (i := lab.protected_item(source.vm_id))
            and (i.properties.provider_specific_details.rpo_in_seconds or 0) >= 120
            and i
        ),
        timeout=30,
        message="RPO of at least 120 s",
    )
    details = item.properties.provider_specific_details
    assert details.rpo_in_seconds < 15 * 60
    assert all(d.rpo_in_seconds >= 120 for d in details.protected_disks)
    assert item.properties.replication_health == "Normal"
