"""ResourcePool: each cluster's root pool "Resources", which every VM of the cluster belongs to.

Not emulated: child pools, vApps, reservations and limits (unlimited, normal shares),
CreateResourcePool, UpdateConfig, ImportVApp.
"""

from __future__ import annotations

from pyVmomi import vim

from .entity import ManagedEntity
from .registry import refs


def _allocation(shares: int) -> vim.ResourceAllocationInfo:
    return vim.ResourceAllocationInfo(
        reservation=0,
        expandableReservation=True,
        limit=-1,
        shares=vim.SharesInfo(shares=shares, level=vim.SharesInfo.Level.normal),
    )


class ResourcePool(ManagedEntity):
    vim_type = vim.ResourcePool
    volatile = ManagedEntity.volatile | {"vm"}

    def __init__(self, registry, moid, name, parent):
        super().__init__(registry, moid, name, parent)

    def vms(self):
        return [vm for vm in self.registry.vcenter.vms.values() if vm.pool is self]

    def contents(self):
        return self.vms()

    def config_spec(self) -> vim.ResourceConfigSpec:
        return vim.ResourceConfigSpec(
            entity=self.ref, cpuAllocation=_allocation(4000), memoryAllocation=_allocation(163840)
        )

    def prop_owner(self):
        return self.parent.ref

    def prop_resourcePool(self):
        return refs(vim.ResourcePool, [])

    def prop_vm(self):
        return refs(vim.VirtualMachine, self.vms())

    def prop_config(self):
        return self.config_spec()
