"""The guest OS's registry, kept in the system area at the start of disk 0.

The registry is what the OS knows about itself: hostname, the drivers and services installed
(by module name) and their settings, the application's and the ledger's places on disk, the
boot count and whether the last stop was clean. It lives on disk 0 so that it travels with the
disk when the disk is replicated and failed over: a guest booted in Azure from a replica finds
the drivers installed on-premises.

Format: the first MiB of disk 0 is two 512 KiB slots. Each save writes the next generation
into the other slot: a header (magic, format version, generation, JSON length, SHA-256 of
header and JSON) followed by the JSON. A reader takes the valid slot with the higher
generation, so a save torn by a power-off leaves the previous registry readable.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import asdict, dataclass, field, fields

from .blockdev import SECTOR
from .layout import SYSTEM_AREA

MAGIC = b"DRLABSYS"
VERSION = 1
SLOT_SIZE = SYSTEM_AREA // 2
_HEADER = struct.Struct("<8sHHQI32s")  # magic, version, reserved, generation, length, sha256
MAX_JSON = SLOT_SIZE - _HEADER.size


class SystemAreaError(Exception):
    """Disk 0 has no readable registry (never installed, or both copies damaged)."""


@dataclass
class Registry:
    hostname: str
    os_family: str
    installed_vm_id: str = ""
    state: str = "clean"  # "running" while the OS is up; "clean" after a clean shutdown
    boot_count: int = 0
    drivers: list[str] = field(default_factory=list)  # module names, in load order
    services: list[str] = field(default_factory=list)  # module names, in start order
    settings: dict[str, dict] = field(default_factory=dict)  # module name -> its settings
    app_area: dict | None = None  # layout.Area as a dict, or None: no application
    ledger_area: dict | None = None  # layout.Area as a dict, or None: no ledger
    installed_at: float = 0.0  # lab epoch seconds
    last_boot: float | None = None
    last_shutdown: float | None = None
    generation: int = 0  # of the slot it was read from / last written to

    def to_json(self) -> bytes:
        data = asdict(self)
        data.pop("generation")
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes, generation: int) -> Registry:
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}, generation=generation)


def encode_slot(registry: Registry, generation: int) -> bytes:
    body = registry.to_json()
    if len(body) > MAX_JSON:
        raise SystemAreaError(f"the registry is too large ({len(body)} bytes > {MAX_JSON})")
    digest = hashlib.sha256(_HEADER.pack(MAGIC, VERSION, 0, generation, len(body), b"") + body)
    raw = _HEADER.pack(MAGIC, VERSION, 0, generation, len(body), digest.digest()) + body
    return raw + bytes(-len(raw) % SECTOR)


def decode_slot(raw: bytes) -> Registry:
    """The registry in one slot; SystemAreaError says why it is not valid."""
    magic, version, _, generation, length, digest = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise SystemAreaError("no registry (bad magic)")
    if version != VERSION:
        raise SystemAreaError(f"registry format version {version} (expected {VERSION})")
    if length > MAX_JSON:
        raise SystemAreaError("registry length out of range")
    body = raw[_HEADER.size : _HEADER.size + length]
    check = hashlib.sha256(_HEADER.pack(MAGIC, VERSION, 0, generation, length, b"") + body)
    if check.digest() != digest:
        raise SystemAreaError(f"registry generation {generation}: checksum mismatch")
    try:
        return Registry.from_json(body, generation)
    except (ValueError, TypeError) as exc:
        raise SystemAreaError(f"registry generation {generation}: {exc}") from None


def read_slots(device) -> list[Registry | SystemAreaError]:
    out: list[Registry | SystemAreaError] = []
    for slot in range(2):
        head = device.read(slot * SLOT_SIZE, SECTOR)
        try:
            _, _, _, _, length, _ = _HEADER.unpack_from(head)
            need = min(SLOT_SIZE, -(-(_HEADER.size + min(length, MAX_JSON)) // SECTOR) * SECTOR)
            raw = head if need <= SECTOR else device.read(slot * SLOT_SIZE, need)
            out.append(decode_slot(raw))
        except SystemAreaError as exc:
            out.append(exc)
    return out


def read_registry(device) -> Registry:
    """The newest valid registry on disk 0."""
    if device.size < SYSTEM_AREA:
        raise SystemAreaError(f"disk 0 is smaller than the system area ({device.size} bytes)")
    slots = read_slots(device)
    valid = [s for s in slots if isinstance(s, Registry)]
    if not valid:
        reasons = "; ".join(str(s) for s in slots)
        raise SystemAreaError(f"no operating system on disk 0: {reasons}")
    return max(valid, key=lambda r: r.generation)


def write_registry(device, registry: Registry) -> None:
    """Save the next generation into the other slot and flush. Updates registry.generation."""
    generation = registry.generation + 1
    device.write((generation % 2) * SLOT_SIZE, encode_slot(registry, generation))
    device.flush()
    registry.generation = generation
