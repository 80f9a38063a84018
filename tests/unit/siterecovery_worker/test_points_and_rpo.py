"""Retention as the real service prunes, RPO arithmetic and the alarm's transitions,
initial replication progress."""

from __future__ import annotations

import random

from fakes.azure.siterecovery.worker import rpo
from fakes.azure.siterecovery.worker.points import PointInfo, retention_keep
from fakes.azure.siterecovery.worker.status import summarize

from .test_engine import fill, replicate_initially

H = 3600.0
NOW = 1_800_003_600.0 * 1.0


def test_retention_keeps_the_last_hour_then_one_per_hour_until_the_history():
    now = 100 * H + 1800  # half past hour 100
    points = [PointInfo(f"p{i}", now - i * 300) for i in range(0, 12 * 8)]  # every 5 min, 8 h
    keep = retention_keep(points, now, retention_minutes=4 * 60)
    recent = {p.tag_id for p in points if p.time >= now - H}
    assert recent <= keep
    older = sorted((p for p in points if p.tag_id in keep - recent), key=lambda p: p.time)
    hours = [int(p.time // H) for p in older]
    assert len(hours) == len(set(hours))  # one per clock hour
    assert all(p.time >= now - 4 * H for p in older)  # nothing beyond the retention
    for p in older:  # the latest point of its hour
        same_hour = [q for q in points if int(q.time // H) == int(p.time // H)]
        assert p.time == max(q.time for q in same_hour)
    # The table, in minutes ago: the last hour, then the latest point of each clock hour
    # (hour 99's is 35 min ago, inside the last hour) back to the 4 h retention.
    kept = sorted(round((now - p.time) / 60) for p in points if p.tag_id in keep)
    assert kept == [*range(0, 65, 5), 95, 155, 215]


def test_retention_never_prunes_the_latest_point_and_keeps_group_points():
    now = 50 * H
    assert retention_keep([PointInfo("old", now - 10 * H)], now, 60) == {"old"}
    points = [
        PointInfo("group", now - 2 * H - 600, multi_vm=True),
        PointInfo("later", now - 2 * H - 60),
        PointInfo("new", now),
    ]
    assert retention_keep(points, now, 24 * 60) == {"group", "later", "new"}


def test_rpo_is_the_worst_disk_and_unknown_until_every_disk_has_journal_data():
    assert rpo.disk_rpo(100.0, 70.0) == 30.0
    assert rpo.disk_rpo(100.0, 120.0) == 0.0  # a clock skew is not a negative RPO
    assert rpo.disk_rpo(100.0, None) is None
    assert rpo.vm_rpo([30.0, 45.5]) == 45.5
    assert rpo.vm_rpo([30.0, None]) is None and rpo.vm_rpo([]) is None


def test_the_alarm_fires_once_per_crossing():
    threshold = 15 * 60.0
    assert rpo.transition(False, 10 * 60, threshold) is None
    assert rpo.transition(False, 16 * 60, threshold) == rpo.EXCEEDED
    assert rpo.transition(True, 20 * 60, threshold) is None
    assert rpo.transition(True, 15 * 60, threshold) == rpo.RESOLVED
    assert rpo.transition(True, None, threshold) is None


def test_data_rates_over_a_window_of_lab_time():
    rates = rpo.DataRates(window=100.0)
    rates.add(1000.0, 50 * rpo.MB, 10 * rpo.MB)
    rates.add(1050.0, 50 * rpo.MB, 10 * rpo.MB)
    assert rates.rates(1060.0) == (1.0, 0.2)
    assert rates.rates(1120.0) == (0.5, 0.1)  # the first sample left the window


def test_progress_and_rpo_from_the_worker_records(harness, clock):
    h = harness
    replicate_initially(h, random.Random(11))
    summary = summarize(h.vm, h.progress.streams(h.vm.vm_id, h.vm.epoch), clock(), False)
    assert summary["ir_percent"] == 0 and summary["rpo"] is None
    h.run(0)
    summary = summarize(h.vm, h.progress.streams(h.vm.vm_id, h.vm.epoch), clock(), False)
    allocated = h.vm.plan.allocated
    assert summary["ir_bytes"] == h.vm.plan.disk(0).allocated
    assert summary["ir_percent"] == h.vm.plan.disk(0).allocated * 100 // allocated
    h.run(1)
    h.source.ir_complete()
    fill(h.source, 0, 2, random.Random(12))
    for i in (0, 1):
        h.upload(h.source.flush(i))
    h.run_all()
    clock.t += 90
    summary = summarize(h.vm, h.progress.streams(h.vm.vm_id, h.vm.epoch), clock(), True)
    assert summary["ir_percent"] == 100 and summary["ir_done"]
    assert summary["rpo"] == 90.0 and summary["state"] == "Protected"
