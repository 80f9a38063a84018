"""What a hypervisor tells a guest at power-on: its disks, identity, accounts and workload.

`GuestConfig` travels as `<run_dir>/guest.json` (mode 0600: it holds the guest accounts'
passwords) from the hypervisor process to the guest process. `DiskRef` names one virtual
disk; `kind` says what backs it ("file": a sparse flat file; "page_blob": an Azure page blob,
for a guest running in Azure after failover), so new backings add fields with defaults and
never break callers that pass (label, path, size).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

CONFIG_FILE = "guest.json"


@dataclass
class DiskRef:
    label: str  # "Hard disk 1"
    path: str  # the sparse flat file (kind "file")
    size: int  # bytes
    kind: str = "file"  # "file" | "page_blob"
    url: str | None = None  # page blob URL (kind "page_blob"); may carry a SAS token
    ca_cert: str | None = None  # CA bundle to trust for `url` (the lab CA)

    @classmethod
    def from_dict(cls, data: dict) -> DiskRef:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class GuestConfig:
    vm_id: str  # the VM's instanceUuid
    vm_name: str
    os_family: str  # "windows" | "linux"
    hostname: str
    ip_addresses: list[str]
    disks: list[DiskRef]  # disk 0 is the OS disk
    run_dir: str  # socket, pid file, log, guest file system, spill files
    accounts: dict[str, str]  # guest OS user -> password
    workload: dict = field(default_factory=dict)  # WorkloadSpec as a dict
    state_dir: str = ""  # the lab's state directory (process registry, lab clock)
    # Where the machine is plugged in, as its hypervisor tells it: {} on-premises; in Azure
    # {"vnet", "subnet", "resource_group", "isolated", "private_ip", ...}. `isolated` means no
    # route to on-premises (a test failover's VNet).
    network: dict = field(default_factory=dict)
    # The name the guest process is registered under in the lab (`drlab down` stops it);
    # default "guest-<vm_name>". Azure VMs use their own, as they may share a VMware VM's name.
    process_name: str = ""

    @property
    def lab_process_name(self) -> str:
        return self.process_name or f"guest-{self.vm_name}"

    def __post_init__(self):
        if self.os_family not in ("windows", "linux"):
            raise ValueError(f"os_family must be 'windows' or 'linux', not {self.os_family!r}")
        if not self.disks:
            raise ValueError("a guest needs at least one disk (disk 0 is the OS disk)")
        self.disks = [d if isinstance(d, DiskRef) else DiskRef.from_dict(d) for d in self.disks]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GuestConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def config_path(self) -> Path:
        return Path(self.run_dir) / CONFIG_FILE

    def save(self) -> Path:
        """Write guest.json atomically, readable by the owner only."""
        path = self.config_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.to_dict(), f, indent=2)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> GuestConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))
