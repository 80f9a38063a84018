"""Resync through the real SDK against a running ARM process: repairReplication runs the
Resynchronize job through the configuration server's ResyncProtection work item and waits for
the recovery point at the tag it names; refusals change nothing; resolveHealthErrors; and the
automatic resync the ARM process starts when `drlab clock jump` reaches the off-hours window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.recoveryservicessiterecovery import models as m
from click.testing import CliRunner

from fakes.azure.siterecovery.replication_state import ReplicationState, health_error
from lab.cli import main as drlab
from lab.kit.clock import CLOCK_FILE, LabClock
from tests.helpers import wait_for

from .conftest import make_cs
from .cs_client import ConfigurationServer, vm
from .test_sdk_vmware_to_azure import Site

TAG = "rs-complete-ep01-1"


class ResyncServer:
    """The in-test configuration server; what it answers to ResyncProtection is the test's."""

    def __init__(self, lab, responses):
        self.items: list[dict] = []
        self.answer = self.succeed
        self.cs = make_cs(lab, responses)
        self.cs.register()
        self.cs.heartbeat()
        self.cs.serve(self._handle)

    def _handle(self, cs, item):
        if item["kind"] != "ResyncProtection":
            return ConfigurationServer.succeed(cs, item)
        self.items.append(item)
        self.answer(cs, item)

    @staticmethod
    def succeed(cs, item):
        cs.report(item["id"], task="Resynchronizing", state="InProgress", progress=50)
        cs.report(item["id"], task="ResynchronizeTask", state="Succeeded")
        result = {"generation": 1, "epoch": "ep01", "tag": TAG, "counters": {"sent_bytes": 4096}}
        cs.report(item["id"], state="Succeeded", result=result)

    @staticmethod
    def fail(cs, item):
        error = {
            "code": "ResyncFailed",
            "message": "resynchronization of lin-rs-01 (generation 1) failed: process server "
            "ps-01 unreachable",
        }
        cs.report(item["id"], task="Resynchronizing", state="Failed", error=error)
        cs.report(item["id"], state="Failed", error=error)


class Protected:
    """A VM enabled through the SDK and marked Protected as the worker would."""

    def __init__(self, lab, sdk, vault, server: ResyncServer, name: str):
        self.sdk, self.vault, self.server = sdk, vault, server
        self.site = Site(sdk, vault, server.cs, [vm(name)])
        item = self.site.protectable()[0]
        self.vm_id = item.name
        sdk.replication_protected_items.begin_create(
            *vault,
            self.site.fabric,
            self.site.container,
            item.name,
            self.site.enable_input(item, lab.info["subscription_id"]),
        ).result()
        self.state = ReplicationState.for_lab(lab.state_dir)
        self.key = next(v for v in self.state.protected_items() if v.vm_id == item.name).key

    def protect(self):
        self.state.update_item(self.key, protection_state="Protected", protection_stage="Protected")

    @property
    def args(self):
        return (*self.vault, self.site.fabric, self.site.container, self.key.name)

    def get(self):
        return self.sdk.replication_protected_items.get(*self.args)

    def jobs(self, scenario: str = "RepairReplication") -> list:
        name = self.get().properties.friendly_name
        query = f"JobName eq '{scenario}' and TargetObjectName eq '{name}'"
        return list(self.sdk.replication_jobs.list(*self.vault, filter=query))

    def close(self):
        self.state.close()
        self.server.cs.stop()


@pytest.fixture
def protected(arm_lab, sdk, vault, responses, request):
    server = ResyncServer(arm_lab, responses)
    item = Protected(arm_lab, sdk, vault, server, f"lin-rs-{request.node.name[-12:]}")
    yield item
    item.close()


def _job(item: Protected, name: str):
    return item.sdk.replication_jobs.get(*item.vault, name)


