import threading

import pytest

from components.process_server.cache import CacheFull, DurableCache
from components.process_server.health import CRITICAL, HEALTHY, WARNING, assess


def test_admit_is_durable_and_ordered(tmp_path):
    cache = DurableCache(tmp_path, 1 << 20)
    cache.admit("vm1", "disk0", 11, 20, b"b" * 100)
    cache.admit("vm1", "disk0", 1, 10, b"a" * 100)
    cache.admit("vm1", "disk1", 1, 5, b"c" * 10)
    reopened = DurableCache(tmp_path, 1 << 20)
    items = reopened.pending()
    assert [(i.disk, i.first_seq) for i in items] == [("disk0", 1), ("disk0", 11), ("disk1", 1)]
    assert reopened.read(items[0]) == b"a" * 100
    assert reopened.used_bytes == 210


def test_admit_is_idempotent(tmp_path):
    cache = DurableCache(tmp_path, 1000)
    cache.admit("vm", "d", 1, 2, b"x" * 400)
    cache.admit("vm", "d", 1, 2, b"x" * 400)
    assert len(cache) == 1 and cache.used_bytes == 400


def test_full_cache_refuses_and_keeps_what_it_has(tmp_path):
    cache = DurableCache(tmp_path, 1000)
    cache.admit("vm", "d", 1, 1, b"x" * 600)
    with pytest.raises(CacheFull):
        cache.admit("vm", "d", 2, 2, b"y" * 600)
    assert cache.used_bytes == 600
    cache.remove(cache.pending()[0])
    cache.admit("vm", "d", 2, 2, b"y" * 600)
    assert cache.free_bytes == 400


def test_unfinished_admit_is_discarded_at_restart(tmp_path):
    cache = DurableCache(tmp_path, 1000)
    cache.admit("vm", "d", 1, 1, b"x")
    (tmp_path / "vm" / "d" / "0000000000000002-0000000000000002.diff.tmp").write_bytes(b"torn")
    reopened = DurableCache(tmp_path, 1000)
    assert [i.first_seq for i in reopened.pending()] == [1]
    assert not list(tmp_path.rglob("*.tmp"))


def test_concurrent_admits_never_overfill(tmp_path):
    cache = DurableCache(tmp_path, 10_000)
    refused = []

    def admit(n):
        try:
            cache.admit("vm", "d", n, n, b"z" * 1000)
        except CacheFull:
            refused.append(n)

    threads = [threading.Thread(target=admit, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.used_bytes <= 10_000
    assert len(cache) == 10 and len(refused) == 10


@pytest.mark.parametrize("bad", ["", "a/b", ".hidden"])
def test_bad_stream_names(tmp_path, bad):
    with pytest.raises(ValueError):
        DurableCache(tmp_path, 100).admit(bad, "d", 1, 1, b"x")


@pytest.mark.parametrize(
    "free,backlog,throughput,status",
    [
        (800, 0, 0, HEALTHY),
        (290, 0, 0, WARNING),  # 29 % free
        (240, 0, 0, CRITICAL),  # 24 % free
        (800, 31 * 60, 1.0, WARNING),  # 31 minutes of backlog
        (800, 46 * 60, 1.0, CRITICAL),
        (800, 10, 0.0, CRITICAL),  # data waiting, nothing moving
        (290, 46 * 60, 1.0, CRITICAL),
    ],
)
def test_health_thresholds(free, backlog, throughput, status):
    assert assess(1000, free, backlog, throughput).status == status
