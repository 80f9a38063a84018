"""What the worker tells the world: RPO over the policy's threshold (replicationEvent, health
error, Service Bus, e-mail) and back under it; a missing log as a health error naming the disk
and the range; recovery point and initial replication events on the topic."""

from __future__ import annotations

from tests.helpers import wait_for


def protect_and_copy(lab, name: str):
    source = lab.source(name, (2, 2))
    for i in (0, 1):
        source.write(i, 0, b"\x42" * 65536)
    lab.upload_plan(source)
    source.start_tracking()
    for i in (0, 1):
        lab.upload(source.initial_replication(i))
    source.ir_complete()
    for i in (0, 1):
        lab.upload(source.flush(i))
    lab.wait_applied(source)
    return source


def events_of(lab, name: str) -> list:
    rg, vault = lab.vault
    return [
        e
        for e in lab.sdk().replication_events.list(rg, vault)
        if e.properties.affected_object_friendly_name == name
        and e.properties.event_type == "VmHealth"
    ]


def test_rpo_above_the_threshold_alerts_and_back_under_it_resolves(worker_lab):
    lab, name = worker_lab, "lin-rpo-01"
    source = protect_and_copy(lab, name)
    # The journal says the newest data left the source 20 minutes ago (threshold: 15).
    for i in (0, 1):
        lab.upload([source.marker(i, captured_at=source.clock() - 20 * 60)])
    lab.wait_applied(source)

    warning = wait_for(
        lambda: [e for e in events_of(lab, name) if e.properties.severity == "Warning"],
        timeout=30,
        message="a VmHealth warning event",
    )[0]
    assert "above the replication policy's threshold of 15 minutes" in (
        warning.properties.description
    )
    item = lab.protected_item(source.vm_id)
    assert item.properties.replication_health == "Critical"
    assert [e.error_code for e in item.properties.health_errors] == ["RpoThresholdExceeded"]
    assert item.properties.provider_specific_details.rpo_in_seconds >= 20 * 60

    alerts = wait_for(
        lambda: [b for label, b in lab.receive("asr-alerts") if b.get("vm") == name],
        timeout=30,
        message="the alert on the asr-alerts queue",
    )
    assert alerts[0]["event"] == "RpoThresholdExceeded"
    assert alerts[0]["threshold_seconds"] == 15 * 60 and alerts[0]["rpo_seconds"] >= 20 * 60
    wait_for(lambda: lab.mails(f"RPO threshold exceeded: {name}"), timeout=30, message="the e-mail")

    for i in (0, 1):
        lab.upload([source.marker(i)])
    wait_for(
        lambda: [e for e in events_of(lab, name) if e.properties.severity == "OK"],
        timeout=30,
        message="the resolved event",
    )
    item = lab.protected_item(source.vm_id)
    assert item.properties.replication_health == "Normal" and not item.properties.health_errors
    resolved = wait_for(
        lambda: [b for label, b in lab.receive("asr-alerts") if b.get("vm") == name],
        timeout=30,
        message="the resolution on the asr-alerts queue",
    )
    assert resolved[0]["event"] == "RpoThresholdResolved"
    wait_for(lambda: lab.mails(f"RPO back within threshold: {name}"), timeout=30, message="e-mail")

    topic = lab.receive("asr-events/subscriptions/all")
    labels = {label for label, body in topic if body.get("vm_id") == source.vm_id}
    assert {"InitialReplicationStarted", "RecoveryPointCreated"} <= labels
    assert {"InitialReplicationCompleted", "RpoThresholdExceeded", "RpoThresholdResolved"} <= {
        label for label, body in topic if body.get("vm") == name
    }


def test_a_missing_log_becomes_a_health_error_naming_the_disk_and_range(worker_lab):
    lab, name = worker_lab, "lin-gap-01"
    settings = lab.worker("PUT", "/_lab/settings", json={"gap_grace_seconds": 1}).json()
    assert settings["gap_grace_seconds"] == 1
    try:
        source = protect_and_copy(lab, name)
        for _ in range(3):
            source.write(1, 8192, b"\x07" * 4096)
        late, *rest = source.flush(1, per_message=1)
        lab.upload(rest)

        def missing():
            errors = lab.protected_item(source.vm_id).properties.health_errors or []
            return [e for e in errors if e.error_code == "ReplicationLogMissing"]

        (error,) = wait_for(missing, timeout=30, message="a ReplicationLogMissing health error")
        stream = f"{source.epoch}-1"
        assert f"logs {late.first_sequence}..{late.last_sequence} of stream {stream}" in (
            error.summary_message
        )
        assert source.disk_ids[1] in error.summary_message
        state = lab.vm_state(source.vm_id)
        disk1 = next(s for s in state["streams"] if s["stream"] == stream)
        assert disk1["gap"] == [late.first_sequence, late.last_sequence]
        assert disk1["pending_logs"] == 2

        lab.upload([late])
        lab.wait_applied(source)
        wait_for(lambda: not missing(), timeout=30, message="the health error cleared")
        item = lab.protected_item(source.vm_id)
        assert item.properties.replication_health == "Normal"
    finally:
        lab.worker("PUT", "/_lab/settings", json={"gap_grace_seconds": 30})


def test_fault_rules_fail_a_step_and_the_disk_retries(worker_lab):
    lab = worker_lab
    rules = [{"operation": "snapshot", "error": {"code": "Injected", "message": "no"}, "times": 2}]
    assert lab.worker("POST", "/_lab/faults", json=rules).status_code == 200
    source = protect_and_copy(lab, "lin-fault-01")
    assert lab.worker("GET", "/_lab/faults").json()["rules"] == []  # both fired
    wait_for(lambda: lab.recovery_points(source.vm_id), timeout=30, message="the point")
    bad = lab.worker("POST", "/_lab/verify", json={"vm": "nobody"})
    assert bad.status_code == 404 and bad.json()["error"]["code"] == "VmNotFound"
    bad = lab.worker("POST", "/_lab/verify", json={"point": "latest"})
    assert bad.status_code == 400
