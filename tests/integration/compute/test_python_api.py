"""The Python API failover uses, against the lab's disks account and real guest processes:
a managed disk copied from a seed disk snapshot, a VM that boots on it and checks its
application's data, power operations, and a delete that leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.azure.compute.compute import NicSpec
from fakes.azure.compute.errors import ArmError
from fakes.azure.compute.guests import process_name
from lab.kit import procs
from tests.helpers import pid_alive

from .conftest import COMMITS, RG, GiB


def test_a_vm_boots_from_a_recovery_point_snapshot(local_compute, seed_snapshot, shared_lab):
    ref = seed_snapshot("lin-db-01")
    disk = local_compute.create_disk_from_snapshot(RG, "py-db-os", ref, tags={"drill": "t1"})
    assert disk["properties"]["diskSizeBytes"] == 4 * GiB
    assert disk["properties"]["creationData"]["sourceUri"].endswith(ref)
    blob = local_compute.disks.get(RG, "py-db-os")["blob"]
    assert local_compute.storage.size(blob) == 4 * GiB

    view = local_compute.create_vm(
        RG,
        "py-db",
        size="Standard_D2s_v3",
        os_disk=disk["id"],
        nics=[NicSpec("vnet-test", "default")],
        tags={"drill": "t1"},
    )
    assert view["power_state"] == "running" and view["guest_running"]
    check = view["application_check"]
    assert check["ok"], check
    assert check["committed_txn"] == COMMITS and check["records_checked"] > 0
    assert view["hostname"] == "lin-db-01"  # from the disk's registry
    assert view["ip"].startswith("10.30.1.") and view["network"]["isolated"] is True

    # The guest itself was told where it is.
    status = local_compute.guests.status(("drlab-target", "py-db"))
    assert status["network"]["vnet"] == "vnet-test" and status["network"]["isolated"] is True
    assert status["ip_addresses"] == [view["ip"]]
    registered = {r.name: r.pid for r in procs.registered(shared_lab.state_dir)}
    assert registered[process_name(RG, "py-db")] == view["guest_pid"]

    # Power: a clean stop, a start (the application recovers and checks again), deallocate.
    pid = view["guest_pid"]
    assert local_compute.power_off_vm(RG, "py-db")["power_state"] == "stopped"
    assert not pid_alive(pid)
    again = local_compute.start_vm(RG, "py-db")
    assert again["guest_running"] and again["application_check"]["ok"]
    assert again["boot"]["previousShutdownClean"] is True
    assert local_compute.deallocate_vm(RG, "py-db")["power_state"] == "deallocated"
    assert local_compute.disk(RG, "py-db-os")["properties"]["diskState"] == "Reserved"

    # Delete: the guest, the VM, its NIC and its disk's blob are gone.
    pid = local_compute.start_vm(RG, "py-db")["guest_pid"]
    run_dir = local_compute.guests.run_dir(local_compute.vms.get(RG, "py-db")["vmId"])
    assert local_compute.delete_vm(RG, "py-db")
    assert not pid_alive(pid)
    assert process_name(RG, "py-db") not in {r.name for r in procs.registered(shared_lab.state_dir)}
    assert local_compute.storage.size(blob) is None
    assert local_compute.disks.find(RG, "py-db-os") is None
    assert local_compute.network.network_interfaces.find(RG, "py-db-nic0") is None
    assert not Path(run_dir).exists()


def test_three_vms_of_a_plan_boot_side_by_side(local_compute, seed_snapshot):
    from concurrent.futures import ThreadPoolExecutor

    refs = [seed_snapshot(f"plan-vm-{i}") for i in range(3)]

    def fail_over(i):
        disk = local_compute.create_disk_from_snapshot(RG, f"plan-{i}-os", refs[i])
        return local_compute.create_vm(
            RG,
            f"plan-{i}",
            size="Standard_B2s",
            os_disk=disk["id"],
            nics=[NicSpec("vnet-prod", "default")],
        )

    with ThreadPoolExecutor(3) as pool:
        views = list(pool.map(fail_over, range(3)))
    assert all(v["guest_running"] and v["application_check"]["ok"] for v in views)
    assert len({v["ip"] for v in views}) == 3
    assert [v["hostname"] for v in views] == ["plan-vm-0", "plan-vm-1", "plan-vm-2"]


def test_a_snapshot_of_another_account_is_refused(local_compute):
    with pytest.raises(ArmError) as err:
        local_compute.create_disk_from_snapshot(
            RG, "x", "https://127.0.0.1:1/elsewhere/asr-seed-disks/b?snapshot=1"
        )
    assert err.value.code == "InvalidParameter"
    with pytest.raises(ArmError) as err:
        local_compute.create_disk_from_snapshot(RG, "x", "asr-seed-disks/no-such-blob")
    assert err.value.code == "InvalidParameter"
    assert local_compute.disks.list() == []


def test_writing_to_a_disk_leaves_the_snapshot_it_was_made_from_unchanged(
    local_compute, seed_snapshot
):
    """A recovery point's snapshot must not change when the VM made from it writes (Azurite
    shares a copy's page-range list with its source; the copy goes through a transient
    snapshot so nothing is shared)."""
    ref = seed_snapshot("lin-web-01")
    storage = local_compute.storage
    source = storage.resolve_source(ref)
    snap = storage._blob(source.container, source.blob, source.snapshot)
    before = snap.download_blob(offset=0, length=1 << 20).readall()
    ranges_before = [(r.start, r.end) for r in snap.list_page_ranges()]
    local_compute.create_disk_from_snapshot(RG, "cow-os", ref)
    blob = storage._blob("managed-disks", local_compute.disks.get(RG, "cow-os")["blob"])
    blob.upload_page(b"\xab" * 4096, 0, 4096)
    blob.upload_page(b"\xcd" * 4096, 3 << 30, 4096)  # a page the source never had
    assert snap.download_blob(offset=0, length=1 << 20).readall() == before
    assert [(r.start, r.end) for r in snap.list_page_ranges()] == ranges_before
    assert blob.download_blob(offset=0, length=4096).readall() == b"\xab" * 4096
    names = [b.name for b in storage.service.get_container_client("managed-disks").list_blobs()]
    assert not any(n.endswith(".copying") for n in names)  # the transient blob is gone
