"""`drlab up` to ready and `drlab down`, median of 5 runs, as a user runs them (the CLI).

Two labs: the foundation (Entra ID, Azurite, the ARM front) and the default lab (the whole
site: vCenter with three running guests, configuration, process and master target servers,
Service Bus, mail, and the vault setup through the SDK). Baseline, same run: Azurite alone,
from process start to its first HTTPS answer, which bounds how fast any lab can come up.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.kit.pki import LabPKI
from lab.launcher import _probe, find_node_modules

from ._util import median, row, timed

RUNS = 5


def azurite_alone(workdir: Path) -> float:
    pki = LabPKI(workdir / "pki")
    pki.ensure_ca()
    cert = pki.service_cert("azurite")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    import ssl

    from fakes.azure.storage import azurite_command

    cmd = azurite_command(
        node=shutil.which("node"),
        node_modules=find_node_modules(),
        port=port,
        location=workdir / "data",
        cert=cert.cert,
        key=cert.key,
    )
    (workdir / "data").mkdir(exist_ok=True)
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert_path))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, AZURITE_ACCOUNTS="bench:" + "a" * 88),
    )
    try:
        while not _probe(f"https://127.0.0.1:{port}", "/", ctx, True):
            if time.perf_counter() - t0 > 60:
                raise RuntimeError("Azurite did not start")
            time.sleep(0.01)
        return time.perf_counter() - t0
    finally:
        proc.kill()
        proc.wait()


def foundation_topology(directory: Path) -> Path:
    """The default topology without the on-premises site, Service Bus, mail and the disks
    account: the lab's foundation (Entra ID, Azurite, the ARM front)."""
    import yaml

    from lab.topology import TOPOLOGY_DIR

    data = yaml.safe_load((TOPOLOGY_DIR / "default.yaml").read_text())
    for section in ("vcenter", "onprem", "replication", "servicebus", "mail"):
        data.pop(section, None)
    # The foundation is one storage account; the disks account (a second Azurite, and the
    # Site Recovery worker that writes it) belongs to the data path, measured with the default
    # lab below.
    data["storage"]["accounts"] = [a for a in data["storage"]["accounts"] if a["role"] != "disks"]
    data["name"] = "foundation"
    path = directory / "foundation.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def measure(topology: str, tmp: Path, label: str, baseline: list | None = None):
    ups, downs = [], []
    drlab = [sys.executable, "-m", "lab.cli"]
    for i in range(RUNS):
        if baseline is not None:
            baseline.append(azurite_alone(tmp / f"azurite-{label}{i}"))
        state = ["--state-dir", str(tmp / f"lab-{label}{i}")]
        with timed(ups):
            subprocess.run(
                [*drlab, "up", "--topology", topology, *state], check=True, capture_output=True
            )
        with timed(downs):
            subprocess.run([*drlab, "down", *state], check=True, capture_output=True)
    return ups, downs


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="drlab-bench-") as tmp:
        tmp = Path(tmp)
        baseline: list[float] = []
        f_ups, f_downs = measure(str(foundation_topology(tmp)), tmp, "f", baseline)
        d_ups, d_downs = measure("default", tmp, "d")
    print(f"median of {RUNS} runs, wall time of the CLI command:")
    print(
        row(
            "foundation lab up (Entra, Azurite, ARM)",
            f"{median(f_ups):.2f} s",
            "target <= 3 s",
            f"Azurite alone: {median(baseline):.2f} s",
        )
    )
    print(row("foundation lab down", f"{median(f_downs):.2f} s", "target <= 1 s"))
    print(row("default lab up (12 processes + vault setup)", f"{median(d_ups):.2f} s"))
    print(row("default lab down", f"{median(d_downs):.2f} s", "target <= 1 s"))
    for label, ups, downs in (("foundation", f_ups, f_downs), ("default", d_ups, d_downs)):
        print(
            f"  {label}: up "
            + ", ".join(f"{u:.2f}" for u in ups)
            + " | down "
            + ", ".join(f"{d:.2f}" for d in downs)
        )


if __name__ == "__main__":
    main()