def test_repair_replication_resynchronizes_and_waits_for_the_point_at_the_tag(protected):
    item = protected
    item.protect()
    # the point waits until the test makes it: the job must stop at that task
    poller = item.sdk.replication_protected_items.begin_repair_replication(*item.args)
    work = wait_for(lambda: item.server.items, timeout=20, message="the ResyncProtection item")[0]
    assert work["payload"]["vmId"] == item.vm_id
    assert work["payload"]["automatic"] is False
    assert [t["friendlyName"] for t in work["tasks"]] == ["Resynchronizing"]
    job_name = work["jobName"]
    job = wait_for(
        lambda: j if (j := _job(item, job_name)).properties.tasks[1].state == "Succeeded" else None,
        timeout=20,
        message="the configuration server's part done",
    )
    assert job.properties.scenario_name == "RepairReplication"
    assert job.properties.friendly_name == "Resynchronize"
    assert job.properties.state == "InProgress"
    assert job.properties.tasks[2].state == "InProgress"
    rpi = item.get()
    assert rpi.properties.current_scenario.scenario_name == "RepairReplication"
    assert rpi.properties.current_scenario.job_id.endswith(job_name)
    with pytest.raises(HttpResponseError) as info:  # one at a time
        item.sdk.replication_protected_items.begin_repair_replication(*item.args)
    assert info.value.status_code == 409

    point = item.state.add_recovery_point(
        item.key,
        time=datetime.now(UTC).timestamp(),
        type="CrashConsistent",
        details={"tag_id": TAG},
    )
    rpi = poller.result()
    assert rpi.properties.protection_state == "Protected"
    assert rpi.properties.current_scenario.scenario_name == "None"
    job = _job(item, job_name)
    assert job.properties.state == "Succeeded"
    assert [t.friendly_name for t in job.properties.tasks] == [
        "Prerequisites check",
        "Resynchronizing",
        "Waiting for a recovery point after resynchronization",
    ]
    details = job.properties.custom_details.affected_object_details
    assert details["ResyncTrigger"] == "Manual"
    assert details["ResyncTag"] == TAG
    assert details["RecoveryPointName"] == point


def test_repair_replication_fails_with_the_configuration_servers_error(protected):
    item = protected
    item.protect()
    item.server.answer = ResyncServer.fail
    poller = item.sdk.replication_protected_items.begin_repair_replication(*item.args)
    with pytest.raises(HttpResponseError):
        poller.result()
    job = _job(item, item.server.items[0]["jobName"])
    assert job.properties.state == "Failed"
    messages = [e.service_error_details.message for e in job.properties.errors]
    assert any("process server ps-01 unreachable" in msg for msg in messages)
    assert job.properties.allowed_actions == ["Restart"]
    assert item.get().properties.current_scenario.scenario_name == "None"


def test_repair_replication_is_refused_unless_protected_and_changes_nothing(protected):
    item = protected
    before = item.get().properties
    assert before.protection_state == "InitialReplicationPending"
    with pytest.raises(HttpResponseError) as info:
        item.sdk.replication_protected_items.begin_repair_replication(*item.args)
    assert info.value.status_code == 400
    assert info.value.error.code == "OperationNotAllowed"
    assert "Allowed operations: DisableProtection" in info.value.error.message
    after = item.get().properties
    assert after.protection_state == before.protection_state
    assert after.allowed_operations == before.allowed_operations
    assert item.jobs() == []
    assert item.server.items == []


def test_resolve_health_errors(protected):
    item = protected
    item.protect()
    rpo = health_error("78144", "The RPO exceeds the threshold.", error_id=f"{item.vm_id}:Rpo")
    other = health_error("78145", "Something else.", error_id=f"{item.vm_id}:Other")
    item.state.set_health_errors(item.key, [rpo, other])

    def resolve(*error_ids):
        return item.sdk.replication_protected_items.begin_resolve_health_errors(
            *item.args,
            m.ResolveHealthInput(
                properties=m.ResolveHealthInputProperties(
                    health_errors=[m.ResolveHealthError(health_error_id=i) for i in error_ids]
                )
            ),
        )

    with pytest.raises(HttpResponseError) as info:
        resolve("not-an-error-of-it")
    assert info.value.status_code == 400
    assert len(item.get().properties.health_errors) == 2  # nothing changed

    rpi = resolve(f"{item.vm_id}:Rpo").result()
    assert [e.error_id for e in rpi.properties.health_errors] == [f"{item.vm_id}:Other"]
    jobs = item.jobs("ResolveHealthErrors")
    assert [j.properties.state for j in jobs] == ["Succeeded"]


