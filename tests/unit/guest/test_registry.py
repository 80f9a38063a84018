"""The system area: the registry round trip, alternating copies, corruption detection."""

from __future__ import annotations

import pytest

from fakes.guest.blockdev import MemoryDevice
from fakes.guest.registry import (
    SLOT_SIZE,
    Registry,
    SystemAreaError,
    read_registry,
    read_slots,
    write_registry,
)

MiB = 1 << 20


def registry(**kw) -> Registry:
    return Registry(hostname="lin-db-01", os_family="linux", **kw)


def test_round_trip():
    dev = MemoryDevice(4 * MiB)
    reg = registry(drivers=["x.filter"], settings={"x.filter": {"a": 1}}, boot_count=3)
    write_registry(dev, reg)
    back = read_registry(dev)
    assert back == reg
    assert back.generation == 1


def test_saves_alternate_between_the_two_copies():
    dev = MemoryDevice(4 * MiB)
    reg = registry()
    for boot in range(1, 4):
        reg.boot_count = boot
        write_registry(dev, reg)
    slots = read_slots(dev)
    assert sorted(s.generation for s in slots) == [2, 3]
    assert read_registry(dev).boot_count == 3


def test_a_torn_save_leaves_the_previous_registry():
    dev = MemoryDevice(4 * MiB)
    reg = registry(boot_count=1)
    write_registry(dev, reg)  # generation 1, slot 1
    reg.boot_count = 2
    write_registry(dev, reg)  # generation 2, slot 0
    dev.write(0, b"\x00" * 512)  # the power went off while slot 0 was being written
    back = read_registry(dev)
    assert (back.generation, back.boot_count) == (1, 1)


def test_a_flipped_byte_is_detected():
    dev = MemoryDevice(4 * MiB)
    write_registry(dev, registry())
    raw = bytearray(dev.read(SLOT_SIZE, 512))
    raw[70] ^= 0x01
    dev.write(SLOT_SIZE, bytes(raw))
    slots = read_slots(dev)
    assert all(isinstance(s, SystemAreaError) for s in slots)
    assert "checksum" in str(slots[1])
    with pytest.raises(SystemAreaError, match="no operating system"):
        read_registry(dev)


def test_blank_disk_has_no_operating_system():
    with pytest.raises(SystemAreaError, match="no operating system"):
        read_registry(MemoryDevice(4 * MiB))


def test_too_small_disk():
    with pytest.raises(SystemAreaError, match="smaller"):
        read_registry(MemoryDevice(512 * 1024))


def test_oversized_registry_is_refused():
    dev = MemoryDevice(4 * MiB)
    with pytest.raises(SystemAreaError, match="too large"):
        write_registry(dev, registry(settings={"big": {"x": "y" * SLOT_SIZE}}))
    with pytest.raises(SystemAreaError):
        read_registry(dev)
