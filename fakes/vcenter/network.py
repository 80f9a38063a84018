"""Network: a standard port group ("VM Network") and the hosts and VMs attached to it.

Not emulated: distributed switches and port groups, IP pools.
"""

from __future__ import annotations

from pyVmomi import vim

from .entity import ManagedEntity
from .registry import refs


class Network(ManagedEntity):
    vim_type = vim.Network
    volatile = ManagedEntity.volatile | {"vm"}

    def __init__(self, registry, moid, name, parent, subnet: str):
        super().__init__(registry, moid, name, parent)
        self.subnet = subnet
        self.hosts: list = []

    def vms(self):
        return [vm for vm in self.registry.vcenter.vms.values() if self in vm.networks()]

    def prop_summary(self):
        return vim.Network.Summary(network=self.ref, name=self.name, accessible=True, ipPoolName="")

    def prop_host(self):
        return refs(vim.HostSystem, self.hosts)

    def prop_vm(self):
        return refs(vim.VirtualMachine, self.vms())
