"""Test failover of a 3-VM recovery plan, through the Site Recovery SDK, until every VM is
booted in Azure and its application data checked at boot. Prints figures; asserts nothing.

    .venv/bin/python -m bench failover

A lab of its own: the default topology with each VM given one 4 GiB disk, into which 256 MiB
are written (sparse: the rest stays unallocated) before replication is enabled. The three VMs
replicate to a first recovery point; then, with the lab clock at 1x:

- baseline, same run: the test failover of one VM on its own (protected item), and its
  cleanup;
- the plan (one boot group of the three VMs): test failover until the SDK's poller returns,
  every VM running with its application checked; time to ready per VM (from the job's start
  to the VM's boot, lab time at 1x); then cleanup. Target: <= 5 s for the plan.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from lab import launcher
from lab.topology import TOPOLOGY_DIR

from ._util import row

GiB = 1 << 30
MiB = 1 << 20
ALLOCATED = 256 * MiB
ROUNDS = 2
TARGET_SECONDS = 5.0


def _topology(directory: Path) -> Path:
    data = yaml.safe_load((TOPOLOGY_DIR / "default.yaml").read_text())
    data["name"] = "bench-failover"
    for dc in data["vcenter"]["datacenters"]:
        for vm in dc["vms"]:
            vm["disks"] = [{"size": "4GiB"}]
            vm["workload"] = {k: v for k, v in (vm.get("workload") or {}).items() if k != "ledger"}
    path = directory / "bench-failover.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _allocate(state: Path, vm: str) -> None:
    """256 MiB of data in the upper half of the VM's disk (the guest's areas are at its start):
    written to the flat file before replication starts, as a disk's existing data."""
    flat = next(state.rglob(f"{vm}-flat.vmdk"))
    block = os.urandom(4 * MiB)
    fd = os.open(flat, os.O_WRONLY)
    try:
        for offset in range(2 * GiB, 2 * GiB + ALLOCATED, len(block)):
            os.pwrite(fd, block, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def _wait(what: str, condition, timeout: float = 600.0, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)  # polling the lab with a deadline


def main() -> None:
    from lab import failover, plans
    from lab.asr import Asr
    from lab.kit.clock import LabClock

    base = Path(tempfile.mkdtemp(prefix="drlab-bench-failover-"))
    state = base / "state"
    try:
        launcher.up(str(_topology(base)), state)
        clock = LabClock(state / "clock.json")
        with Asr(state) as asr:
            names = [
                vm["name"] for dc in asr.topology["vcenter"]["datacenters"] for vm in dc["vms"]
            ]
            print(
                f"  preparing: {', '.join(names)}: 4 GiB disks, 256 MiB allocated each", flush=True
            )
            for vm in names:
                _allocate(state, vm)
            clock.set_speed(120.0)
            t0 = time.perf_counter()
            for poller in [asr.enable(vm) for vm in names]:
                poller.result()
            _wait(
                "every VM Protected with a recovery point",
                lambda: all(
                    asr.protected(vm).properties.protection_state == "Protected"
                    and failover.recovery_points(asr, vm)
                    for vm in names
                ),
            )
            print(row("initial replication of 3 x 256 MiB", f"{time.perf_counter() - t0:.1f} s"))
            clock.set_speed(1.0)
            plans.create(asr, "bench-plan", [{"vms": names}]).result()
            group = asr.settings.get("target_resource_group", "drlab-target")

            singles, plan_times, per_vm = [], [], {vm: [] for vm in names}
            for _ in range(ROUNDS):
                t = time.perf_counter()
                failover.test_failover(asr, names[0]).result()
                singles.append(time.perf_counter() - t)
                failover.test_failover_cleanup(asr, names[0]).result()

                t = time.perf_counter()
                plans.test_failover(asr, "bench-plan").result()
                plan_times.append(time.perf_counter() - t)
                job = next(
                    j
                    for j in asr.jobs()
                    if j.properties.target_object_name == "bench-plan"
                    and j.properties.scenario_name == "TestFailover"
                )
                start = job.properties.start_time.timestamp()
                for vm in names:
                    view = asr.compute.virtual_machines.instance_view(group, f"{vm}-test")
                    codes = {s.code.split("/")[0]: s for s in view.statuses}
                    assert codes["ApplicationCheck"].code.endswith("/ok"), view.statuses
                    per_vm[vm].append(codes["ProvisioningState"].time.timestamp() - start)
                plans.test_failover_cleanup(asr, "bench-plan").result()

        best_single, best_plan = min(singles), min(plan_times)
        print(
            row(
                "baseline: test failover of one VM",
                f"{best_single:.2f} s",
                "",
                f"rounds {', '.join(f'{s:.2f}' for s in singles)}",
            )
        )
        print(
            row(
                "test failover of the 3-VM plan (booted, checked)",
                f"{best_plan:.2f} s",
                f"target <= {TARGET_SECONDS:g} s",
                f"{best_plan / best_single:.2f}x one VM; rounds "
                + ", ".join(f"{s:.2f}" for s in plan_times),
            )
        )
        for vm, times in per_vm.items():
            print(row(f"  {vm}: ready after", f"{min(times):.2f} s", "", "from the job's start"))
    finally:
        launcher.down(state)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
