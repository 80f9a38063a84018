"""The fake vCenter under pyvmomi 9: listing VMs the way user scripts do, and bulk property reads.

A generated topology (temp file) has two datacenters: 250 powered-off VMs in the first, 750 in
the second (1,000 in all). Measured, median of RUNS runs over HTTPS with the lab CA:

  * list 250 VMs: a container view on the first datacenter's VM folder, then for every VM
    `vm.name` and `vm.config.hardware.device` (pyvmomi 9 sends one `Fetch` per property read:
    501 round trips). Target <= 1.0 s (vcsim takes about 1.05 s for the same script).
  * RetrievePropertiesEx of 5 properties over all 1,000 VMs (container view + traversal spec),
    one call. Target <= 0.5 s.

Baseline, same run, same connection: as many trivial round trips (`CurrentTime`) as the
listing makes, which bounds what any server could do per call through pyvmomi + TLS + HTTP.
"""

from __future__ import annotations

import copy
import ssl
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import yaml

from lab import launcher
from lab.topology import TOPOLOGY_DIR

from ._util import row

RUNS = 5
LISTED_VMS = 250
TOTAL_VMS = 1000
PROPS = [
    "name",
    "runtime.powerState",
    "config.guestId",
    "summary.config.numCpu",
    "config.hardware.memoryMB",
]


def bench_topology(path: Path) -> None:
    base = yaml.safe_load((TOPOLOGY_DIR / "default.yaml").read_text())
    topo = {k: base[k] for k in ("name", "entra", "azure", "storage")}
    topo["name"] = "bench-vcenter"
    vc = copy.deepcopy(base["vcenter"])
    dc0 = vc["datacenters"][0]
    dcs = []
    for d, count in enumerate((LISTED_VMS, TOTAL_VMS - LISTED_VMS)):
        dc = copy.deepcopy(dc0)
        dc["name"] = f"dc-bench-{d}"
        hosts = [h["name"] for c in dc["clusters"] for h in c["hosts"]]
        dc["vms"] = [
            {
                "name": f"bench-{d}-vm{i:04d}",
                "os_family": "linux",
                "guest_id": "rhel8_64Guest",
                "host": hosts[i % len(hosts)],
                "datastore": dc["datastores"][i % len(dc["datastores"])]["name"],
                "power": "off",
                "nics": [{"network": "VM Network", "ip": f"10.{10 + d}.{i // 250}.{i % 250 + 1}"}],
                "disks": [{"size": "1GiB"}],
            }
            for i in range(count)
        ]
        dcs.append(dc)
    vc["datacenters"] = dcs
    topo["vcenter"] = vc
    disabled = ["azurite", "arm"]  # only Entra (the environment needs it) and the vCenter run
    if "onprem" in base:  # kept for the topology's checks; its roles do not run
        topo["onprem"] = base["onprem"]
        disabled += _names(base["onprem"])
    topo["services"] = {name: {"enabled": False} for name in disabled}
    path.write_text(yaml.safe_dump(topo))


def _names(section) -> list[str]:
    if isinstance(section, dict):
        found = [section["name"]] if isinstance(section.get("name"), str) else []
        return found + [n for v in section.values() if not isinstance(v, str) for n in _names(v)]
    if isinstance(section, list):
        return [n for item in section for n in _names(item)]
    return []


def connect(lab: dict):
    from pyVim.connect import SmartConnect

    env = lab["env"]
    url = urlparse(env["DRLAB_VCENTER_URL"])
    ctx = ssl.create_default_context(cafile=lab["ca_cert"])
    return SmartConnect(
        host=url.hostname,
        port=url.port,
        user=env["DRLAB_VCENTER_USER"],
        pwd=env["DRLAB_VCENTER_PASSWORD"],
        sslContext=ctx,
    )


def list_vms(si) -> int:
    """What a user's pyvmomi 9 script does: a view, then two property reads per VM."""
    from pyVmomi import vim

    content = si.RetrieveContent()
    folder = content.rootFolder.childEntity[0].vmFolder
    view = content.viewManager.CreateContainerView(folder, [vim.VirtualMachine], True)
    devices = 0
    for vm in view.view:
        _ = vm.name
        devices += len(vm.config.hardware.device)
    view.DestroyView()
    return devices


def retrieve_bulk(si) -> int:
    from pyVmomi import vim, vmodl

    pc = vmodl.query.PropertyCollector
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    spec = pc.FilterSpec(
        objectSet=[
            pc.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[pc.TraversalSpec(name="v", type=vim.view.ContainerView, path="view")],
            )
        ],
        propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=PROPS)],
    )
    t0 = time.perf_counter()
    result = content.propertyCollector.RetrievePropertiesEx([spec], pc.RetrieveOptions())
    elapsed = time.perf_counter() - t0
    objects = list(result.objects)
    assert len(objects) == TOTAL_VMS and all(len(o.propSet) == len(PROPS) for o in objects)
    view.DestroyView()
    return elapsed


def round_trips(si, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        si.CurrentTime()
    return time.perf_counter() - t0


def main() -> None:
    from pyVim.connect import Disconnect

    with tempfile.TemporaryDirectory(prefix="drlab-bench-vc-") as tmp:
        topology = Path(tmp) / "bench-vcenter.yaml"
        bench_topology(topology)
        t0 = time.perf_counter()
        lab = launcher.up(str(topology), Path(tmp) / "state")
        up = time.perf_counter() - t0
        try:
            si = connect(lab)
            t0 = time.perf_counter()
            list_vms(si)  # cold: every property serialised for the first time
            cold = time.perf_counter() - t0
            listing, baseline, bulk = [], [], []
            for _ in range(RUNS):
                t0 = time.perf_counter()
                list_vms(si)
                listing.append(time.perf_counter() - t0)
                baseline.append(round_trips(si, 2 * LISTED_VMS + 1))
                bulk.append(retrieve_bulk(si))
            Disconnect(si)
        finally:
            launcher.down(Path(tmp) / "state")
    med = statistics.median
    print(
        f"lab with {TOTAL_VMS} VMs up in {up:.2f} s; median of {RUNS} runs, pyvmomi 9 over HTTPS:"
    )
    print(
        row(
            f"list {LISTED_VMS} VMs: name + config.hardware.device",
            f"{med(listing):.3f} s",
            "target <= 1.0 s",
            f"baseline {2 * LISTED_VMS + 1} x CurrentTime: {med(baseline):.3f} s",
        )
    )
    print(row("  same, first run (cold property cache)", f"{cold:.3f} s"))
    print(
        row(
            f"RetrievePropertiesEx {len(PROPS)} props x {TOTAL_VMS} VMs",
            f"{med(bulk):.3f} s",
            "target <= 0.5 s",
        )
    )
    print(
        "  all runs: list "
        + ", ".join(f"{x:.3f}" for x in listing)
        + " | bulk "
        + ", ".join(f"{x:.3f}" for x in bulk)
        + " | baseline "
        + ", ".join(f"{x:.3f}" for x in baseline)
    )


if __name__ == "__main__":
    main()
