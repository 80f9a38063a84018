"""What toxics do to the bytes, as arithmetic with an injected clock and random source."""

import random

import pytest

from fakes.links.models import (
    NO_EFFECTS,
    Effects,
    Pacer,
    connection_timers,
    parse_toxic,
    piece_size,
    release_time,
    slice_sizes,
)


def toxics(*bodies):
    return [parse_toxic(b) for b in bodies]


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_no_toxics_is_the_passthrough():
    assert Effects.of([]).passthrough
    assert Effects.of([]) == NO_EFFECTS


def test_latency_is_at_least_the_latency_without_jitter_and_within_jitter_with_it():
    rng = random.Random(7)
    plain = Effects.of(toxics({"type": "latency", "attributes": {"latency": 120}}))
    assert plain.delay(rng) == 0.120
    jittery = Effects.of(toxics({"type": "latency", "attributes": {"latency": 100, "jitter": 30}}))
    delays = [jittery.delay(rng) for _ in range(500)]
    assert all(0.070 <= d <= 0.130 for d in delays)
    assert min(delays) < 0.090 and max(delays) > 0.110  # the jitter is used both ways


def test_latencies_add_up_and_never_go_negative():
    effects = Effects.of(
        toxics(
            {"name": "a", "type": "latency", "attributes": {"latency": 50}},
            {"name": "b", "type": "latency", "attributes": {"latency": 0, "jitter": 1000}},
        )
    )
    rng = random.Random(1)
    assert all(effects.delay(rng) >= 0.0 for _ in range(200))
    both = Effects.of(
        toxics(
            {"name": "a", "type": "latency", "attributes": {"latency": 50}},
            {"name": "b", "type": "latency", "attributes": {"latency": 25}},
        )
    )
    assert both.delay(rng) == 0.075


def test_a_delayed_chunk_never_overtakes_the_one_before():
    assert release_time(arrival=10.0, delay=0.1, previous=10.5) == 10.5
    assert release_time(arrival=10.0, delay=0.1, previous=9.0) == 10.1


def test_bandwidth_takes_the_lowest_cap_in_bytes_per_second():
    effects = Effects.of(
        toxics(
            {"name": "a", "type": "bandwidth", "attributes": {"rate": 500}},
            {"name": "b", "type": "bandwidth", "attributes": {"rate": 100}},
            {"name": "c", "type": "bandwidth", "attributes": {"rate": 0}},  # 0: no cap
        )
    )
    assert effects.rate == 100_000
    assert Effects.of(toxics({"type": "bandwidth", "attributes": {"rate": 0}})).rate is None


def test_the_pacer_makes_n_bytes_take_at_least_n_over_rate():
    clock = FakeClock()
    pacer = Pacer(clock)
    rate = 100_000  # bytes/s
    waited = 0.0
    for _ in range(10):  # 10 pieces of 10 kB, sent as soon as allowed
        wait = pacer.wait(10_000, rate)
        waited += wait
        clock.now += wait
    assert abs(waited - 1.0) < 1e-9  # 100 kB at 100 kB/s


def test_an_idle_line_earns_no_burst():
    clock = FakeClock()
    pacer = Pacer(clock)
    pacer.wait(10_000, 100_000)
    clock.now += 60  # a minute idle
    assert pacer.wait(10_000, 100_000) == pytest.approx(0.1)


def test_slow_caps_send_in_100_ms_pieces():
    assert piece_size(100_000) == 10_000
    assert piece_size(5) == 1


def test_limit_data_lets_through_up_to_its_bytes_then_says_so():
    effects = Effects.of(toxics({"type": "limit_data", "attributes": {"bytes": 1000}}))
    sent = {"n": 0}
    uid = effects.limits[0][0]

    def sent_since(toxic_uid):
        assert toxic_uid == uid
        return sent["n"]

    assert effects.allowed(600, sent_since) == 600
    sent["n"] = 600
    assert not effects.limit_reached(sent_since)
    assert effects.allowed(600, sent_since) == 400
    sent["n"] = 1000
    assert effects.limit_reached(sent_since)
    assert effects.allowed(10, sent_since) == 0


def test_the_slicer_keeps_every_byte_and_slices_near_the_average():
    rng = random.Random(3)
    for total in (1, 99, 100, 1000, 65536):
        sizes = slice_sizes(total, 100, 20, rng)
        assert sum(sizes) == total
        assert all(s > 0 for s in sizes)
        assert all(s <= 120 for s in sizes)
    assert slice_sizes(1000, 100, 0, rng) and sum(slice_sizes(1000, 100, 0, rng)) == 1000


def test_timeout_holds_data_and_arms_a_close_unless_zero():
    effects = Effects.of(toxics({"type": "timeout", "attributes": {"timeout": 0}}))
    assert effects.hold
    held = toxics({"type": "timeout", "attributes": {"timeout": 0}})
    assert connection_timers(held) == []
    closing = toxics({"type": "timeout", "stream": "upstream", "attributes": {"timeout": 250}})
    [timer] = connection_timers(closing)
    assert (timer.action, timer.stream, timer.seconds) == ("close", "upstream", 0.25)


def test_reset_peer_arms_a_reset_even_at_zero():
    [timer] = connection_timers(toxics({"type": "reset_peer", "attributes": {"timeout": 0}}))
    assert (timer.action, timer.seconds) == ("reset", 0.0)
