"""The Service Bus of a running lab, driven over HTTPS with `requests` as a REST client would:
send, batch, peek-lock, complete, unlock, renew; SAS and bearer; the service's error answers;
topics; faults; a restart keeps the messages; the lab's monitoring publisher."""

import json
import uuid

import pytest
import requests

from lab import launcher
from lab.kit.monitoring import EventPublisher
from tests.helpers import wait_for

from .conftest import NAMESPACE


@pytest.fixture(autouse=True)
def empty_bus(bus_lab):
    requests.post(f"{bus_lab.bus}/_lab/reset", verify=bus_lab.ca, timeout=10).raise_for_status()
    requests.delete(f"{bus_lab.bus}/_lab/faults", verify=bus_lab.ca, timeout=10)


def call(lab, method, path, *, auth=True, entity=None, **kwargs):
    headers = kwargs.pop("headers", {})
    if auth is True:
        headers["Authorization"] = lab.sas(entity or "")
    elif auth:
        headers["Authorization"] = auth
    return requests.request(
        method, f"{lab.bus}/{path}", headers=headers, verify=lab.ca, timeout=30, **kwargs
    )


def assert_error(response, status, words=""):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/xml")
    assert response.text.startswith(f"<Error><Code>{status}</Code><Detail>")
    assert words in response.text
    assert f"SystemTracker:{NAMESPACE}.servicebus.windows.net:" in response.text


def broker_props(response) -> dict:
    return json.loads(response.headers["BrokerProperties"])


# -- the happy paths ---------------------------------------------------------------------------
def test_send_peek_lock_complete(bus_lab):
    sent = call(
        bus_lab,
        "POST",
        "work/messages",
        data=b"RPO of lin-db-01 is 31 minutes",
        headers={
            "Content-Type": "text/plain",
            "BrokerProperties": json.dumps({"Label": "RpoThresholdExceeded", "MessageId": "m-1"}),
            "Priority": "High",
            "Disk-Count": "2",
        },
    )
    assert sent.status_code == 201, sent.text
    got = call(bus_lab, "POST", "work/messages/head?timeout=5")
    assert got.status_code == 201
    assert got.content == b"RPO of lin-db-01 is 31 minutes"
    assert got.headers["Content-Type"] == "text/plain"
    props = broker_props(got)
    assert props["Label"] == "RpoThresholdExceeded" and props["MessageId"] == "m-1"
    assert props["DeliveryCount"] == 1 and props["SequenceNumber"] == 1
    assert props["LockedUntilUtc"].endswith(" GMT") and props["EnqueuedTimeUtc"].endswith(" GMT")
    assert got.headers["Priority"] == '"High"' and got.headers["Disk-Count"] == "2"
    location = got.headers["Location"]
    assert location == f"{bus_lab.bus}/work/messages/1/{props['LockToken']}"
    done = requests.delete(
        location, headers={"Authorization": bus_lab.sas()}, verify=bus_lab.ca, timeout=10
    )
    assert done.status_code == 200
    assert call(bus_lab, "POST", "work/messages/head?timeout=0").status_code == 204
    assert_error(
        requests.delete(
            location, headers={"Authorization": bus_lab.sas()}, verify=bus_lab.ca, timeout=10
        ),
        404,
        "The lock supplied is invalid",
    )


def test_batch_send_and_receive_and_delete(bus_lab):
    batch = [
        {"Body": "first", "BrokerProperties": {"Label": "M1", "TimeToLive": 40}},
        {"Body": "second", "UserProperties": {"Priority": "High", "Attempt": 2}},
        {"Body": "third", "BrokerProperties": {"MessageId": "third-id"}},
    ]
    sent = call(
        bus_lab,
        "POST",
        "alerts/messages",
        data=json.dumps(batch),
        headers={"Content-Type": "application/vnd.microsoft.servicebus.json"},
    )
    assert sent.status_code == 201, sent.text
    first = call(bus_lab, "DELETE", "alerts/messages/head?timeout=5")
    assert first.status_code == 200 and first.content == b"first"
    assert broker_props(first)["TimeToLive"] == 40 and "LockToken" not in broker_props(first)
    second = call(bus_lab, "DELETE", "alerts/messages/head?timeout=5")
    assert second.headers["Priority"] == '"High"' and second.headers["Attempt"] == "2"
    third = call(bus_lab, "DELETE", "alerts/messages/head?timeout=5")
    assert broker_props(third)["MessageId"] == "third-id"
    assert call(bus_lab, "DELETE", "alerts/messages/head?timeout=1").status_code == 204


