"""The data path, against baselines measured in the same run.

1. Initial replication of a disk holding 256 MiB of random data, against Azurite's raw page
   write rate from one client (4 MiB pages into the disks account): target >= 60 % of it.
2. A 4 TiB sparse disk with 64 MiB written in scattered extents: initial replication <= 20 s,
   the guest's peak RSS (the agent runs in it) <= 200 MB, bytes sent <= 1.05 x allocated.
3. Steady state: 3 VMs at 2 MB/s of churn each for 2 minutes: RPO p95 <= 30 s (real time;
   the lab clock runs at 1x).
"""

from __future__ import annotations

import os
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
import yaml

from lab import launcher
from lab.asr import Asr
from lab.topology import TOPOLOGY_DIR

from ._util import row

MIB = 1 << 20


def topology(tmp: Path, name: str, vms: list[dict]) -> str:
    data = yaml.safe_load((TOPOLOGY_DIR / "default.yaml").read_text())
    data["name"] = name
    dc = data["vcenter"]["datacenters"][0]
    for ds in dc["datastores"]:
        ds["capacity"] = "16TiB"
    dc["vms"] = vms
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def vm(name: str, disks: list[str], power: str = "off", **workload) -> dict:
    return {
        "name": name,
        "os_family": "linux",
        "guest_id": "rhel8_64Guest",
        "host": "esxi-01.lab.local",
        "datastore": "datastore1",
        "power": power,
        "nics": [{"network": "VM Network", "ip": f"10.10.0.{50 + len(name) % 50}"}],
        "disks": [{"size": d} for d in disks],
        "workload": workload,
    }


def vm_state(lab: dict, name: str) -> dict:
    state = requests.get(
        f"{lab['services']['vcenter']['url']}/_lab/state", verify=lab["ca_cert"], timeout=30
    ).json()
    return next(v for v in state["vms"] if v["name"] == name)


def power_on(lab: dict, name: str) -> None:
    from pyVim.connect import Disconnect, SmartConnect
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    si = SmartConnect(
        host="127.0.0.1",
        port=lab["services"]["vcenter"]["port"],
        user=lab["env"]["DRLAB_VCENTER_USER"],
        pwd=lab["env"]["DRLAB_VCENTER_PASSWORD"],
        sslContext=ssl.create_default_context(cafile=lab["ca_cert"]),
    )
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        target = next(v for v in view.view if v.name == name)
        WaitForTask(target.PowerOnVM_Task())
    finally:
        Disconnect(si)


