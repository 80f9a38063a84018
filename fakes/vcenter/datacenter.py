"""Datacenter: its four folders and the datastores and networks it holds.

Not emulated: Rename, PowerOnMultiVM_Task, Destroy_Task, QueryConnectionInfo.
"""

from __future__ import annotations

from pyVmomi import vim

from .entity import ManagedEntity
from .registry import refs


class Datacenter(ManagedEntity):
    vim_type = vim.Datacenter

    def __init__(self, registry, moid, name, parent):
        super().__init__(registry, moid, name, parent)
        self.vm_folder = self.host_folder = self.datastore_folder = self.network_folder = None

    def folders(self):
        return [self.vm_folder, self.host_folder, self.datastore_folder, self.network_folder]

    def contents(self):
        return self.folders()

    def datastores(self):
        return list(self.datastore_folder.children)

    def networks(self):
        return list(self.network_folder.children)

    def prop_vmFolder(self):
        return self.vm_folder.ref

    def prop_hostFolder(self):
        return self.host_folder.ref

    def prop_datastoreFolder(self):
        return self.datastore_folder.ref

    def prop_networkFolder(self):
        return self.network_folder.ref

    def prop_datastore(self):
        return refs(vim.Datastore, self.datastores())

    def prop_network(self):
        return refs(vim.Network, self.networks())
