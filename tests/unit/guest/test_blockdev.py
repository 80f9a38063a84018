"""Block devices: alignment, bounds, resize, and sparse files whose holes stay holes."""

from __future__ import annotations

import os

import pytest

from fakes.guest.blockdev import (
    SECTOR,
    BlockDeviceError,
    FilterDevice,
    MemoryDevice,
    SparseFileDevice,
    open_device,
)
from fakes.guest.config import DiskRef

MiB = 1 << 20


@pytest.fixture
def flat(tmp_path):
    path = tmp_path / "disk-flat.vmdk"
    with open(path, "wb") as f:
        f.truncate(16 * MiB)
    dev = SparseFileDevice(path)
    yield dev
    dev.close()


def blocks(path) -> int:
    return os.stat(path).st_blocks


@pytest.mark.parametrize(
    "offset, length",
    [(1, SECTOR), (0, 100), (SECTOR, SECTOR + 1), (-SECTOR, SECTOR), (16 * MiB, SECTOR)],
)
def test_misaligned_or_out_of_bounds_io_is_refused(flat, offset, length):
    with pytest.raises(BlockDeviceError):
        flat.write(offset, b"x" * max(length, 0))
    with pytest.raises(BlockDeviceError):
        flat.read(offset, length)
    assert flat.allocated_extents() == []


def test_write_read_round_trip(flat):
    data = os.urandom(8192)
    flat.write(MiB, data)
    flat.flush()
    assert flat.read(MiB, 8192) == data
    assert flat.read(0, SECTOR) == bytes(SECTOR)


def test_holes_stay_holes(flat):
    assert blocks(flat.path) == 0
    flat.write(4 * MiB, bytes(64 * 1024))  # zeros into a hole: nothing is written
    assert blocks(flat.path) == 0
    assert flat.allocated_extents() == []
    flat.write(MiB, b"\x01" * 4096)
    assert flat.allocated_extents() == [(MiB, 4096)]
    flat.write(8 * MiB, bytes(4096))
    assert flat.allocated_extents() == [(MiB, 4096)]
    # zeros over data are written: the data must read back as zeros
    flat.write(MiB, bytes(4096))
    assert flat.read(MiB, 4096) == bytes(4096)


def test_resize_grows_and_never_shrinks(flat):
    flat.write(MiB, b"\x02" * SECTOR)
    flat.resize(32 * MiB)
    assert flat.size == 32 * MiB
    assert os.path.getsize(flat.path) == 32 * MiB
    flat.write(31 * MiB, b"\x03" * SECTOR)
    assert flat.read(31 * MiB, SECTOR) == b"\x03" * SECTOR
    assert flat.read(MiB, SECTOR) == b"\x02" * SECTOR
    with pytest.raises(BlockDeviceError, match="shrinking"):
        flat.resize(16 * MiB)
    with pytest.raises(BlockDeviceError):
        flat.resize(32 * MiB + 1)
    assert flat.size == 32 * MiB


def test_resize_after_the_hypervisor_extended_the_file(flat):
    os.truncate(flat.path, 20 * MiB)
    flat.resize(20 * MiB)
    assert flat.size == 20 * MiB
    assert os.path.getsize(flat.path) == 20 * MiB


def test_read_only_device_refuses_writes(tmp_path):
    path = tmp_path / "ro.vmdk"
    path.write_bytes(bytes(MiB))
    dev = open_device(DiskRef("Hard disk 1", str(path), MiB), readonly=True)
    try:
        with pytest.raises(BlockDeviceError, match="read-only"):
            dev.write(0, b"x" * SECTOR)
        assert dev.read(0, SECTOR) == bytes(SECTOR)
    finally:
        dev.close()


def test_unknown_disk_kind_is_refused():
    with pytest.raises(BlockDeviceError, match="unknown disk kind"):
        open_device(DiskRef("Hard disk 1", "", MiB, kind="floppy"))


def test_memory_and_filter_devices():
    mem = MemoryDevice(MiB)
    top = FilterDevice(mem)
    top.write(SECTOR, b"\x07" * SECTOR)
    assert mem.read(SECTOR, SECTOR) == b"\x07" * SECTOR
    top.resize(2 * MiB)
    assert top.size == mem.size == 2 * MiB
    with pytest.raises(BlockDeviceError):
        top.write(2 * MiB, b"x" * SECTOR)
