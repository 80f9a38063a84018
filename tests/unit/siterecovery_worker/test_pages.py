"""Records to page writes: the coalesced extents leave exactly what the records leave."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fakes.azure.siterecovery.worker.pages import MAX_PAGE_WRITE, PageWriter, coalesce, is_zero
from lab.kit.wire import Record

from .memory import MemorySeeds

SIZE = 64 * 512


def apply_records(records, size=SIZE) -> bytes:
    disk = bytearray(size)
    for r in records:
        disk[r.offset : r.offset + len(r.data)] = r.data
    return bytes(disk)


def apply_extents(extents, size=SIZE) -> bytes:
    disk = bytearray(size)
    for offset, data in extents:
        disk[offset : offset + len(data)] = data
    return bytes(disk)


records = st.lists(
    st.builds(
        lambda sector, sectors, fill: Record(sector * 512, bytes([fill]) * (sectors * 512)),
        st.integers(0, 63),
        st.integers(1, 8),
        st.integers(0, 255),
    ).filter(lambda r: r.offset + len(r.data) <= SIZE),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(records, st.sampled_from([512, 2048, MAX_PAGE_WRITE]))
def test_coalesced_extents_leave_what_the_records_leave(recs, limit):
    extents = coalesce(recs, limit)
    assert apply_extents(extents) == apply_records(recs)
    spans = sorted((o, o + len(d)) for o, d in extents)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start  # disjoint: safe to write in parallel
    assert all(len(d) <= limit and o % 512 == 0 and len(d) % 512 == 0 for o, d in extents)


def test_sequential_records_become_few_large_writes():
    recs = [Record(i * 65536, bytes([i % 251 + 1]) * 65536) for i in range(160)]  # 10 MiB
    extents = coalesce(recs)
    assert [len(d) for _, d in extents] == [MAX_PAGE_WRITE, MAX_PAGE_WRITE, 2 * 2**20]


def test_zero_extents_are_cleared_not_written():
    seeds = MemorySeeds()
    seeds.create("b", 1 << 20)
    calls = []
    seeds.clear = lambda blob, offset, length: calls.append(("clear", offset, length))
    writer = PageWriter(seeds, lambda op: None)
    writer.write("b", [(0, bytes(4096)), (8192, b"\x01" * 512)])
    assert calls == [("clear", 0, 4096)]
    assert seeds.blobs["b"][8192:8704] == b"\x01" * 512
    assert is_zero(bytes(4096)) and not is_zero(bytes(4095) + b"\x01")
