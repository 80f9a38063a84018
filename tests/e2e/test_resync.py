"""Resync end to end: each trigger marks the VM with its reason, a resync brings the replica
to the source (a later recovery point verifies), only blocks that differed are sent, a failed
resync's error is visible through the SDK and cleared, and the automatic resync runs in the
off-hours window of lab time.

One lab for the module: the default topology with a small change journal (so a burst of
writes overflows it quickly) and an off-hours window twelve lab hours ahead (the drills run
the clock at 60x for a few minutes; the window is reached only by `drlab clock jump`).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml

from lab import launcher
from lab.asr import Asr
from lab.kit.clock import LabClock
from scenarios import _failover as f
from scenarios import _resync as rs
from scenarios.runner import Drill, run_scenario
from tests.conftest import LabHandle, replicating_lab_turn
from tests.helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

VM = "lin-db-01"
TOPOLOGY = Path(__file__).resolve().parents[2] / "lab" / "topologies" / "default.yaml"
WINDOW_AHEAD = timedelta(hours=12)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("resync-lab")
    topology = yaml.safe_load(TOPOLOGY.read_text())
    topology["name"] = "resync-e2e"
    topology["onprem"]["mobility"] = {"journal_limit": "32MiB"}
    start = datetime.now(UTC) + WINDOW_AHEAD  # lab time starts at wall time
    topology["replication"]["resync_window"] = {
        "start": start.strftime("%H:%M"),
        "end": (start + timedelta(hours=1)).strftime("%H:%M"),
    }
    path = base / "resync-e2e.yaml"
    path.write_text(yaml.safe_dump(topology))
    with replicating_lab_turn(tmp_path_factory):
        state = base / "state"
        handle = LabHandle(state, launcher.up(str(path), state))
        handle.window_start = start
        try:
            yield handle
        finally:
            launcher.down(state)


@pytest.fixture
def asr(lab):
    with Asr(lab.state_dir) as client:
        yield client


def drill_ok(lab, name: str) -> dict:
    report = run_scenario(name, lab.state_dir)
    assert report["ok"], report
    figures = report["figures"]
    # Only blocks that differed travel (checksum exchange reported apart), and fewer than the
    # blocks scanned: equal blocks stay home.
    assert figures["bytes_sent"] <= 1.1 * figures["bytes_differed"] + (64 << 10), figures
    assert figures["bytes_differed"] < figures["source_bytes_scanned"], figures
    assert figures["transferred_bytes_on_item"] == figures["bytes_sent"], figures
    return report


def test_forced_shutdown_marks_resync_and_resync_converges(lab):
    drill_ok(lab, "forced-shutdown-resync")


def test_disk_resize_marks_disk_resized_and_resync_takes_the_new_size(lab):
    report = drill_ok(lab, "disk-resize-resync")
    assert report["figures"]["disk_bytes_after"] == 2 * report["figures"]["disk_bytes_before"]


def test_network_cut_overflows_the_journal_and_resync_converges_over_a_slow_link(lab):
    report = drill_ok(lab, "network-cut-resync")
    assert report["figures"]["burst_bytes"] > report["figures"]["journal_limit_bytes"]


def test_a_differential_refused_again_and_again_breaks_the_stream_and_resync_mends_it(lab):
    drill = Drill(lab.state_dir)
    try:
        rs.protect(drill, VM)
        # The process server refuses the agent's next sends as damaged, three times over.
        rule = {
            "operation": "differentials",
            "times": 3,
            "error": {
                "status": 400,
                "code": "CorruptDifferential",
                "message": "ChecksumMismatch: record 0 (lab fault)",
            },
        }
        ps = lab.url("ps-01")
        requests.post(
            f"{ps}/_lab/faults", json=[rule], verify=lab.ca, timeout=30
        ).raise_for_status()
        rs.wait_required(drill, VM, "ResyncRequired")
        error = next(
            e
            for e in drill.asr.protected(VM).properties.health_errors
            if e.error_code == "ResyncRequired"
        )
        assert "refusing a differential" in error.summary_message
        job = rs.resync(drill, VM)
        rs.report_and_verify(drill, VM, job)
    finally:
        drill.close()


def test_failed_resync_error_is_cleared_by_the_automatic_resync_in_the_window(lab, asr):
    drill = Drill(lab.state_dir)
    try:
        rs.protect(drill, VM)
        f.power_off(drill, VM)
        rs.power_on(drill, VM)
        rs.wait_required(drill, VM, "ResyncRequired")
        item = asr.protected(VM).properties
        assert "RepairReplication" in item.allowed_operations
        # Out of the window: nothing starts on its own.
        assert item.current_scenario is None or item.current_scenario.scenario_name == "None"

        # With the agent's link down, a manual resync fails and says why.
        f.set_link(drill, "agent-to-ps-01", False)
        try:
            poller, _ = asr.resync(VM)
            with pytest.raises(Exception, match="process server"):
                poller.result()
        finally:
            f.set_link(drill, "agent-to-ps-01", True)
        failed = wait_for(
            lambda: [
                e
                for e in asr.protected(VM).properties.health_errors or []
                if e.error_code == "ResyncFailed"
            ],
            timeout=60,
            message="the ResyncFailed health error through the SDK",
        )
        assert "could not serve the resync" in failed[0].summary_message

        # The window opens (lab time): the automatic resync runs and clears the error.
        clock = LabClock(lab.state_dir / "clock.json")
        ahead = (lab.window_start - datetime.fromtimestamp(clock.time(), UTC)).total_seconds()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "lab.cli",
                "clock",
                "jump",
                f"{int(ahead) + 60}s",
                "--state-dir",
                str(lab.state_dir),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        job = wait_for(
            lambda: next(
                (
                    j
                    for j in asr.jobs()
                    if j.properties.scenario_name == "RepairReplication"
                    and j.properties.target_object_name == VM
                    and j.properties.state == "Succeeded"
                    and "Automatic" in str(j.properties.custom_details)
                ),
                None,
            ),
            timeout=300,
            message="an automatic resync job that succeeded",
        )
        assert job.properties.friendly_name == "Resynchronize"
        rs.report_and_verify(drill, VM, job.properties)
        errors = asr.protected(VM).properties.health_errors or []
        assert not [e for e in errors if e.error_code.startswith("Resync")], errors
    finally:
        drill.close()
