"""Test failover's ground: managed disks from recovery point snapshots and VMs that boot on
them, for a 3-VM plan with 4 GiB disks (256 MiB allocated each). Prints figures; asserts
nothing.

    .venv/bin/python -m bench compute

A lab of its own (Entra, ARM, both Azurites, the worker). Three seed disks are made as the
Site Recovery worker makes them (a page blob of the disks account holding a guest OS, its
journaled application with committed records, and 256 MiB of written data) and snapshotted.

- baselines, same run: Azurite's raw server-side copy of one 4 GiB snapshot, and a guest
  booted on a local sparse file (the on-premises runtime, no blob I/O);
- the Python API failover calls (in-process, as Site Recovery's handlers will): the three
  VMs side by side, each `create_disk_from_snapshot` then `create_vm(boot=True)`, until
  every guest is up and its application's data checked at boot;
- the same through azure-mgmt-compute (disk PUT; VM `begin_create_or_update().result()`,
  which polls with `Retry-After: 1`).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from lab import launcher
from lab.topology import TOPOLOGY_DIR

from ._util import median, row

GiB = 1 << 30
MiB = 1 << 20
ALLOCATED_MIB = 256
VMS = 3
ROUNDS = 3
COMMITS = 200  # application transactions on the source disk (records the boot checks)


def _topology(directory: Path) -> Path:
    default = yaml.safe_load((TOPOLOGY_DIR / "default.yaml").read_text())
    data = {k: default[k] for k in ("clock", "entra", "azure", "storage")}
    data["name"] = "bench-compute"
    path = directory / "bench-compute.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _source_disk(tmp: Path):
    """A 4 GiB sparse OS disk: guest OS, COMMITS app transactions, 256 MiB written."""
    from fakes.guest.blockdev import SparseFileDevice
    from fakes.guest.config import DiskRef, GuestConfig
    from fakes.guest.host import provision
    from fakes.guest.system import GuestOS, WallClock

    path = tmp / "bench-vm-flat.vmdk"
    path.touch()
    config = GuestConfig(
        vm_id=str(uuid.uuid4()),
        vm_name="bench-vm",
        os_family="linux",
        hostname="bench-vm",
        ip_addresses=[],
        disks=[DiskRef("Hard disk 1", str(path), 4 * GiB)],
        run_dir=str(tmp / "source-run"),
        accounts={"root": "pw"},
        workload={"churn_mb_s": 0, "app_tps": 0},
    )
    provision(config)
    guest = GuestOS(config, WallClock())
    guest.boot()
    for _ in range(COMMITS):
        guest.app.commit()
    guest.shutdown()
    device = SparseFileDevice(path, 4 * GiB)
    block = (bytes(range(256)) * 4096)[: 4 * MiB]
    for offset in range(512 * MiB, (512 + ALLOCATED_MIB) * MiB, 4 * MiB):
        device.write(offset, block)
    device.flush()
    return device, config


def main() -> None:
    from azure.core.exceptions import ResourceExistsError
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.storage.blob import BlobServiceClient

    from fakes.azure.arm.resource_ids import ResourceScope
    from fakes.azure.arm.resource_store import ResourceStore
    from fakes.azure.compute.compute import Compute, NicSpec
    from fakes.azure.compute.disk_storage import DiskStorage
    from fakes.azure.compute.guests import GuestDefaults
    from fakes.azure.network.network import Network
    from fakes.guest.host import start
    from lab.kit.clock import CLOCK_FILE, LabClock
    from tests.conftest import LabHandle

    base = Path(tempfile.mkdtemp(prefix="drlab-bench-compute-"))
    state = base / "state"
    info = launcher.up(str(_topology(base)), state)
    lab = LabHandle(state, info)
    try:
        topo = json.loads((state / "topology.json").read_text())
        account = next(a for a in topo["storage"]["accounts"] if a["role"] == "disks")
        blobs = BlobServiceClient(
            lab.env["DRLAB_DISKS_BLOB_URL"],
            credential={"account_name": account["name"], "account_key": account["key"]},
            connection_verify=lab.ca,
        )
        seeds = blobs.get_container_client("asr-seed-disks")
        with contextlib.suppress(ResourceExistsError):  # the worker may have made it
            seeds.create_container()

        print("  preparing: one 4 GiB seed disk, 256 MiB written, copied to three", flush=True)
        device, source_config = _source_disk(base)
        first = seeds.get_blob_client("asrseeddisk-bench-0")
        first.create_page_blob(4 * GiB)
        for offset, length in device.allocated_extents():
            for s in range(offset, offset + length, 4 * MiB):
                n = min(4 * MiB, offset + length - s)
                first.upload_page(device.read(s, n), s, n)
        refs = []
        for i in range(VMS):
            blob = seeds.get_blob_client(f"asrseeddisk-bench-{i}")
            if i:
                blob.start_copy_from_url(first.url)
            refs.append(
                f"asr-seed-disks/{blob.blob_name}?snapshot={blob.create_snapshot()['snapshot']}"
            )

        # -- baselines ----------------------------------------------------------------------
        raw_copy = []
        for _ in range(ROUNDS):
            dest = seeds.get_blob_client(f"raw-copy-{uuid.uuid4().hex[:6]}")
            t0 = time.perf_counter()
            dest.start_copy_from_url(f"{first.url}?snapshot={refs[0].rsplit('=', 1)[1]}")
            raw_copy.append(time.perf_counter() - t0)
            dest.delete_blob()
        local_boot = []
        for _ in range(ROUNDS):
            source_config.run_dir = str(base / f"local-{uuid.uuid4().hex[:6]}")
            source_config.workload = {"churn_mb_s": 0.05, "app_tps": 5}
            t0 = time.perf_counter()
            handle = start(source_config)
            local_boot.append(time.perf_counter() - t0)
            handle.power_off()
        device.close()

        # -- the Python API (what failover calls in the ARM process) ------------------------
        scope = ResourceScope.from_topology(topo)
        store = ResourceStore(base / "resources.db")
        network = Network.open(store, scope, topo["azure"]["networks"])
        storage = DiskStorage(
            lab.env["DRLAB_DISKS_BLOB_URL"], account["name"], account["key"], lab.ca
        )
        compute = Compute(
            store,
            scope,
            network,
            storage,
            LabClock(state / CLOCK_FILE),
            state,
            GuestDefaults.from_topology(topo),
        )
        rg = scope.target_group
        totals, disk_times, vm_times, checked = [], [], [], []

        def fail_over(i, r):
            t0 = time.perf_counter()
            disk = compute.create_disk_from_snapshot(rg, f"r{r}-vm{i}-os", refs[i])
            t1 = time.perf_counter()
            view = compute.create_vm(
                rg,
                f"r{r}-vm{i}",
                size="Standard_D2s_v3",
                os_disk=disk["id"],
                nics=[NicSpec("vnet-test", "default")],
            )
            t2 = time.perf_counter()
            return t1 - t0, t2 - t1, view

        for r in range(ROUNDS):
            t0 = time.perf_counter()
            with ThreadPoolExecutor(VMS) as pool:
                results = list(pool.map(lambda i, r=r: fail_over(i, r), range(VMS)))
            totals.append(time.perf_counter() - t0)
            for d, v, view in results:
                disk_times.append(d)
                vm_times.append(v)
                checked.append(view["guest_running"] and view["application_check"]["ok"])
            records = results[0][2]["application_check"]["records_checked"]
            for i in range(VMS):
                compute.delete_vm(rg, f"r{r}-vm{i}")

        # -- the same through the SDK ------------------------------------------------------
        args = (lab.credential(), lab.env["AZURE_SUBSCRIPTION_ID"])
        kw = {"base_url": lab.env["DRLAB_ARM_URL"], "connection_verify": lab.ca}
        sdk = ComputeManagementClient(*args, **kw)
        net = NetworkManagementClient(*args, **kw)
        subnet = net.subnets.get(rg, "vnet-test", "default")
        sdk_disk, sdk_vm = [], []
        for r in range(ROUNDS):
            t0 = time.perf_counter()
            disk = sdk.disks.begin_create_or_update(
                rg,
                f"sdk{r}-os",
                {
                    "location": scope.location,
                    "properties": {
                        "creationData": {
                            "createOption": "Import",
                            "sourceUri": f"{lab.env['DRLAB_DISKS_BLOB_URL']}/{refs[0]}",
                        }
                    },
                },
            ).result()
            sdk_disk.append(time.perf_counter() - t0)
            nic = net.network_interfaces.begin_create_or_update(
                rg,
                f"sdk{r}-nic",
                {
                    "location": scope.location,
                    "properties": {
                        "ipConfigurations": [
                            {"name": "ipconfig1", "properties": {"subnet": {"id": subnet.id}}}
                        ]
                    },
                },
            ).result()
            t0 = time.perf_counter()
            sdk.virtual_machines.begin_create_or_update(
                rg,
                f"sdk{r}",
                {
                    "location": scope.location,
                    "properties": {
                        "hardwareProfile": {"vmSize": "Standard_D2s_v3"},
                        "storageProfile": {
                            "osDisk": {
                                "createOption": "Attach",
                                "managedDisk": {"id": disk.id},
                                "deleteOption": "Delete",
                            }
                        },
                        "networkProfile": {
                            "networkInterfaces": [
                                {"id": nic.id, "properties": {"deleteOption": "Delete"}}
                            ]
                        },
                    },
                },
            ).result()
            sdk_vm.append(time.perf_counter() - t0)
            sdk.virtual_machines.begin_delete(rg, f"sdk{r}").result()
        compute.close()
        store.close()

        print(row("", "median", "target", "baseline (same run)"))
        print(row("raw start_copy_from_url, 4 GiB snapshot", f"{median(raw_copy) * 1000:.0f} ms"))
        print(row("guest boot on a local sparse file", f"{median(local_boot):.2f} s"))
        print(
            row(
                "create_disk_from_snapshot (one VM's)",
                f"{median(disk_times) * 1000:.0f} ms",
                "",
                f"raw copy {median(raw_copy) * 1000:.0f} ms",
            )
        )
        print(
            row(
                "create_vm, boot + app check (one VM's)",
                f"{median(vm_times):.2f} s",
                "",
                f"local boot {median(local_boot):.2f} s",
            )
        )
        print(
            row(
                f"{VMS} VMs side by side: disks + boot + check",
                f"{median(totals):.2f} s",
                "<= 5 s",
                f"all checked ok: {all(checked)}, {records} records each",
            )
        )
        print(row("SDK disks.begin_create_or_update().result()", f"{median(sdk_disk):.2f} s"))
        print(
            row(
                "SDK virtual_machines create .result()",
                f"{median(sdk_vm):.2f} s",
                "",
                "polls at Retry-After: 1",
            )
        )
    finally:
        launcher.down(state)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
