"""The monitoring publisher's promises that need no network: SAS tokens the fake Service Bus
accepts, and events dropped (never raised) when the publisher cannot take them."""

from urllib.parse import unquote_plus

from fakes.azure.servicebus.auth import Authorizer
from lab.kit.monitoring import EventPublisher, sas_token

RULE = {"name": "RootManageSharedAccessKey", "key": "a2V5LWZvci10ZXN0cw==", "rights": ["Send"]}


def test_sas_tokens_have_the_services_shape_and_verify():
    token = sas_token("https://127.0.0.1:8443/asr-events", RULE["name"], RULE["key"], now=1000)
    fields = dict(p.split("=", 1) for p in token.removeprefix("SharedAccessSignature ").split("&"))
    assert set(fields) == {"sr", "sig", "se", "skn"}
    assert unquote_plus(fields["sr"]) == "https://127.0.0.1:8443/asr-events"
    assert fields["se"] == "4600" and fields["skn"] == RULE["name"]
    auth = Authorizer("drlab-monitoring", [RULE], clock=lambda: 2000)
    assert auth.authorize(token, "127.0.0.1:8443", "asr-events", "Send").name == RULE["name"]


def test_a_full_queue_drops_events_and_never_raises():
    publisher = EventPublisher("https://127.0.0.1:1", "t", "r", "k", None, max_pending=0)
    assert publisher.publish("HealthChanged", {"state": "Critical"}) is False
    assert publisher.stats() == {"sent": 0, "dropped": 1, "failed": 0, "pending": 0}


def test_a_closed_publisher_drops_events():
    publisher = EventPublisher("https://127.0.0.1:1", "t", "r", "k", None)
    publisher.close()
    assert publisher.publish("HealthChanged") is False
    assert publisher.stats()["dropped"] == 1


def test_unserialisable_event_data_is_sent_as_text_not_raised():
    publisher = EventPublisher("https://127.0.0.1:1", "t", "r", "k", None, max_pending=1)
    publisher._ensure_thread = lambda: None  # keep it queued: no network in a unit test
    assert publisher.publish("Odd", {"when": object()}, Weird=object()) is True
    assert publisher.stats()["pending"] == 1


def test_a_lab_without_service_bus_gives_no_publisher(tmp_path):
    class Ctx:
        name = "svc"
        lab = {"services": {}}
        topology = {}

    assert EventPublisher.for_lab(Ctx()) is None
