"""The Service Bus broker model, with an injected clock: locks, expiry, delivery count, dead
letter, TTL, scheduled messages, topics, quotas, persistence."""

import threading

import pytest

from fakes.azure.servicebus import errors
from fakes.azure.servicebus.models import DEAD_LETTER, Broker, NewMessage

SPEC = {
    "namespace": "drlab-unit-bus",
    "max_message_kb": 4,
    "queues": [
        {"name": "work", "lock_duration_seconds": 30, "max_delivery_count": 3},
        {"name": "tiny", "max_size_mb": 1},
    ],
    "topics": [
        {"name": "events", "subscriptions": [{"name": "a"}, {"name": "b", "max_delivery_count": 1}]}
    ],
}


class Clock:
    def __init__(self, now=1_700_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def broker(tmp_path, clock):
    b = Broker(SPEC, tmp_path / "bus.sqlite3", clock=clock)
    yield b
    b.close()


def msg(text="hello", **kwargs):
    return NewMessage(body=text.encode(), **kwargs)


def test_send_then_peek_lock_then_complete(broker):
    assert broker.send("work", [msg("one"), msg("two")]) == [1, 2]
    first = broker.receive("work", lock=True)
    assert (first.body, first.sequence_number, first.delivery_count) == (b"one", 1, 1)
    assert first.lock_token and first.locked_until == broker.clock() + 30
    second = broker.receive("work", lock=True)
    assert second.body == b"two"  # the first is locked: the next receiver gets the next one
    assert broker.receive("work", lock=True) is None
    broker.complete("work", str(first.sequence_number), first.lock_token)
    broker.complete("work", second.message_id, second.lock_token)  # by MessageId works too
    assert broker.counts("work") == {"active": 0, "locked": 0, "scheduled": 0, "size_bytes": 0}


def test_entity_names_are_case_insensitive(broker):
    broker.send("WORK", [msg()])
    assert broker.receive("Work", lock=False).body == b"hello"


def test_lock_expiry_returns_the_message_with_delivery_count_plus_one(broker, clock):
    broker.send("work", [msg()])
    first = broker.receive("work", lock=True)
    clock.advance(29)
    assert broker.receive("work", lock=True) is None
    clock.advance(2)
    again = broker.receive("work", lock=True)
    assert again.sequence_number == first.sequence_number
    assert again.delivery_count == 2
    assert again.lock_token != first.lock_token
    with pytest.raises(errors.MessageLockLost):
        broker.complete("work", "1", first.lock_token)  # the old lock is gone


def test_completing_after_the_lock_expired_is_refused(broker, clock):
    broker.send("work", [msg()])
    got = broker.receive("work", lock=True)
    clock.advance(31)
    with pytest.raises(errors.MessageLockLost):
        broker.complete("work", "1", got.lock_token)


def test_unlock_makes_the_message_visible_again(broker):
    broker.send("work", [msg()])
    got = broker.receive("work", lock=True)
    broker.unlock("work", "1", got.lock_token)
    again = broker.receive("work", lock=True)
    assert again.delivery_count == 2


def test_renew_lock_extends_from_now(broker, clock):
    broker.send("work", [msg()])
    got = broker.receive("work", lock=True)
    clock.advance(20)
    until = broker.renew_lock("work", "1", got.lock_token)
    assert until == clock() + 30
    clock.advance(20)  # past the first lock's expiry, within the renewed one
    assert broker.receive("work", lock=True) is None
    broker.complete("work", "1", got.lock_token)


def test_exhausted_messages_go_to_the_dead_letter_queue(broker, clock):
    broker.send("work", [msg("poison", message_id="poison-1", properties={"Label": "bad"})])
    for attempt in (1, 2, 3):
        got = broker.receive("work", lock=True)
        assert got.delivery_count == attempt
        if attempt < 3:
            clock.advance(31)  # let the lock expire
    broker.unlock("work", "1", got.lock_token)  # the third abandon dead-letters at once
    assert broker.receive("work", lock=True) is None
    dead = broker.receive(f"work/{DEAD_LETTER}", lock=True)
    assert dead.message_id == "poison-1"
    assert dead.properties["Label"] == "bad"
    assert dead.user_properties["DeadLetterReason"] == "MaxDeliveryCountExceeded"
    assert "3 delivery attempts" in dead.user_properties["DeadLetterErrorDescription"]
    broker.complete(f"work/{DEAD_LETTER}", "poison-1", dead.lock_token)
    assert broker.state()["entities"][0]["dead_letter"] == 0


def test_lock_expiry_past_max_delivery_dead_letters_on_next_receive(broker, clock):
    broker.send("events", [msg()])
    broker.receive("events/subscriptions/b", lock=True)  # max delivery count 1
    clock.advance(61)
    assert broker.receive("events/subscriptions/b", lock=True) is None
    assert broker.receive(f"events/subscriptions/b/{DEAD_LETTER}", lock=False) is not None


def test_time_to_live_drops_expired_messages(broker, clock):
    broker.send("work", [msg("short", time_to_live=10), msg("long")])
    clock.advance(11)
    assert broker.receive("work", lock=False).body == b"long"
    assert broker.receive("work", lock=False) is None


def test_scheduled_messages_appear_at_their_time(broker, clock):
    broker.send("work", [msg("later", scheduled_enqueue_time=clock() + 60)])
    assert broker.receive("work", lock=True) is None
    assert broker.counts("work")["scheduled"] == 1
    clock.advance(60)
    got = broker.receive("work", lock=True)
    assert got.body == b"later" and got.scheduled_enqueue_time == clock()


def test_topics_fan_out_to_every_subscription(broker):
    broker.send("events", [msg("e1", user_properties={"Severity": "Warning"})])
    a = broker.receive("events/subscriptions/a", lock=False)
    b = broker.receive("events/subscriptions/b", lock=True)
    assert a.body == b.body == b"e1"
    assert a.sequence_number == b.sequence_number
    assert b.user_properties == {"Severity": "Warning"}


def test_wrong_direction_is_a_bad_request(broker):
    with pytest.raises(errors.BadRequest, match="subscriptions"):
        broker.receive("events", lock=True)
    with pytest.raises(errors.BadRequest, match="only receive"):
        broker.send("events/subscriptions/a", [msg()])
    with pytest.raises(errors.BadRequest, match="only receive"):
        broker.send(f"work/{DEAD_LETTER}", [msg()])


def test_missing_entity_is_gone(broker):
    with pytest.raises(errors.MessagingEntityNotFound, match="sb://drlab-unit-bus"):
        broker.send("nope", [msg()])
    with pytest.raises(errors.MessagingEntityNotFound):
        broker.receive("events/subscriptions/zz", lock=True)


def test_message_size_limits(broker):
    with pytest.raises(errors.MessageTooLarge, match="4096 bytes"):
        broker.send("work", [msg("x" * 5000)])
    with pytest.raises(errors.MessageTooLarge):  # a batch is limited as a whole
        broker.send("work", [msg("x" * 3000), msg("y" * 3000)])
    assert broker.counts("work")["active"] == 0


def test_entity_size_quota(broker):
    big = "z" * 4000
    for _ in range(262):
        broker.send("tiny", [msg(big)])
    with pytest.raises(errors.QuotaExceeded, match="Queue: 'tiny'"):
        broker.send("tiny", [msg(big)])


def test_bad_ttl_and_lock_token(broker):
    with pytest.raises(errors.BadRequest, match="TimeToLive"):
        broker.send("work", [msg(time_to_live=0)])
    broker.send("work", [msg()])
    broker.receive("work", lock=True)
    with pytest.raises(errors.BadRequest, match="GUID"):
        broker.complete("work", "1", "not-a-guid")
    with pytest.raises(errors.MessageLockLost):
        broker.complete("work", "1", "00000000-0000-0000-0000-000000000000")


def test_a_wrong_message_reference_does_not_settle(broker):
    broker.send("work", [msg()])
    got = broker.receive("work", lock=True)
    with pytest.raises(errors.MessageLockLost):
        broker.complete("work", "99", got.lock_token)
    broker.complete("work", "1", got.lock_token)


def test_messages_and_locks_survive_a_restart(tmp_path, clock):
    first = Broker(SPEC, tmp_path / "bus.sqlite3", clock=clock)
    first.send("work", [msg("durable", properties={"Label": "keep"})])
    locked = first.receive("work", lock=True)
    first.send("work", [msg("second")])
    first.close()
    second = Broker(SPEC, tmp_path / "bus.sqlite3", clock=clock)
    try:
        second.complete("work", "1", locked.lock_token)
        got = second.receive("work", lock=False)
        assert got.body == b"second" and got.sequence_number == 2
        assert second.send("work", [msg()]) == [3]  # sequence numbers go on
    finally:
        second.close()


def test_reset_empties_every_entity(broker):
    broker.send("work", [msg()])
    broker.send("events", [msg()])
    broker.reset()
    state = {e["path"]: e for e in broker.state()["entities"]}
    assert state["work"]["active"] == 0
    assert state["events/subscriptions/a"]["active"] == 0
    assert broker.send("work", [msg()]) == [1]


def test_a_waiting_receiver_wakes_when_a_message_arrives(broker):
    result = {}

    def receive():
        result["got"] = broker.receive("work", lock=False, timeout=10)

    thread = threading.Thread(target=receive)
    thread.start()
    broker.send("work", [msg("wake")])
    thread.join(timeout=10)
    assert result["got"].body == b"wake"


def test_close_wakes_waiting_receivers(tmp_path, clock):
    b = Broker(SPEC, tmp_path / "bus.sqlite3", clock=clock)
    result = {}

    def receive():
        result["got"] = b.receive("work", lock=True, timeout=30)

    thread = threading.Thread(target=receive)
    thread.start()
    b.close()
    thread.join(timeout=10)
    assert not thread.is_alive() and result["got"] is None
