"""Failover end to end through the Site Recovery SDK: a test failover drill that leaves
production untouched, wrong transitions refused, an unplanned failover with the source down
(to an app-consistent point, then changed to a crash-consistent one, then committed), and a
planned failover that loses nothing. Each failed-over VM's disks, as made, equal the source at
the recovery point (`drlab verify --failover`), and its application data checks at boot.

One lab for the module, in order: the multi-VM plan (lin-web-01 and lin-db-01 in one
consistency group), the drill (it test-fails every VM over and cleans up), then the
failovers, each on its own VM (a committed VM stays in Azure).
"""

from __future__ import annotations

import json
import ssl

import pytest
from azure.core.exceptions import HttpResponseError
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from lab import failover, launcher, plans
from lab.asr import Asr
from lab.kit.clock import LabClock
from scenarios import _failover as f
from scenarios.runner import Drill, run_scenario
from tests.conftest import LabHandle, replicating_lab_turn
from tests.helpers import wait_for

# The first test also waits for the other replicating lab's turn (see replicating_lab_turn).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with replicating_lab_turn(tmp_path_factory):
        state = tmp_path_factory.mktemp("failover-lab")
        handle = LabHandle(state, launcher.up("default", state))
        try:
            yield handle
        finally:
            launcher.down(state)


@pytest.fixture
def asr(lab):
    with Asr(lab.state_dir) as client:
        yield client


def _passed(report: dict) -> None:
    if not report["ok"]:
        pytest.fail(
            f"{report['scenario']} failed: {report['error']}\n{json.dumps(report, indent=1)}"
        )


def _vm(lab, name):
    env = lab.env
    context = ssl.create_default_context(cafile=lab.ca)
    host, port = env["DRLAB_VCENTER_URL"].split("//")[1].split("/")[0].split(":")
    si = SmartConnect(
        host=host,
        port=int(port),
        user=env["DRLAB_VCENTER_USER"],
        pwd=env["DRLAB_VCENTER_PASSWORD"],
        sslContext=context,
    )
    view = si.content.viewManager.CreateContainerView(
        si.content.rootFolder, [vim.VirtualMachine], True
    )
    vm = next(v for v in view.view if v.name == name)
    return si, vm


def test_multi_vm_plan_fails_a_group_over_at_a_shared_point_in_boot_order(lab):
    report = run_scenario("multi-vm-plan", lab.state_dir)
    _passed(report)
    figures = report["figures"]
    assert figures["violations_at_independent_points"] > 0
    assert figures["shared_point"]


def test_a_failing_script_action_fails_the_plan_and_cleanup_still_removes_its_vms(lab, asr):
    scripts = lab.state_dir / "scripts"
    scripts.mkdir(exist_ok=True)
    (scripts / "smoke-test.sh").write_text('echo "smoke test: $DRLAB_PLAN_VMS"; exit 3\n')
    f.ensure_protected(Drill(lab.state_dir), ["win-app-01"])
    plans.create(
        asr,
        "bad-script",
        [{"vms": ["win-app-01"], "end": [{"name": "smoke", "script": "smoke-test.sh"}]}],
    ).result()
    with pytest.raises(HttpResponseError) as err:
        plans.test_failover(asr, "bad-script").result()
    assert "ScriptActionFailed" in str(err.value) or "exited with status 3" in str(err.value)
    job = next(j for j in asr.jobs() if j.properties.target_object_name == "bad-script")
    assert job.properties.state == "Failed"
    assert "smoke test" in job.properties.errors[0].service_error_details.message
    plan = plans.get(asr, "bad-script")
    assert plan.properties.allowed_operations == ["TestFailoverCleanup"]
    group = asr.settings["target_resource_group"]
    assert asr.compute.virtual_machines.get(group, "win-app-01-test")  # made before the action
    plans.test_failover_cleanup(asr, "bad-script", "script fixed later").result()
    with pytest.raises(HttpResponseError):
        asr.compute.virtual_machines.get(group, "win-app-01-test")
    assert asr.protected("win-app-01").properties.test_failover_state == "None"
    asr.client.replication_recovery_plans.begin_delete(asr.rg, asr.vault, "bad-script").result()
    assert "bad-script" not in {
        p.name for p in asr.client.replication_recovery_plans.list(asr.rg, asr.vault)
    }


