"""The page-blob disk (a managed disk after failover) against Azurite, and a guest booted on it:
the same runtime, the same checks, a blob instead of a sparse file."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

from fakes.guest.blockdev import BlockDeviceError, open_device
from fakes.guest.config import DiskRef, GuestConfig
from fakes.guest.offline import install_os, verify_disks
from fakes.guest.pageblob import PageBlobDevice
from fakes.guest.system import GuestOS, WallClock

MiB = 1 << 20


@pytest.fixture
def container(shared_lab):
    service = BlobServiceClient(
        shared_lab.env["DRLAB_BLOB_URL"],
        credential=shared_lab.credential(),
        connection_verify=shared_lab.ca,
    )
    client = service.create_container(f"guest-{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_container()


def page_blob(container, size) -> PageBlobDevice:
    blob = container.get_blob_client(f"disk-{uuid.uuid4().hex[:8]}.vhd")
    blob.create_page_blob(size)
    return PageBlobDevice(blob)


def sas_disk(shared_lab, device: PageBlobDevice, label: str) -> DiskRef:
    """A DiskRef as Azure compute would hand it to a guest: blob URL with a SAS token."""
    topology = json.loads((shared_lab.state_dir / "topology.json").read_text())
    account = next(a for a in topology["storage"]["accounts"] if a["role"] == "cache")
    blob = device.blob
    sas = generate_blob_sas(
        account["name"],
        blob.container_name,
        blob.blob_name,
        account_key=account["key"],
        permission=BlobSasPermissions(read=True, write=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    url = f"{blob.url}?{sas}"
    return DiskRef(label, "", device.size, kind="page_blob", url=url, ca_cert=shared_lab.ca)


def test_page_blob_device(container):
    dev = page_blob(container, 4 * MiB)
    assert dev.size == 4 * MiB
    with pytest.raises(BlockDeviceError):
        dev.write(100, b"x" * 512)
    data = bytes(range(256)) * 32
    dev.write(MiB, data)
    assert dev.read(MiB, len(data)) == data
    dev.write(2 * MiB, bytes(8192))  # zeros clear pages instead of storing them
    assert dev.allocated_extents() == [(MiB, len(data))]
    dev.write(MiB, bytes(4096))
    assert dev.allocated_extents() == [(MiB + 4096, 4096)]
    dev.resize(8 * MiB)
    assert dev.size == 8 * MiB and dev.blob.get_blob_properties().size == 8 * MiB
    with pytest.raises(BlockDeviceError):
        dev.resize(4 * MiB)
    dev.close()


def test_a_guest_boots_and_checks_out_on_page_blobs(shared_lab, container, tmp_path):
    devices = [page_blob(container, 4 * MiB), page_blob(container, 8 * MiB)]
    disks = [sas_disk(shared_lab, d, f"Hard disk {i + 1}") for i, d in enumerate(devices)]
    config = GuestConfig(
        vm_id="azure-vm",
        vm_name="lin-db-01",
        os_family="linux",
        hostname="lin-db-01",
        ip_addresses=["10.20.0.4"],
        disks=disks,
        run_dir=str(tmp_path),
        accounts={"root": "pw"},
        workload={"churn_mb_s": 0, "app_tps": 0},
    )
    install_os(devices, config, now=0.0)
    sas_devices = [open_device(d) for d in disks]  # what the guest process would open
    guest = GuestOS(config, WallClock(), sas_devices)
    guest.boot()
    for _ in range(5):
        guest.app.commit()
    guest.shutdown()
    result = verify_disks(disks)
    assert result["ok"], result["errors"]
    assert result["committed_txn"] == 5 and result["system_area"]["state"] == "clean"
    # sparse: only the system area, the app's superblocks and records were written
    assert sum(length for _, length in devices[1].allocated_extents()) < MiB