# -- automatic resync in the window -------------------------------------------------------------
def _next(t: float, hhmm: str) -> float:
    """The next time of day hhmm (UTC) after lab time t."""
    now = datetime.fromtimestamp(t, UTC)
    h, mm = map(int, hhmm.split(":"))
    at = now.replace(hour=h, minute=mm, second=0, microsecond=0)
    if at <= now:
        at += timedelta(days=1)
    return at.timestamp()


def _drlab(lab, *args) -> object:
    result = CliRunner().invoke(drlab, [*args, "--state-dir", str(lab.state_dir)])
    return result


def test_automatic_resync_in_the_window_and_the_cli(own_arm_lab, sdk_for, responses):
    lab = own_arm_lab
    sdk = sdk_for(lab)
    vault = (lab.info["resource_group"], lab.info["vault"])
    server = ResyncServer(lab, responses)
    server.answer = lambda cs, work: None  # the agent is still at it
    item = Protected(lab, sdk, vault, server, "lin-auto-01")
    try:
        item.protect()
        clock = LabClock(lab.state_dir / CLOCK_FILE)
        # out of the window (the default 22:00-06:00): an agent asking is not served yet
        jump = _drlab(lab, "clock", "jump", str(_next(clock.time(), "12:00") - clock.time()))
        assert jump.exit_code == 0, jump.output
        required = {
            "code": "ResyncRequired",
            "reason": "unclean-shutdown",
            "message": "The VM was not shut down cleanly.",
            "disks": [],
            "since": clock.time(),
        }
        server.cs.heartbeat(
            mobilityAgents=[
                {
                    "vmId": item.vm_id,
                    "agentVersion": "9.62.0.0",
                    "resync": {"required": required, "generation": 0, "state": "Idle"},
                }
            ]
        )
        assert "RepairReplication" in item.get().properties.allowed_operations
        assert item.jobs() == []
        # `drlab clock jump` into the window: the vault starts it
        jump = _drlab(lab, "clock", "jump", str(_next(clock.time(), "22:30") - clock.time()))
        assert jump.exit_code == 0, jump.output
        work = wait_for(lambda: server.items, timeout=20, message="an automatic resync")[0]
        assert work["payload"]["automatic"] is True
        job = _job(item, work["jobName"])
        assert job.properties.custom_details.affected_object_details["ResyncTrigger"] == "Automatic"
        assert item.get().properties.current_scenario.scenario_name == "RepairReplication"

        status = _drlab(lab, "replicate", "status", "lin-auto-01", "--json")
        assert status.exit_code == 0, status.output
        row = json.loads(status.output)
        assert (row["current_job"], row["resync"]) == ("RepairReplication", "0%")
        refused = _drlab(lab, "replicate", "resync", "lin-auto-01")
        assert refused.exit_code == 1
        assert "already running" in refused.output

        # the automatic one ends; a manual one through the CLI, its point already there
        server.succeed(server.cs, work)
        item.state.add_recovery_point(
            item.key, time=clock.time(), type="CrashConsistent", details={"tag_id": TAG}
        )
        wait_for(
            lambda: _job(item, work["jobName"]).properties.state == "Succeeded",
            timeout=20,
            message="the automatic resync to finish",
        )
        server.answer = ResyncServer.succeed
        done = _drlab(lab, "replicate", "resync", "lin-auto-01", "--json")
        assert done.exit_code == 0, done.output
        summary = json.loads(done.output)
        assert summary["state"] == "Succeeded"
        assert summary["trigger"] == "Manual"
        assert (summary["generation"], summary["tag"]) == (1, TAG)
        assert summary["job"] != work["jobName"]
    finally:
        item.close()