def test_dr_drill_test_fails_over_every_vm_and_leaves_production_untouched(lab):
    report = run_scenario("dr-drill", lab.state_dir)
    _passed(report)


def _refused(call, *args):
    with pytest.raises(HttpResponseError) as err:
        call(*args).result()
    return err.value


def test_wrong_transitions_are_refused_and_change_nothing(lab, asr):
    before = asr.protected("lin-web-01").properties
    assert before.protection_state == "Protected"
    for call in (failover.commit, failover.cancel, failover.test_failover_cleanup):
        error = _refused(call, asr, "lin-web-01")
        assert error.status_code == 400
        assert error.error.code == "OperationNotAllowed", error.message
        assert "Allowed operations" in error.message
    error = _refused(failover.apply_point, asr, "lin-web-01", "latest-crash")
    assert error.error.code == "OperationNotAllowed"
    after = asr.protected("lin-web-01").properties
    assert after.protection_state == "Protected" and after.active_location == "Primary"
    assert after.allowed_operations == before.allowed_operations


def test_unplanned_failover_with_the_source_down_change_point_and_commit(lab, asr):
    vm = "win-app-01"
    LabClock(lab.state_dir / "clock.json").set_speed(f.SPEED)  # app points every 30 s
    wait_for(
        lambda: any(
            p.properties.recovery_point_type == "AppConsistent"
            for p in failover.recovery_points(asr, vm)
        ),
        timeout=180,
        message=f"an app-consistent point of {vm}",
    )
    si, source = _vm(lab, vm)
    try:
        WaitForTask(source.PowerOffVM_Task())  # the site is down: a hard power-off
    finally:
        Disconnect(si)
    item = failover.unplanned_failover(asr, vm, "latest-app").result().properties
    assert item.protection_state == "UnplannedFailoverCommitPendingStatesBegin"
    assert item.active_location == "Recovery"
    assert set(item.allowed_operations) >= {"Commit", "ChangePit", "CancelFailover"}
    drill = Drill(lab.state_dir)
    try:
        made = f.azure_vm(drill, f.target_group(drill), vm)
        assert made["power"] == "running" and made["application_ok"], made
        assert made["vnets"] == ["vnet-prod"]
        result = f.verify_failover(drill, vm, "run")
        assert result["type"] == "AppConsistent"

        # Change the point before commit: the VM is made again from a crash-consistent one.
        point = failover.point_id(asr, vm, "latest-crash")
        item = failover.apply_point(asr, vm, point.rsplit("/", 1)[-1]).result().properties
        assert item.failover_recovery_point_id.lower() == point.lower()
        result = f.verify_failover(drill, vm, "run")
        assert result["type"] == "CrashConsistent" and result["application"]["ok"]
        assert f.azure_vm(drill, f.target_group(drill), vm)["application_ok"]
    finally:
        drill.close()

    item = failover.commit(asr, vm).result().properties
    assert item.protection_state == "UnplannedFailoverCommitted"
    assert item.allowed_operations == ["DisableProtection"]
    assert failover.recovery_points(asr, vm) == []  # commit ends the choice of point
    error = _refused(failover.test_failover, asr, vm)
    assert error.error.code in ("OperationNotAllowed", "InvalidInput")


def test_planned_failover_loses_nothing(lab, monkeypatch):
    monkeypatch.setenv("DRLAB_DRILL_VM", "lin-web-01")
    report = run_scenario("planned-failover", lab.state_dir)
    _passed(report)
    assert report["figures"]["transactions_lost"] == 0


def test_unplanned_failover_with_the_site_down_reports_data_loss(lab, monkeypatch):
    monkeypatch.setenv("DRLAB_DRILL_VM", "lin-db-01")
    report = run_scenario("unplanned-failover", lab.state_dir)
    _passed(report)
    figures = report["figures"]
    assert figures["transactions_lost"] >= 0 and figures["data_loss_lab_seconds"] >= 0
    assert figures["rpo_threshold_seconds"] == 15 * 60
