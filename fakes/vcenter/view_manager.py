"""ViewManager, ContainerView and ListView: session-scoped views over the inventory.

A ContainerView's `view` is recomputed when entities come or go (CreateVM_Task, Destroy_Task),
so a property filter over it reports VMs entering and leaving. Views belong to the session
that made them and end with it. Not emulated: InventoryView.
"""

from __future__ import annotations

from pyVmomi import vim
from pyVmomi.VmomiSupport import ManagedObject

from .entity import ManagedEntity, walk_contents
from .errors import InvalidArgument
from .registry import Call, ManagedObjectBase, current_call, is_a, refs, soap_method, typed_array


class ViewManager(ManagedObjectBase):
    vim_type = vim.view.ViewManager
    volatile = frozenset({"viewList"})

    def __init__(self, registry, moid, vcenter):
        super().__init__(registry, moid)
        self.vcenter = vcenter

    @soap_method("CreateContainerView")
    def create_container_view(self, call: Call, container, type=None, recursive=False):
        entity = self.registry.find(container)
        if not isinstance(entity, ManagedEntity):
            raise InvalidArgument("container")
        view = ContainerView(
            self.registry,
            self.vcenter.session_moid(call),
            call.session.key,
            entity,
            list(type or []),
            bool(recursive),
        )
        self.registry.add(view)
        return view.ref

    @soap_method("CreateListView")
    def create_list_view(self, call: Call, obj=None):
        view = ListView(self.registry, self.vcenter.session_moid(call), call.session.key)
        view.objects = [self.registry.find(ref, call.session.key) for ref in obj or []]
        self.registry.add(view)
        return view.ref

    def prop_viewList(self):
        call = current_call.get()
        key = call.session.key if call is not None and call.session is not None else None
        views = [o for o in self.registry.owned_by(key) if isinstance(o, (ContainerView, ListView))]
        return refs(vim.view.View, views)


class ContainerView(ManagedObjectBase):
    vim_type = vim.view.ContainerView
    volatile = frozenset({"view"})

    def __init__(self, registry, moid, owner, container, types: list, recursive: bool):
        super().__init__(registry, moid, owner)
        self.container = container
        self.types = types
        self.recursive = recursive
        self._memo: tuple[int, list] | None = None

    def entities(self) -> list:
        stamp = self.registry.structure_version
        if self._memo is None or self._memo[0] != stamp:
            found = walk_contents(self.container, self.recursive)
            if self.types:
                found = [e for e in found if any(is_a(e.vim_type, t) for t in self.types)]
            self._memo = (stamp, found)
        return self._memo[1]

    def prop_container(self):
        return self.container.ref

    def prop_type(self):
        return typed_array(str, [t._wsdlName if not isinstance(t, str) else t for t in self.types])

    def prop_recursive(self):
        return self.recursive

    def prop_view(self):
        return refs(ManagedObject, self.entities())

    @soap_method("DestroyView")
    def destroy_view(self, call: Call):
        self.registry.remove(self)


class ListView(ManagedObjectBase):
    vim_type = vim.view.ListView
    volatile = frozenset({"view"})

    def __init__(self, registry, moid, owner):
        super().__init__(registry, moid, owner)
        self.objects: list = []

    def entities(self) -> list:
        return [o for o in self.objects if self.registry.get(o.moid) is o]

    def prop_view(self):
        return refs(ManagedObject, self.entities())

    @soap_method("ModifyListView")
    def modify(self, call: Call, add=None, remove=None):
        unresolved = []
        for ref in add or []:
            mo = self.registry.get(ref._moId)
            if mo is None:
                unresolved.append(ref)
            elif mo not in self.objects:
                self.objects.append(mo)
        drop = {ref._moId for ref in remove or []}
        self.objects = [o for o in self.objects if o.moid not in drop]
        self.touch()
        return typed_array(ManagedObject, unresolved)

    @soap_method("ResetListView")
    def reset(self, call: Call, obj=None):
        self.objects = []
        return self.modify(call, add=obj)

    @soap_method("DestroyView")
    def destroy_view(self, call: Call):
        self.registry.remove(self)