def test_unlock_redelivers_then_dead_letters(bus_lab):
    call(bus_lab, "POST", "work/messages", data=b"poison").raise_for_status()
    for attempt in (1, 2):
        got = call(bus_lab, "POST", "work/messages/head?timeout=5")
        assert broker_props(got)["DeliveryCount"] == attempt
        unlocked = requests.put(
            got.headers["Location"],
            headers={"Authorization": bus_lab.sas()},
            verify=bus_lab.ca,
            timeout=10,
        )
        assert unlocked.status_code == 200
    # max_delivery_count is 2: the second abandon moved it to the dead-letter queue.
    assert call(bus_lab, "POST", "work/messages/head?timeout=0").status_code == 204
    dead = call(bus_lab, "POST", "work/$DeadLetterQueue/messages/head?timeout=5")
    assert dead.status_code == 201 and dead.content == b"poison"
    assert dead.headers["DeadLetterReason"] == '"MaxDeliveryCountExceeded"'
    state = requests.get(f"{bus_lab.bus}/_lab/state", verify=bus_lab.ca, timeout=10).json()
    work = next(e for e in state["entities"] if e["path"] == "work")
    assert work["dead_letter"] == 0 and work["active"] == 0  # the DLQ copy is locked now


def test_renew_lock(bus_lab):
    call(bus_lab, "POST", "work/messages", data=b"long job").raise_for_status()
    got = call(bus_lab, "POST", "work/messages/head?timeout=5")
    auth = {"Authorization": bus_lab.sas()}
    renewed = requests.post(got.headers["Location"], headers=auth, verify=bus_lab.ca, timeout=10)
    assert renewed.status_code == 200
    done = requests.delete(got.headers["Location"], headers=auth, verify=bus_lab.ca, timeout=10)
    assert done.status_code == 200


def test_complete_by_message_id(bus_lab):
    call(
        bus_lab,
        "POST",
        "work/messages",
        data=b"x",
        headers={"BrokerProperties": '{"MessageId": "by-id"}'},
    ).raise_for_status()
    token = broker_props(call(bus_lab, "POST", "work/messages/head?timeout=5"))["LockToken"]
    assert call(bus_lab, "DELETE", f"work/messages/by-id/{token}").status_code == 200


def test_topics_fan_out_to_subscriptions(bus_lab):
    call(bus_lab, "POST", "events/messages", data=b"replication healthy").raise_for_status()
    for sub in ("a", "b"):
        got = call(bus_lab, "DELETE", f"events/subscriptions/{sub}/messages/head?timeout=5")
        assert got.status_code == 200 and got.content == b"replication healthy"


# -- auth --------------------------------------------------------------------------------------
def test_missing_and_bad_sas_are_401(bus_lab):
    assert_error(call(bus_lab, "POST", "work/messages", auth=False, data=b"x"), 401, "MissingToken")
    bad = bus_lab.sas("work").replace("sig=", "sig=AAAA")
    assert_error(
        call(bus_lab, "POST", "work/messages", auth=bad, data=b"x"), 401, "InvalidSignature"
    )
    expired = bus_lab.sas("work", lifetime=-60)
    assert_error(call(bus_lab, "POST", "work/messages", auth=expired, data=b"x"), 401, "Expired")
    other = bus_lab.sas("alerts")
    assert_error(call(bus_lab, "POST", "work/messages", auth=other, data=b"x"), 401, "Audience")


def test_rights_of_sas_rules(bus_lab):
    sender, listener = bus_lab.sas(rule="sender"), bus_lab.sas(rule="listener")
    assert call(bus_lab, "POST", "work/messages", auth=sender, data=b"x").status_code == 201
    assert_error(
        call(bus_lab, "POST", "work/messages/head?timeout=0", auth=sender), 401, "'Listen' claim"
    )
    assert_error(
        call(bus_lab, "POST", "work/messages", auth=listener, data=b"x"), 401, "'Send' claim"
    )
    assert call(bus_lab, "DELETE", "work/messages/head?timeout=5", auth=listener).content == b"x"


def test_auth_comes_before_entity_lookup(bus_lab):
    # A caller without rights learns nothing about which entities exist.
    assert_error(call(bus_lab, "POST", "no-such/messages", auth=False, data=b"x"), 401)


def test_bearer_tokens_from_entra(bus_lab):
    token = bus_lab.credential().get_token("https://servicebus.azure.net/.default").token
    bearer = f"Bearer {token}"
    assert call(bus_lab, "POST", "work/messages", auth=bearer, data=b"b").status_code == 201
    assert call(bus_lab, "DELETE", "work/messages/head?timeout=5", auth=bearer).content == b"b"
    arm = bus_lab.credential().get_token("https://management.azure.com/.default").token
    assert_error(
        call(bus_lab, "POST", "work/messages", auth=f"Bearer {arm}", data=b"b"), 401, "Audience"
    )


# -- the service's error answers ---------------------------------------------------------------
def test_missing_entities_are_410(bus_lab):
    assert_error(call(bus_lab, "POST", "nope/messages", data=b"x"), 410, "sb://drlab-test-bus")
    assert_error(call(bus_lab, "POST", "events/subscriptions/zz/messages/head?timeout=0"), 410)


