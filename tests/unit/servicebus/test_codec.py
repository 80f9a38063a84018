"""Service Bus over HTTP: BrokerProperties, custom property headers, batches, and which runtime
operation a method and path are."""

import json

import pytest

from fakes.azure.servicebus import codec, errors
from fakes.azure.servicebus.app import resolve
from fakes.azure.servicebus.models import Delivery


@pytest.mark.parametrize(
    "text, value",
    [('"High"', "High"), ("High", "High"), ("12", 12), ("-3", -3), ("1.5", 1.5),
     ("true", True), ("false", False), ('"12"', "12"), ("12345,ABC", "12345,ABC")],
)  # fmt: skip
def test_custom_property_values(text, value):
    assert codec.custom_property(text) == value
    assert type(codec.custom_property(text)) is type(value)


def test_custom_property_headers_on_receive():
    assert codec.custom_property_header("High") == '"High"'
    assert codec.custom_property_header(12) == "12"
    assert codec.custom_property_header(True) == "true"
    assert codec.custom_property_header("a\r\nb") == '"a  b"'


def test_http_and_sdk_headers_are_not_custom_properties():
    headers = {
        "Authorization": "x",
        "Content-Type": "text/plain",
        "BrokerProperties": "{}",
        "User-Agent": "python-requests",
        "x-ms-client-request-id": "1",
        "traceparent": "00-...",
        "Priority": "High",
        "Retry": "3",
    }
    assert codec.custom_properties(headers) == {"Priority": "High", "Retry": 3}


def test_broker_properties_the_sender_may_set():
    kwargs = codec.broker_properties(
        json.dumps(
            {
                "Label": "M1",
                "MessageId": "m-1",
                "TimeToLive": 40,
                "CorrelationId": "c",
                "SequenceNumber": 99,  # the service sets it: ignored
                "ScheduledEnqueueTimeUtc": "Sun, 06 Nov 1994 08:49:37 GMT",
            }
        )
    )
    assert kwargs["properties"] == {"CorrelationId": "c", "Label": "M1"}
    assert kwargs["message_id"] == "m-1"
    assert kwargs["time_to_live"] == 40.0
    assert kwargs["scheduled_enqueue_time"] == 784111777.0


@pytest.mark.parametrize(
    "raw, words",
    [
        ("{not json", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"TimeToLive": "soon"}', "TimeToLive"),
        ('{"Label": {"a": 1}}', "Label must be a string"),
        ('{"ScheduledEnqueueTimeUtc": "tomorrow"}', "RFC 1123"),
        ('{"MessageId": ""}', "MessageId"),
    ],
)
def test_bad_broker_properties(raw, words):
    with pytest.raises(errors.BadRequest, match=words):
        codec.broker_properties(raw)


def test_a_batch():
    body = json.dumps(
        [
            {"Body": "first", "BrokerProperties": {"Label": "M1", "TimeToLive": 40}},
            {"Body": "second", "UserProperties": {"Priority": "High", "Count": 2}},
        ]
    ).encode()
    first, second = codec.messages_from_batch(body)
    assert first.body == b"first" and first.properties == {"Label": "M1"}
    assert first.time_to_live == 40
    assert second.user_properties == {"Priority": "High", "Count": 2}


@pytest.mark.parametrize(
    "body, words",
    [
        (b"", "non-empty JSON array"),
        (b"[]", "non-empty JSON array"),
        (b"{}", "non-empty JSON array"),
        (b"[{", "not valid JSON"),
        (b'[{"Body": 5}]', "no string 'Body'"),
        (b'[{"Body": "x", "UserProperties": {"a": [1]}}]', "strings, numbers or booleans"),
        (b'[{"Body": "x", "UserProperties": {"bad name": 1}}]', "cannot be a custom property"),
        (b'[{"Body": "x", "UserProperties": {"Authorization": "1"}}]', "cannot be a custom"),
    ],
)
def test_bad_batches(body, words):
    with pytest.raises(errors.BadRequest, match=words):
        codec.messages_from_batch(body)


def test_receive_timeout():
    assert codec.receive_timeout(None) == 60
    assert codec.receive_timeout("5") == 5
    assert codec.receive_timeout("100000") == codec.MAX_RECEIVE_TIMEOUT
    for bad in ("-1", "soon", "1.5"):
        with pytest.raises(errors.BadRequest):
            codec.receive_timeout(bad)


def test_broker_properties_header_of_a_locked_message():
    delivery = Delivery(
        entity="q",
        sequence_number=7,
        message_id="m",
        body=b"",
        content_type=None,
        properties={"Label": "L"},
        user_properties={},
        enqueued_time=784111777.0,
        delivery_count=2,
        time_to_live=None,
        scheduled_enqueue_time=None,
        lock_token="7da9cfd5-40d5-4bb1-8d64-ec5a52e1c547",
        locked_until=784111837.0,
    )
    props = json.loads(codec.broker_properties_header(delivery))
    assert props["SequenceNumber"] == 7 and props["DeliveryCount"] == 2
    assert props["LockToken"] == delivery.lock_token
    assert props["LockedUntilUtc"] == "Sun, 06 Nov 1994 08:50:37 GMT"
    assert props["EnqueuedTimeUtc"] == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert props["Label"] == "L" and props["TimeToLive"] == codec.TTL_FOREVER


@pytest.mark.parametrize(
    "method, path, ctype, expected",
    [
        ("POST", "/q/messages", "text/plain", ("SendMessage", "q", "Send")),
        ("POST", "/q/messages", codec.BATCH_CONTENT_TYPE + "; charset=utf-8",
         ("SendMessageBatch", "q", "Send")),
        ("POST", "/q/messages/head", None, ("PeekLockMessage", "q", "Listen")),
        ("DELETE", "/q/messages/head", None, ("ReceiveAndDeleteMessage", "q", "Listen")),
        ("POST", "/t/subscriptions/s/messages/head", None,
         ("PeekLockMessage", "t/subscriptions/s", "Listen")),
        ("POST", "/q/$DeadLetterQueue/messages/head", None,
         ("PeekLockMessage", "q/$DeadLetterQueue", "Listen")),
        ("DELETE", "/q/messages/5/tok", None, ("DeleteMessage", "q", "Listen")),
        ("PUT", "/q/messages/5/tok", None, ("UnlockMessage", "q", "Listen")),
        ("POST", "/q/messages/5/tok", None, ("RenewLock", "q", "Listen")),
        ("PUT", "/q", None, ("CreateOrUpdateEntity", "q", "Manage")),
        ("GET", "/q", None, ("GetEntity", "q", "Manage")),
        ("GET", "/$Resources/Queues", None, ("ListEntities", "", "Manage")),
    ],
)  # fmt: skip
def test_operations_are_resolved_from_method_and_path(method, path, ctype, expected):
    call = resolve(method, path, ctype)
    assert (call.operation, call.entity, call.right) == expected


def test_settle_calls_carry_the_message_reference_and_lock_token():
    call = resolve("DELETE", "/t/subscriptions/s/messages/31/7da9cfd5", None)
    assert (call.entity, call.message_ref, call.lock_token) == (
        "t/subscriptions/s",
        "31",
        "7da9cfd5",
    )


@pytest.mark.parametrize(
    "method, path", [("GET", "/q/messages"), ("GET", "/q/messages/head"), ("GET", "/")]
)
def test_nothing_is_hosted_elsewhere(method, path):
    assert resolve(method, path, None) is None
