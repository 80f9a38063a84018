"""Disk files on a datastore directory: sparse extents and descriptors, datastore paths."""

from __future__ import annotations

import os

import pytest

from fakes.vcenter import disks

MIB = 2**20


def test_datastore_paths_split_and_join():
    assert disks.split_datastore_path("[datastore1] web01/web01.vmdk") == (
        "datastore1",
        "web01/web01.vmdk",
    )
    assert disks.split_datastore_path("[ds two]") == ("ds two", "")
    assert disks.datastore_path("datastore1", "a/b.vmdk") == "[datastore1] a/b.vmdk"
    with pytest.raises(ValueError):
        disks.split_datastore_path("web01/web01.vmdk")


def test_disk_names_follow_esxi():
    assert disks.disk_file_name("web01", 0) == "web01.vmdk"
    assert disks.disk_file_name("web01", 2) == "web01_2.vmdk"
    assert disks.flat_name("web01_2.vmdk") == "web01_2-flat.vmdk"


def test_a_disk_is_a_sparse_extent_and_a_descriptor(tmp_path):
    descriptor = tmp_path / "vm" / "vm.vmdk"
    flat = disks.create_disk(descriptor, 64 * MIB, "6000c291-2345-6789-abcd-ef0123456789")
    assert flat.name == "vm-flat.vmdk" and os.path.getsize(flat) == 64 * MIB
    assert os.stat(flat).st_blocks == 0
    text = descriptor.read_text()
    assert f'RW {64 * MIB // 512} VMFS "vm-flat.vmdk"' in text
    assert 'ddb.uuid = "60 00 c2 91' in text


def test_growing_keeps_data_and_a_shrink_is_refused(tmp_path):
    descriptor = tmp_path / "vm.vmdk"
    flat = disks.create_disk(descriptor, 4 * MIB)
    with open(flat, "r+b") as f:
        f.write(b"bootsector")
    disks.grow_disk(descriptor, 8 * MIB)
    assert os.path.getsize(flat) == 8 * MIB and flat.read_bytes()[:10] == b"bootsector"
    assert f"RW {8 * MIB // 512} VMFS" in descriptor.read_text()
    with pytest.raises(ValueError):
        disks.grow_disk(descriptor, MIB)
    assert disks.allocated_bytes(tmp_path) > 0
    disks.remove_disk(descriptor)
    assert not flat.exists() and not descriptor.exists()


def test_creating_never_clobbers_an_existing_extent(tmp_path):
    descriptor = tmp_path / "vm.vmdk"
    flat = disks.create_disk(descriptor, 4 * MIB)
    flat.write_bytes(b"x" * (4 * MIB))
    disks.create_disk(descriptor, 4 * MIB)
    assert flat.read_bytes()[:1] == b"x"


@pytest.mark.parametrize("size", [0, 1000, -512])
def test_sizes_are_positive_sector_multiples(tmp_path, size):
    with pytest.raises(ValueError):
        disks.create_disk(tmp_path / "vm.vmdk", size)
