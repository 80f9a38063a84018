import threading

import pytest

from lab.kit.clock import LabClock, format_duration, parse_duration


class FakeWall:
    def __init__(self, t=1_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("42", 42),
        ("1.5h", 5400),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "h", "2x", "2h3", "-5m", "1h 30m"])
def test_parse_duration_refuses_garbage(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration():
    assert format_duration(5400) == "1h30m"
    assert format_duration(0) == "0s"
    assert format_duration(86461) == "1d1m1s"


def test_lab_time_runs_at_speed(tmp_path):
    wall = FakeWall()
    clock = LabClock.start(tmp_path / "clock.json", speed=60, wall=wall)
    t0 = clock.time()
    assert t0 == pytest.approx(wall.t)
    wall.t += 10
    assert clock.time() == pytest.approx(t0 + 600)


def test_jump_reaches_other_readers(tmp_path):
    wall = FakeWall()
    writer = LabClock.start(tmp_path / "clock.json", speed=1, wall=wall)
    reader = LabClock(tmp_path / "clock.json", wall=wall)
    before = reader.time()
    writer.jump(parse_duration("2h"))
    assert reader.time() == pytest.approx(before + 7200)
    assert reader.describe()["jumped_seconds"] == 7200


def test_jump_backwards_is_refused(tmp_path):
    clock = LabClock.start(tmp_path / "clock.json")
    with pytest.raises(ValueError):
        clock.jump(-1)


def test_speed_change_keeps_lab_time_continuous(tmp_path):
    wall = FakeWall()
    clock = LabClock.start(tmp_path / "clock.json", speed=10, wall=wall)
    wall.t += 5
    at_change = clock.time()
    clock.set_speed(100)
    assert clock.time() == pytest.approx(at_change)
    wall.t += 1
    assert clock.time() == pytest.approx(at_change + 100)


def test_restart_continues_from_previous_lab_time(tmp_path):
    wall = FakeWall()
    first = LabClock.start(tmp_path / "clock.json", speed=1, wall=wall)
    first.jump(3600)
    ahead = first.time()
    second = LabClock.start(tmp_path / "clock.json", speed=1, wall=wall)
    assert second.time() == pytest.approx(ahead)


def test_sleep_wakes_on_jump(tmp_path):
    clock = LabClock.start(tmp_path / "clock.json", speed=1)
    result = {}
    target = clock.time() + 3600

    def sleeper():
        result["slept"] = clock.sleep_until(target)

    thread = threading.Thread(target=sleeper)
    thread.start()
    clock.jump(3600)
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert result["slept"] is True


def test_sleep_can_be_stopped(tmp_path):
    clock = LabClock.start(tmp_path / "clock.json", speed=1)
    stop = threading.Event()
    stop.set()
    assert clock.sleep(3600, stop) is False


def test_speed_must_be_positive(tmp_path):
    with pytest.raises(ValueError):
        LabClock.start(tmp_path / "clock.json", speed=0)