def wait(condition, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


def raw_page_rate(lab: dict, total: int = 256 * MIB) -> float:
    """MB/s of 4 MiB page writes from one client into the disks account (same Azurite)."""
    from azure.storage.blob import BlobServiceClient

    with Asr(lab["state_dir"]) as asr:
        service = BlobServiceClient(
            lab["env"]["DRLAB_DISKS_BLOB_URL"],
            credential=asr.credential,
            connection_verify=lab["ca_cert"],
        )
        container = service.get_container_client(f"bench-{uuid.uuid4().hex[:8]}")
        container.create_container()
        blob = container.get_blob_client("raw")
        blob.create_page_blob(total)
        data = os.urandom(4 * MIB)
        t0 = time.perf_counter()
        for offset in range(0, total, 4 * MIB):
            blob.upload_page(data, offset=offset, length=4 * MIB)
        seconds = time.perf_counter() - t0
        container.delete_container()
    return total / MIB / seconds


def replicate_until_protected(lab: dict, name: str) -> float:
    with Asr(lab["state_dir"]) as asr:
        asr.enable(name).result()
        t0 = time.perf_counter()
        wait(
            lambda: asr.protected(name).properties.protection_state == "Protected",
            timeout=600,
            what=f"{name} to be Protected",
            interval=0.05,
        )
        return time.perf_counter() - t0


def agent_status(lab: dict, vm_id: str) -> dict:
    state = requests.get(
        f"{lab['services']['cs-01']['url']}/_lab/state", verify=lab["ca_cert"], timeout=30
    ).json()
    agent = next(a for a in state["agents"] if a["vm_id"] == vm_id)
    return agent["status"].get("replication") or {}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_initial_replication(tmp: Path) -> list[str]:
    state = tmp / "ir"
    topo = topology(tmp, "bench-ir", [vm("bench-ir", ["1GiB", "1GiB"], churn_mb_s=0, app=False)])
    lab = launcher.up(topo, state)
    try:
        raw = raw_page_rate(lab)
        disk = vm_state(lab, "bench-ir")["disks"][1]["path"]
        with open(disk, "r+b") as f:  # 256 MiB of random data, written before the VM boots
            for i in range(64):
                f.seek(64 * MIB + i * 4 * MIB)
                f.write(os.urandom(4 * MIB))
        power_on(lab, "bench-ir")
        seconds = replicate_until_protected(lab, "bench-ir")
    finally:
        launcher.down(state)
    rate = 256 / seconds
    return [
        row(
            "initial replication, 256 MiB random",
            f"{rate:.1f} MB/s",
            f"target >= {0.6 * raw:.1f}",
            f"raw 4 MiB page writes: {raw:.1f} MB/s",
        ),
        row("  as a share of the raw page-write rate", f"{rate / raw:.0%}", "target >= 60%"),
        row("  time to Protected", f"{seconds:.1f} s"),
    ]


def bench_sparse(tmp: Path) -> list[str]:
    state = tmp / "sparse"
    topo = topology(
        tmp, "bench-sparse", [vm("bench-4t", ["2GiB", "4TiB"], churn_mb_s=0, app=False)]
    )
    lab = launcher.up(topo, state)
    try:
        info = vm_state(lab, "bench-4t")
        path = info["disks"][1]["path"]
        import random

        rnd = random.Random(7)
        offsets = sorted(rnd.sample(range(1, (4 << 20) - 1), 64))  # 1 MiB slots of 4 TiB
        with open(path, "r+b") as f:
            for slot in offsets:
                f.seek(slot * MIB)
                f.write(os.urandom(MIB))
        power_on(lab, "bench-4t")
        seconds = replicate_until_protected(lab, "bench-4t")
        info = vm_state(lab, "bench-4t")
        status = agent_status(lab, info["instance_uuid"])
        rss = peak_rss_mb(info["guest_pid"])
        allocated = sum(d["bytes"] for d in status["initial_replication"].values())
        sent = status["bytes_sent"]
    finally:
        launcher.down(state)
    return [
        row("4 TiB sparse disk, 64 MiB scattered: IR", f"{seconds:.1f} s", "target <= 20 s"),
        row("  guest peak RSS (the agent runs in it)", f"{rss:.0f} MB", "target <= 200 MB"),
        row(
            "  bytes sent / allocated bytes",
            f"{sent / allocated:.3f}",
            "target <= 1.05",
            f"{sent / MIB:.1f} MiB sent, {allocated / MIB:.1f} MiB allocated",
        ),
    ]


def bench_steady_state(tmp: Path, seconds: float = 120.0) -> list[str]:
    state = tmp / "steady"
    vms = [
        vm(f"churn-{i}", ["2GiB", "2GiB"], power="on", churn_mb_s=2.0, io_size_kb=8)
        for i in range(3)
    ]
    launcher.up(topology(tmp, "bench-steady", vms), state)
    samples: list[float] = []
    try:
        with Asr(state) as asr:
            pollers = [asr.enable(v["name"]) for v in vms]
            for p in pollers:
                p.result()
            for v in vms:
                wait(
                    lambda v=v: asr.protected(v["name"]).properties.protection_state == "Protected",
                    timeout=600,
                    what="Protected",
                )
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for item in asr.protected_items():
                    rpo = item.properties.provider_specific_details.rpo_in_seconds
                    if rpo is not None:
                        samples.append(float(rpo))
                time.sleep(1.0)  # one sample per second per VM over the window
    finally:
        launcher.down(state)
    samples.sort()
    p95 = samples[int(0.95 * (len(samples) - 1))] if samples else float("nan")
    return [
        row(
            "steady state, 3 VMs x 2 MB/s, RPO p95",
            f"{p95:.1f} s",
            "target <= 30 s",
            f"median {statistics.median(samples):.1f} s, max {max(samples):.1f} s, "
            f"{len(samples)} samples",
        ),
    ]


def main() -> None:
    parts = {"ir": bench_initial_replication, "sparse": bench_sparse, "steady": bench_steady_state}
    chosen = [a for a in sys.argv[1:] if a in parts] or list(parts)
    with tempfile.TemporaryDirectory(prefix="drlab-bench-repl-") as tmp:
        for name in chosen:  # each part prints as soon as it is measured
            try:
                lines = parts[name](Path(tmp))
            except Exception as exc:  # a part that cannot finish is reported, not hidden
                lines = [row(f"{name}: did not finish", type(exc).__name__, str(exc))]
            print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
