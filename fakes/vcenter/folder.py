"""Folder: the root folder and each datacenter's vm/host/datastore/network folders.

CreateVM_Task is served on a VM folder (see `vm_create`). Not emulated: CreateFolder,
MoveIntoFolder_Task, RegisterVM_Task, Rename_Task, nested user folders; they answer
MethodNotFound.
"""

from __future__ import annotations

from pyVmomi import vim

from .entity import ManagedEntity
from .errors import NotSupported
from .registry import Call, refs, soap_method, typed_array


class Folder(ManagedEntity):
    vim_type = vim.Folder

    def __init__(self, registry, moid, name, parent, child_types: list[str]):
        super().__init__(registry, moid, name, parent)
        self.child_types = child_types
        self.children: list[ManagedEntity] = []

    def contents(self):
        return list(self.children)

    def add_child(self, entity: ManagedEntity) -> None:
        self.children.append(entity)
        self.touch("childEntity")

    def remove_child(self, entity: ManagedEntity) -> None:
        self.children = [c for c in self.children if c is not entity]
        self.touch("childEntity")

    def prop_childType(self):
        return typed_array(str, self.child_types)

    def prop_childEntity(self):
        return refs(vim.ManagedEntity, self.children)

    @soap_method("CreateVM_Task")
    def create_vm_task(self, call: Call, config, pool, host=None):
        if "VirtualMachine" not in self.child_types:
            raise NotSupported(f"folder {self.name} does not hold virtual machines")
        return call.vcenter.vm_factory.create_task(call, self, config, pool, host)