def test_oversized_message_is_413(bus_lab):
    assert_error(
        call(bus_lab, "POST", "work/messages", data=b"x" * 17000), 413, "exceeds the limit"
    )


def test_bad_requests_are_400(bus_lab):
    batch = {"Content-Type": "application/vnd.microsoft.servicebus.json"}
    assert_error(call(bus_lab, "POST", "work/messages", data=b"[{", headers=batch), 400)
    assert_error(call(bus_lab, "POST", "events/messages/head?timeout=0"), 400, "subscriptions")
    assert_error(call(bus_lab, "POST", "work/messages/head?timeout=soon"), 400, "timeout")
    assert_error(
        call(bus_lab, "POST", "work/messages", data=b"x", headers={"BrokerProperties": "{"}), 400
    )
    assert_error(call(bus_lab, "DELETE", "work/messages/1/not-a-guid"), 400, "GUID")


def test_unknown_lock_is_404_and_management_is_501(bus_lab):
    assert_error(call(bus_lab, "DELETE", f"work/messages/1/{uuid.uuid4()}"), 404)
    assert_error(call(bus_lab, "GET", "work?api-version=2021-05"), 501, "GetEntity")
    assert_error(call(bus_lab, "GET", "work/messages/head"), 404)


# -- control API -------------------------------------------------------------------------------
def test_faults_answer_in_the_services_shape(bus_lab):
    rule = {
        "operation": "SendMessage",
        "error": {"status": 503, "code": "ServerBusy", "message": "try later"},
        "times": 1,
    }
    requests.post(
        f"{bus_lab.bus}/_lab/faults", json=rule, verify=bus_lab.ca, timeout=10
    ).raise_for_status()
    assert_error(call(bus_lab, "POST", "work/messages", data=b"x"), 503, "ServerBusy: try later")
    assert call(bus_lab, "POST", "work/messages", data=b"x").status_code == 201


def test_state_and_reset(bus_lab):
    call(bus_lab, "POST", "alerts/messages", data=b"x").raise_for_status()
    state = requests.get(f"{bus_lab.bus}/_lab/state", verify=bus_lab.ca, timeout=10).json()
    assert state["namespace"] == NAMESPACE and state["endpoint"] == bus_lab.bus
    alerts = next(e for e in state["entities"] if e["path"] == "alerts")
    assert alerts["active"] == 1
    requests.post(f"{bus_lab.bus}/_lab/reset", verify=bus_lab.ca, timeout=10).raise_for_status()
    assert call(bus_lab, "DELETE", "alerts/messages/head?timeout=0").status_code == 204


def test_the_lab_exports_the_service_bus_url(bus_lab):
    assert bus_lab.env["DRLAB_SERVICEBUS_URL"] == bus_lab.bus


# -- durability --------------------------------------------------------------------------------
def test_a_crash_and_restart_keep_messages_and_locks(bus_lab):
    for text in (b"one", b"two"):
        call(bus_lab, "POST", "durable/messages", data=text).raise_for_status()
    locked = call(bus_lab, "POST", "durable/messages/head?timeout=5")
    launcher.restart_service(bus_lab.state_dir, "servicebus", kill=True)
    bus_lab.reload()
    assert call(bus_lab, "POST", "durable/messages/head?timeout=5").content == b"two"
    done = requests.delete(
        locked.headers["Location"],
        headers={"Authorization": bus_lab.sas()},
        verify=bus_lab.ca,
        timeout=10,
    )
    assert done.status_code == 200


# -- the lab's monitoring publisher ------------------------------------------------------------
def test_monitoring_events_reach_a_subscription(bus_lab):
    publisher = EventPublisher.for_lab(bus_lab.info, topic="events", source="test")
    try:
        for i in range(3):
            assert publisher.publish("RpoThresholdExceeded", {"vm": "lin-db-01", "i": i}, Disk=i)
        assert publisher.flush(timeout=30)
        assert publisher.stats()["sent"] == 3
    finally:
        publisher.close()
    got = [call(bus_lab, "DELETE", "events/subscriptions/a/messages/head?timeout=5") for _ in "123"]
    assert [json.loads(r.content)["i"] for r in got] == [0, 1, 2]
    assert broker_props(got[0])["Label"] == "RpoThresholdExceeded"
    assert got[0].headers["EventType"] == '"RpoThresholdExceeded"'
    assert got[0].headers["Source"] == '"test"' and got[2].headers["Disk"] == "2"


def test_the_publisher_drops_and_never_raises_when_the_bus_is_unreachable():
    publisher = EventPublisher("https://127.0.0.1:1", "events", "rule", "key", None, timeout=2)
    assert publisher.publish("HealthChanged", {"state": "Critical"})
    wait_for(lambda: publisher.stats()["failed"] == 1, timeout=20, message="the failed send")
    assert publisher.stats()["dropped"] == 1
    publisher.close()
