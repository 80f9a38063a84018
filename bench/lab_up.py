"""`drlab up` to ready and `drlab down`, median of 5 runs, as a user runs them (the CLI).

Baseline, same run: Azurite alone, from process start to its first HTTPS answer, which bounds
how fast any lab with Blob storage can come up.
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


def main() -> None:
    ups, downs, baseline = [], [], []
    drlab = [sys.executable, "-m", "lab.cli"]
    with tempfile.TemporaryDirectory(prefix="drlab-bench-") as tmp:
        for i in range(RUNS):
            baseline.append(azurite_alone(Path(tmp) / f"azurite{i}"))
            state = ["--state-dir", str(Path(tmp) / f"lab{i}")]
            with timed(ups):
                subprocess.run([*drlab, "up", *state], check=True, capture_output=True)
            with timed(downs):
                subprocess.run([*drlab, "down", *state], check=True, capture_output=True)
    print(f"median of {RUNS} runs, wall time of the CLI command:")
    print(
        row(
            "drlab up (to every service ready)",
            f"{median(ups):.2f} s",
            "target <= 3 s",
            f"Azurite alone: {median(baseline):.2f} s",
        )
    )
    print(row("drlab down", f"{median(downs):.2f} s", "target <= 1 s"))
    print(
        "  all runs: up "
        + ", ".join(f"{u:.2f}" for u in ups)
        + " | down "
        + ", ".join(f"{d:.2f}" for d in downs)
    )


if __name__ == "__main__":
    main()
