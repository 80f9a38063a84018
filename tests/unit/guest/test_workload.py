"""The write generator: determinism, the hot/cold split, areas, pacing, settings."""

from __future__ import annotations

import threading

import pytest

from fakes.guest.blockdev import MemoryDevice
from fakes.guest.layout import SYSTEM_AREA, Area, plan_app_area, workload_areas
from fakes.guest.workload import (
    Workload,
    WorkloadSettings,
    WriteGenerator,
    boot_seed,
)
from tests.helpers import wait_for

MiB = 1 << 20


def generator(seed=7, areas=None, io=8192, hot_fraction=0.1, hot_share=0.8):
    areas = areas or [Area(0, SYSTEM_AREA, 63 * MiB), Area(1, 16 * MiB, 48 * MiB)]
    return WriteGenerator(seed, areas, io, hot_fraction, hot_share)


def take(gen, n):
    return [gen.next() for _ in range(n)]


def test_same_seed_same_writes():
    assert take(generator(seed=42), 300) == take(generator(seed=42), 300)
    assert take(generator(seed=42), 50) != take(generator(seed=43), 50)


def test_boot_seeds_differ_per_boot_and_repeat_per_seed():
    s = WorkloadSettings(seed=5)
    assert boot_seed(s.base_seed("vm"), 1) == boot_seed(s.base_seed("other"), 1)
    assert boot_seed(s.base_seed("vm"), 1) != boot_seed(s.base_seed("vm"), 2)
    assert WorkloadSettings().base_seed("a") != WorkloadSettings().base_seed("b")


def test_writes_are_aligned_sized_and_inside_the_areas():
    gen = generator()
    for w in take(gen, 2000):
        area = next(a for a in gen.areas if a.disk == w.disk)
        assert area.offset <= w.offset and w.offset + len(w.data) <= area.end
        assert w.offset % 8192 == 0 and len(w.data) == 8192
        assert w.data.count(0) != len(w.data)


def test_hot_region_gets_its_share():
    gen = generator(hot_fraction=0.1, hot_share=0.8)
    writes = take(gen, 5000)
    hot = 0
    for w in writes:
        index = next(i for i, a in enumerate(gen.areas) if a.disk == w.disk)
        start, end = gen.hot_region(index)
        inside = start <= w.offset < end
        assert inside == w.hot
        hot += inside
    assert 0.77 < hot / len(writes) < 0.83
    # areas are chosen by size: disk 0's area is larger than disk 1's
    on_disk0 = sum(w.disk == 0 for w in writes) / len(writes)
    assert 0.52 < on_disk0 < 0.61  # 63 / (63 + 48)


def test_everything_hot_and_everything_cold():
    assert all(w.hot for w in take(generator(hot_fraction=1.0), 200))
    assert not any(w.hot for w in take(generator(hot_share=0.0), 200))


def test_layout_keeps_writes_off_the_system_and_application_areas():
    sizes = [64 * MiB, 64 * MiB]
    app = plan_app_area(sizes)
    assert app.disk == 1 and app.offset == 0
    areas = workload_areas(sizes, app)
    assert areas[0] == Area(0, SYSTEM_AREA, 63 * MiB)
    assert areas[1].disk == 1 and areas[1].offset >= app.end and areas[1].end == 64 * MiB
    single = plan_app_area([64 * MiB])
    assert single.disk == 0 and single.offset == SYSTEM_AREA
    assert workload_areas([64 * MiB], single)[0].offset >= single.end
    assert plan_app_area([1 * MiB]) is None


def test_workload_writes_at_its_churn_and_can_be_held():
    disks = [MemoryDevice(8 * MiB), MemoryDevice(8 * MiB)]
    areas = workload_areas([d.size for d in disks], None)
    workload = Workload(WriteGenerator(1, areas, 4096, 0.5, 0.5), disks, churn_mb_s=2.0)
    stop = threading.Event()
    thread = threading.Thread(target=workload.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: workload.writes >= 20, 10, message="workload writes")
        workload.hold()
        held = workload.writes
        stop.wait(0.2)  # an observation window: nothing may be written while held
        assert workload.writes == held and workload.status()["held"]
        workload.release()
        wait_for(lambda: workload.writes > held, 10, message="writes after release")
    finally:
        stop.set()
        thread.join(10)
    assert workload.bytes_written == workload.writes * 4096
    assert any(disks[0].data[SYSTEM_AREA:]) or any(disks[1].data)
    assert not any(disks[0].data[:SYSTEM_AREA])


def test_zero_churn_starts_nothing():
    workload = Workload(generator(), [MemoryDevice(64 * MiB)] * 2, churn_mb_s=0)
    workload.run(threading.Event())  # returns at once
    assert workload.writes == 0


@pytest.mark.parametrize(
    "bad",
    [{"io_size_kb": 6}, {"churn_mb_s": -1}, {"hot_fraction": 0}, {"nonsense": 1}],
)
def test_bad_settings_are_refused(bad):
    with pytest.raises((ValueError, TypeError)):
        WorkloadSettings.from_dict(bad)


def test_settings_from_a_topology_workload():
    s = WorkloadSettings.from_dict({"churn_mb_s": 1.5, "quiesce": True, "seed": 3})
    assert s.io_size == 8192 and s.quiesce and s.base_seed("x") == 3
