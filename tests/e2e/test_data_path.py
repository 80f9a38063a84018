"""The data path end to end: the full-replication drill, then faults that must lose nothing.

One lab for the module (the drill enables replication of the three default VMs and speeds the
lab clock up); each fault test then breaks one part of the path — the process server killed
mid-upload, the worker killed mid-apply, Azurite restarted, the agent restarted in the guest,
a differential refused as damaged — and ends with `drlab verify` passing on a recovery point
taken after the fault.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import uuid

import pytest
import requests
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from components import agent_tokens
from lab import launcher
from lab.asr import Asr
from lab.kit import wire
from scenarios.runner import run_scenario
from tests.conftest import LabHandle, replicating_lab_turn
from tests.helpers import wait_for

# The first test also waits for the other replicating lab's turn (see replicating_lab_turn).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

VM = "lin-db-01"
SPEED = 60.0  # crash-consistent points every 5 lab minutes = every 5 s


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with replicating_lab_turn(tmp_path_factory):
        state = tmp_path_factory.mktemp("data-path-lab")
        handle = LabHandle(state, launcher.up("default", state))
        try:
            yield handle
        finally:
            launcher.down(state)


@pytest.fixture(scope="module")
def replicating(lab):
    """The three VMs replicating: the full-replication drill, run as a user runs it."""
    report = run_scenario("full-replication", lab.state_dir)
    assert report["ok"], report
    return report


@pytest.fixture
def asr(lab):
    with Asr(lab.state_dir) as client:
        yield client


def speed(lab, value: float) -> None:
    from lab.kit.clock import LabClock

    LabClock(lab.state_dir / "clock.json").set_speed(value)


def lab_now(lab) -> float:
    from lab.kit.clock import LabClock

    return LabClock(lab.state_dir / "clock.json").time()


def points(asr, vm):
    site = asr.site()
    item = asr.protected(vm)
    return list(
        asr.client.recovery_points.list_by_replication_protected_items(
            asr.rg, asr.vault, site.fabric, site.container, item.name
        )
    )


def point_after(asr, vm, lab_time, timeout=120):
    """A recovery point of `vm` taken after `lab_time` (lab epoch seconds)."""

    def newer():
        for p in points(asr, vm):
            if p.properties.recovery_point_time.timestamp() > lab_time:
                return p
        return None

    return wait_for(newer, timeout=timeout, message=f"a recovery point of {vm} after the fault")


def verify(lab, vm, point):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lab.cli",
            "verify",
            vm,
            "--point",
            point,
            "--json",
            "--state-dir",
            str(lab.state_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.stdout, f"drlab verify exited {proc.returncode}: {proc.stderr}"
    result = json.loads(proc.stdout)
    assert proc.returncode == 0 and result["ok"], (proc.stderr, result)
    return result


def test_full_replication_drill(replicating):
    assert replicating["ok"]
    assert replicating["figures"]["crash_point_intervals_minutes"]


def test_process_server_killed_mid_upload_loses_nothing(lab, replicating, asr):
    speed(lab, SPEED)
    # Uploads are continuous under the workloads' churn; a SIGKILL lands mid-upload.
    launcher.restart_service(lab.state_dir, "ps-01", kill=True)
    fault = lab_now(lab)
    point = point_after(asr, VM, fault)
    verify(lab, VM, point.name)


def test_worker_killed_mid_apply_loses_nothing(lab, replicating, asr):
    speed(lab, SPEED)
    launcher.restart_service(lab.state_dir, "sr-worker", kill=True)
    fault = lab_now(lab)
    point = point_after(asr, VM, fault)
    verify(lab, VM, point.name)


@pytest.mark.parametrize("service", ["azurite", "azurite-disks"])
def test_azurite_restarted_loses_nothing(lab, replicating, asr, service):
    speed(lab, SPEED)
    launcher.restart_service(lab.state_dir, service)
    fault = lab_now(lab)
    point = point_after(asr, VM, fault)
    verify(lab, VM, point.name)


def test_agent_restarted_in_the_guest_loses_nothing(lab, replicating, asr):
    speed(lab, SPEED)
    si = SmartConnect(
        host="127.0.0.1",
        port=lab.info["services"]["vcenter"]["port"],
        user=lab.env["DRLAB_VCENTER_USER"],
        pwd=lab.env["DRLAB_VCENTER_PASSWORD"],
        sslContext=ssl.create_default_context(cafile=lab.ca),
    )
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        vm = next(v for v in view.view if v.name == VM)
        auth = vim.vm.guest.NamePasswordAuthentication(username="root", password="Guest1!linux")
        pm = content.guestOperationsManager.processManager
        pid = pm.StartProgramInGuest(
            vm,
            auth,
            vim.vm.guest.ProcessManager.ProgramSpec(
                programPath="/bin/systemctl", arguments="restart svagentsd"
            ),
        )
        done = wait_for(
            lambda: [p for p in pm.ListProcessesInGuest(vm, auth, [pid]) if p.exitCode is not None],
            timeout=60,
            message="the restart",
        )
        assert done[0].exitCode == 0
    finally:
        Disconnect(si)
    fault = lab_now(lab)
    point = point_after(asr, VM, fault)
    verify(lab, VM, point.name)


def test_damaged_differentials_are_refused_and_sent_again(lab, replicating, asr):
    speed(lab, SPEED)
    ps = lab.url("ps-01")
    # A damaged differential is refused with the reason, and nothing of it is kept.
    cs_state = requests.get(f"{lab.url('cs-01')}/_lab/state", verify=lab.ca, timeout=30).json()
    agent = next(a for a in cs_state["agents"] if a["hostname"] == VM)
    token = _agent_token(lab, agent)
    probe = f"probe-{uuid.uuid4().hex[:4]}"
    good = wire.encode(
        wire.Message(
            agent["vm_id"],
            probe,
            1,
            1,
            1 << 20,
            (wire.Record(0, b"x" * 512),),
            captured_at=1.0,
        )
    )
    for damaged, reason in (
        (good[:-7], "Truncated"),
        (good[:60] + bytes([good[60] ^ 0xFF]) + good[61:], "Checksum"),
    ):
        resp = requests.post(
            f"{ps}/v1/differentials",
            data=damaged,
            verify=lab.ca,
            timeout=30,
            headers={"Authorization": f"Agent {token}"},
        )
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] == "CorruptDifferential"
        assert reason in resp.json()["error"]["message"]
    # Nothing of the damaged ones was cached (the agents' own logs come and go meanwhile, so
    # the probe's stream is looked for in the process server's durable cache itself).
    cache = lab.state_dir / "services" / "ps-01" / "cache" / agent["vm_id"]
    assert not (cache / probe).exists()
    # The agent's own sends refused as damaged twice: it sends them again, nothing is lost.
    rule = {
        "operation": "differentials",
        "times": 2,
        "error": {
            "status": 400,
            "code": "CorruptDifferential",
            "message": "ChecksumMismatch: record 0 (lab fault)",
        },
    }
    requests.post(f"{ps}/_lab/faults", json=[rule], verify=lab.ca, timeout=30).raise_for_status()
    wait_for(
        lambda: not requests.get(f"{ps}/_lab/faults", verify=lab.ca, timeout=30).json()["rules"],
        timeout=60,
        message="the agents to meet the fault rule",
    )
    fault = lab_now(lab)
    point = point_after(asr, VM, fault)
    verify(lab, VM, point.name)


def _agent_token(lab, agent) -> str:
    """A token the process server accepts for this VM's agent, signed with the configuration
    server's agent-token key (from its database: the test plays a damaged agent)."""
    import sqlite3

    db = sqlite3.connect(lab.state_dir / "services" / "cs-01" / "config.db")
    try:
        (value,) = db.execute("SELECT value FROM settings WHERE key='agent_token_key'").fetchone()
    finally:
        db.close()
    return agent_tokens.issue(value.encode(), agent["id"], agent["vm_id"])
