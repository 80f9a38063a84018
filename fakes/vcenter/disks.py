"""Virtual disk files on a datastore directory: a sparse raw extent `<name>-flat.vmdk` and the small
text descriptor `<name>.vmdk` beside it, as ESXi lays out a monolithic-flat (VMFS) disk.

The extent is a sparse file of exactly the disk's capacity, so `capacityInBytes` is its size
and a guest writes real bytes into it; growing a disk truncates it up. No pyvmomi here.
Not emulated: thick/eager-zeroed provisioning, delta disks (snapshots), other formats.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

SECTOR = 512
_DATASTORE_PATH = re.compile(r"^\[(?P<ds>[^\]]+)\]\s*(?P<rel>.*)$")


def split_datastore_path(path: str) -> tuple[str, str]:
    """'[datastore1] web01/web01.vmdk' -> ('datastore1', 'web01/web01.vmdk')."""
    match = _DATASTORE_PATH.match(path.strip())
    if not match:
        raise ValueError(f"not a datastore path: {path!r}")
    return match.group("ds"), match.group("rel").strip()


def datastore_path(datastore: str, rel: str) -> str:
    return f"[{datastore}] {rel}"


def flat_name(descriptor_name: str) -> str:
    """web01_1.vmdk -> web01_1-flat.vmdk"""
    stem = (
        descriptor_name[: -len(".vmdk")] if descriptor_name.endswith(".vmdk") else descriptor_name
    )
    return f"{stem}-flat.vmdk"


def disk_file_name(vm_name: str, index: int) -> str:
    """The descriptor name of a VM's disk number `index` (0-based): vm.vmdk, vm_1.vmdk, ..."""
    return f"{vm_name}.vmdk" if index == 0 else f"{vm_name}_{index}.vmdk"


def descriptor_text(flat: str, size: int, disk_uuid: str, adapter: str = "pvscsi") -> str:
    sectors = size // SECTOR
    cylinders = max(1, sectors // (255 * 63))
    ddb_uuid = " ".join(disk_uuid.replace("-", "")[i : i + 2] for i in range(0, 32, 2))
    return (
        "# Disk DescriptorFile\n"
        "version=1\n"
        'encoding="UTF-8"\n'
        "CID=fffffffe\n"
        "parentCID=ffffffff\n"
        'createType="vmfs"\n'
        "\n"
        "# Extent description\n"
        f'RW {sectors} VMFS "{flat}"\n'
        "\n"
        "# The Disk Data Base\n"
        "#DDB\n"
        "\n"
        f'ddb.adapterType = "{adapter}"\n'
        f'ddb.geometry.cylinders = "{cylinders}"\n'
        'ddb.geometry.heads = "255"\n'
        'ddb.geometry.sectors = "63"\n'
        'ddb.thinProvisioned = "1"\n'
        f'ddb.uuid = "{ddb_uuid}"\n'
        'ddb.virtualHWVersion = "19"\n'
    )


def create_disk(descriptor: Path, size: int, disk_uuid: str | None = None) -> Path:
    """Make a sparse extent of `size` bytes and its descriptor; returns the extent's path."""
    if size <= 0 or size % SECTOR:
        raise ValueError(f"a disk size is a positive multiple of {SECTOR} bytes, not {size}")
    descriptor.parent.mkdir(parents=True, exist_ok=True)
    flat = descriptor.with_name(flat_name(descriptor.name))
    with open(flat, "ab") as f:  # never clobbers an existing extent
        if f.tell() < size:
            f.truncate(size)
    write_descriptor(descriptor, size, disk_uuid)
    return flat


def write_descriptor(descriptor: Path, size: int, disk_uuid: str | None = None) -> None:
    text = descriptor_text(flat_name(descriptor.name), size, disk_uuid or str(uuid.uuid4()))
    tmp = descriptor.with_name(f".{descriptor.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, descriptor)


def grow_disk(descriptor: Path, new_size: int, disk_uuid: str | None = None) -> None:
    flat = descriptor.with_name(flat_name(descriptor.name))
    current = flat.stat().st_size
    if new_size < current:
        raise ValueError("a disk only grows")
    with open(flat, "r+b") as f:
        f.truncate(new_size)
    write_descriptor(descriptor, new_size, disk_uuid)


def remove_disk(descriptor: Path) -> None:
    descriptor.with_name(flat_name(descriptor.name)).unlink(missing_ok=True)
    descriptor.unlink(missing_ok=True)


def allocated_bytes(directory: Path) -> int:
    """Bytes really allocated under a directory (sparse holes do not count)."""
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total
