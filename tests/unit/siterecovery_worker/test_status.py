"""What the vault shows (through the real `ReplicationState`): protection state moves, progress,
RPO, the alarm raised and resolved once per crossing, health errors."""

from __future__ import annotations

import random

import pytest

from fakes.azure.siterecovery.worker.status import StatusReporter

from .conftest import Harness, seed_vault
from .test_engine import fill, replicate_initially


class Monitor:
    def __init__(self):
        self.published: list[tuple[str, dict]] = []
        self.alerts: list[tuple[str, dict, str]] = []

    def publish(self, event_type, data, **props):
        self.published.append((event_type, data))

    def alert(self, event_type, data, subject, body, **props):
        self.alerts.append((event_type, data, subject))


@pytest.fixture
def policed(tmp_path, source):
    h = Harness(tmp_path, source)
    h.vault.close()
    h.vault, h.key = seed_vault(
        tmp_path / "policed-vault.db", source, policy={"recoveryPointThresholdInMinutes": 15}
    )
    yield h
    h.progress.close()
    h.vault.close()


def doc(h):
    return h.vault.store.get("protected_items", h.key.fabric, h.key.container, h.key.name)


def report(h, reporter, now, issues=()):
    return reporter.report(h.vm, h.vault.protected_item(h.key), now, issues=list(issues))


def test_states_progress_and_the_rpo_alarm(policed, clock):
    h, monitor = policed, Monitor()
    reporter = StatusReporter(h.progress, h.vault, monitor)
    replicate_initially(h, random.Random(20))
    h.run(0)
    report(h, reporter, clock())
    item = doc(h)
    assert item["protectionState"] == "InitialReplicationInProgress"
    assert 0 < item["replication"]["resyncProgressPercentage"] < 100
    assert item["replication"]["rpoInSeconds"] is None

    h.source.ir_complete()
    fill(h.source, 0, 2, random.Random(21))
    for i in (0, 1):
        h.upload(h.source.flush(i))
    h.run_all()
    report(h, reporter, clock() + 30)
    item = doc(h)
    assert item["protectionState"] == "Protected" and item["protectionStage"] == "Protected"
    assert item["replication"]["resyncProgressPercentage"] == 100
    assert item["replication"]["rpoInSeconds"] == 30
    assert [e for e, _ in monitor.published] == ["InitialReplicationCompleted"]
    assert item.get("replicationHealth", "Normal") == "Normal"

    late = clock() + 16 * 60
    report(h, reporter, late)
    report(h, reporter, late + 60)  # still above: no second alert
    assert [a[0] for a in monitor.alerts] == ["RpoThresholdExceeded"]
    item = doc(h)
    assert item["replicationHealth"] == "Critical"
    assert [e["errorCode"] for e in item["healthErrors"]] == ["RpoThresholdExceeded"]
    events = h.vault.store.docs("events")
    assert [e["severity"] for e in events if e["eventType"] == "VmHealth"] == ["Info", "Warning"]
    assert h.progress.vm(h.vm.vm_id)["rpo_alert"] == 1

    clock.t = late + 120
    for i in (0, 1):
        h.upload([h.source.marker(i)])
    h.run_all()
    report(h, reporter, clock.t + 5)
    assert [a[0] for a in monitor.alerts] == ["RpoThresholdExceeded", "RpoThresholdResolved"]
    item = doc(h)
    assert item["replicationHealth"] == "Normal" and item["healthErrors"] == []
    assert h.progress.vm(h.vm.vm_id)["rpo_alert"] == 0

    # A restarted reporter does not alert again for the same state.
    again = StatusReporter(h.progress, h.vault, monitor)
    report(h, again, clock.t + 6)
    assert len(monitor.alerts) == 2


def test_issues_become_warning_health_errors_until_they_clear(policed, clock):
    h, reporter = policed, StatusReporter(policed.progress, policed.vault, Monitor())
    replicate_initially(h, random.Random(22))
    issue = {"code": "ReplicationLogMissing", "message": "logs 3..4 of e1a2b3-1", "since": 1.0}
    report(h, reporter, clock(), issues=[issue])
    item = doc(h)
    assert item["replicationHealth"] == "Warning"
    assert [e["errorCode"] for e in item["healthErrors"]] == ["ReplicationLogMissing"]
    report(h, reporter, clock())
    assert doc(h)["healthErrors"] == [] and doc(h)["replicationHealth"] == "Normal"
