"""Datastore: a directory of the lab's state directory that holds VM folders and disk files.

Capacity is the topology's; free space is capacity minus the bytes really allocated in the
directory (sparse extents count only what the guests wrote), refreshed after every disk
operation and by the vCenter's monitor. `datastore_path` <-> file path conversions live here.
Not emulated: the datastore browser, /folder HTTP access, NFS/vSAN, Storage DRS, RefreshDatastore
and Destroy_Task.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from pyVmomi import vim

from . import disks
from .entity import ManagedEntity
from .registry import refs

MAX_FILE = 62 * 2**40


class Datastore(ManagedEntity):
    vim_type = vim.Datastore
    volatile = ManagedEntity.volatile | {"vm"}
    derived = frozenset({"summary", "info"})

    def __init__(self, registry, moid, name, parent, root: Path, capacity: int, clock):
        super().__init__(registry, moid, name, parent)
        self.root = root
        self.capacity = capacity
        self.clock = clock
        self.uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"drlab-datastore-{name}"))
        self.volume = self.uuid.replace("-", "")[:8] + "-" + self.uuid.replace("-", "")[8:24]
        self.url = f"ds:///vmfs/volumes/{self.volume}/"
        self.hosts: list = []
        self.used = 0
        self.root.mkdir(parents=True, exist_ok=True)

    # -- files --------------------------------------------------------------------------------
    def file(self, rel: str) -> Path:
        """The file behind '[this] rel'; refuses paths that leave the datastore."""
        path = (self.root / rel).resolve()
        if path != self.root.resolve() and self.root.resolve() not in path.parents:
            raise ValueError(f"path {rel!r} leaves datastore {self.name}")
        return path

    def path_of(self, rel: str) -> str:
        return disks.datastore_path(self.name, rel)

    def refresh_usage(self) -> bool:
        """Recount allocated bytes; touch the summary when it changed. Returns whether it did."""
        used = disks.allocated_bytes(self.root)
        if used != self.used:
            self.used = used
            self.touch("summary", "info")
            return True
        return False

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.used)

    def vms(self):
        return [vm for vm in self.registry.vcenter.vms.values() if self in vm.datastores()]

    # -- properties ---------------------------------------------------------------------------
    def prop_summary(self):
        return vim.Datastore.Summary(
            datastore=self.ref,
            name=self.name,
            url=self.url,
            capacity=self.capacity,
            freeSpace=self.free,
            uncommitted=self.uncommitted(),
            accessible=True,
            multipleHostAccess=len(self.hosts) > 1,
            type="VMFS",
            maintenanceMode="normal",
        )

    def uncommitted(self) -> int:
        """Provisioned but not yet written: what thin disks could still take."""
        provisioned = 0
        for vm in self.registry.vcenter.vms.values():
            for disk in vm.disks():
                if disk.backing.fileName.startswith(f"[{self.name}]"):
                    provisioned += disk.capacityInBytes or disk.capacityInKB * 1024
        return max(0, provisioned - self.used)

    def prop_info(self):
        return vim.host.VmfsDatastoreInfo(
            name=self.name,
            url=self.url,
            freeSpace=self.free,
            maxFileSize=MAX_FILE,
            maxVirtualDiskCapacity=MAX_FILE,
            maxMemoryFileSize=MAX_FILE,
            timestamp=self.clock.now(),
            maxPhysicalRDMFileSize=MAX_FILE,
            maxVirtualRDMFileSize=MAX_FILE,
            vmfs=vim.host.VmfsVolume(
                type="VMFS",
                name=self.name,
                capacity=self.capacity,
                blockSizeMb=1,
                blockSize=1024,
                maxBlocks=64 * 2**20,
                majorVersion=6,
                version="6.82",
                uuid=self.volume,
                extent=vim.host.ScsiDisk.Partition.Array(
                    [
                        vim.host.ScsiDisk.Partition(
                            diskName=f"naa.6000c29{self.uuid[:25]}", partition=1
                        )
                    ]
                ),
                vmfsUpgradable=False,
                ssd=True,
                local=True,
            ),
        )

    def prop_host(self):
        return vim.Datastore.HostMount.Array(
            [
                vim.Datastore.HostMount(
                    key=h.ref,
                    mountInfo=vim.host.MountInfo(
                        path=f"/vmfs/volumes/{self.volume}",
                        accessMode="readWrite",
                        mounted=True,
                        accessible=True,
                    ),
                )
                for h in self.hosts
            ]
        )

    def prop_vm(self):
        return refs(vim.VirtualMachine, self.vms())

    def prop_capability(self):
        return vim.Datastore.Capability(
            directoryHierarchySupported=True,
            rawDiskMappingsSupported=False,
            perFileThinProvisioningSupported=True,
            storageIORMSupported=False,
            nativeSnapshotSupported=False,
            topLevelDirectoryCreateSupported=True,
            seSparseSupported=True,
        )
