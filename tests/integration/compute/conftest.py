"""Fixtures for Compute and Network against a real lab: seed disk snapshots holding a guest OS
(made here as the Site Recovery worker would: a page blob in the disks account, snapshotted),
the Python API on the lab's disks account, and the Azure SDK clients on the lab's ARM."""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from fakes.azure.arm.resource_ids import ResourceScope
from fakes.azure.arm.resource_store import ResourceStore
from fakes.azure.compute.compute import Compute
from fakes.azure.compute.disk_storage import DiskStorage
from fakes.azure.compute.guests import GuestDefaults
from fakes.azure.network.network import Network
from fakes.guest.blockdev import SparseFileDevice
from fakes.guest.config import DiskRef, GuestConfig
from fakes.guest.host import provision
from fakes.guest.system import GuestOS, WallClock

RG = "drlab-target"
SEED_CONTAINER = "asr-seed-disks"
GiB = 1 << 30
COMMITS = 5  # transactions of the application on the source disk


def topology(lab) -> dict:
    return json.loads((lab.state_dir / "topology.json").read_text())


def disks_account(lab) -> dict:
    return next(a for a in topology(lab)["storage"]["accounts"] if a["role"] == "disks")


def blob_service(lab) -> BlobServiceClient:
    account = disks_account(lab)
    return BlobServiceClient(
        lab.env["DRLAB_DISKS_BLOB_URL"],
        credential={"account_name": account["name"], "account_key": account["key"]},
        connection_verify=lab.ca,
    )


@pytest.fixture
def seed_snapshot(shared_lab, tmp_path):
    """make(hostname) -> "asr-seed-disks/<blob>?snapshot=<ts>": a 4 GiB OS disk provisioned
    with the guest OS and COMMITS application transactions, uploaded (allocated ranges only)
    to a page blob of the disks account and snapshotted, as a recovery point holds it."""
    container = blob_service(shared_lab).get_container_client(SEED_CONTAINER)
    with contextlib.suppress(Exception):
        container.create_container()
    made = []

    def make(hostname: str = "lin-db-01", os_family: str = "linux") -> str:
        path = tmp_path / f"{hostname}-{uuid.uuid4().hex[:6]}-flat.vmdk"
        path.touch()
        config = GuestConfig(
            vm_id=str(uuid.uuid4()),
            vm_name=hostname,
            os_family=os_family,
            hostname=hostname,
            ip_addresses=["10.10.0.22"],
            disks=[DiskRef("Hard disk 1", str(path), 4 * GiB)],
            run_dir=str(tmp_path / f"run-{path.stem}"),
            accounts={"root": "pw"},
            workload={"churn_mb_s": 0, "app_tps": 0},
        )
        provision(config)
        guest = GuestOS(config, WallClock())
        guest.boot()
        for _ in range(COMMITS):
            guest.app.commit()
        guest.shutdown()
        device = SparseFileDevice(path, 4 * GiB, readonly=True)
        blob = container.get_blob_client(f"asrseeddisk-test-{uuid.uuid4().hex[:10]}")
        blob.create_page_blob(4 * GiB)
        for offset, length in device.allocated_extents():
            for start in range(offset, offset + length, 4 << 20):
                size = min(4 << 20, offset + length - start)
                blob.upload_page(device.read(start, size), start, size)
        device.close()
        made.append(blob)
        return f"{SEED_CONTAINER}/{blob.blob_name}?snapshot={blob.create_snapshot()['snapshot']}"

    yield make
    for blob in made:
        with contextlib.suppress(ResourceNotFoundError):
            blob.delete_blob(delete_snapshots="include")


@pytest.fixture
def local_compute(shared_lab, tmp_path):
    """The Python API as the ARM process holds it, on the lab's disks account, with a store
    of its own (its VMs are not the ARM service's). Every VM and disk it made is deleted."""
    from lab.kit.clock import CLOCK_FILE, LabClock

    topo = topology(shared_lab)
    account = disks_account(shared_lab)
    scope = ResourceScope.from_topology(topo)
    store = ResourceStore(tmp_path / "resources.db")
    network = Network.open(store, scope, topo["azure"]["networks"])
    storage = DiskStorage(
        shared_lab.env["DRLAB_DISKS_BLOB_URL"], account["name"], account["key"], shared_lab.ca
    )
    compute = Compute(
        store,
        scope,
        network,
        storage,
        LabClock(shared_lab.state_dir / CLOCK_FILE),
        shared_lab.state_dir,
        GuestDefaults.from_topology(topo),
    )
    yield compute
    for doc in compute.vms.list():
        compute.delete_vm(doc["resourceGroup"], doc["name"])
    for doc in compute.disks.list():
        compute.delete_disk(doc["resourceGroup"], doc["name"])
    compute.close()
    store.close()


@pytest.fixture
def sdk(shared_lab):
    """(ComputeManagementClient, NetworkManagementClient) on the lab's ARM."""
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient

    args = (shared_lab.credential(), shared_lab.env["AZURE_SUBSCRIPTION_ID"])
    kw = {"base_url": shared_lab.env["DRLAB_ARM_URL"], "connection_verify": shared_lab.ca}
    return ComputeManagementClient(*args, **kw), NetworkManagementClient(*args, **kw)
