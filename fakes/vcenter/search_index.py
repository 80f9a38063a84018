"""SearchIndex: finding VMs and hosts by uuid, IP, DNS name, inventory path or child name.

FindByIp and FindByDnsName look at what a VM's running guest reports (as vCenter does: only
with VMware Tools running). Not emulated: FindByDatastorePath, FindAllByIp/DnsName for hosts.
"""

from __future__ import annotations

from pyVmomi import vim

from .entity import ManagedEntity, walk_contents
from .registry import Call, ManagedObjectBase, refs, soap_method


class SearchIndex(ManagedObjectBase):
    vim_type = vim.SearchIndex

    def __init__(self, registry, moid, vcenter):
        super().__init__(registry, moid)
        self.vcenter = vcenter

    def _scope(self, datacenter):
        if datacenter is None:
            return self.vcenter.root_folder
        return self.registry.find(datacenter)

    def _vms(self, datacenter):
        scope = self._scope(datacenter)
        return [e for e in walk_contents(scope, True) if isinstance(e, self.vcenter.vm_class)]

    def _hosts(self, datacenter):
        scope = self._scope(datacenter)
        return [e for e in walk_contents(scope, True) if isinstance(e, self.vcenter.host_class)]

    def _by_uuid(self, datacenter, uuid, vmSearch, instanceUuid):
        uuid = (uuid or "").lower()
        if vmSearch:
            attr = "instance_uuid" if instanceUuid else "uuid"
            return [vm for vm in self._vms(datacenter) if getattr(vm, attr).lower() == uuid]
        return [h for h in self._hosts(datacenter) if h.uuid.lower() == uuid]

    @soap_method("FindByUuid")
    def find_by_uuid(self, call: Call, uuid, vmSearch, datacenter=None, instanceUuid=None):
        found = self._by_uuid(datacenter, uuid, vmSearch, instanceUuid)
        return found[0].ref if found else None

    @soap_method("FindAllByUuid")
    def find_all_by_uuid(self, call: Call, uuid, vmSearch, datacenter=None, instanceUuid=None):
        return refs(vim.ManagedEntity, self._by_uuid(datacenter, uuid, vmSearch, instanceUuid))

    @soap_method("FindByIp")
    def find_by_ip(self, call: Call, ip, vmSearch, datacenter=None):
        if not vmSearch:
            return None
        for vm in self._vms(datacenter):
            guest = vm.read("guest")
            if guest.ipAddress == ip or any(ip in (n.ipAddress or []) for n in guest.net or []):
                return vm.ref
        return None

    @soap_method("FindByDnsName")
    def find_by_dns_name(self, call: Call, dnsName, vmSearch, datacenter=None):
        name = dnsName.lower()
        if vmSearch:
            for vm in self._vms(datacenter):
                host_name = vm.read("guest").hostName
                if host_name and host_name.lower() == name:
                    return vm.ref
            return None
        for host in self._hosts(datacenter):
            if host.name.lower() == name:
                return host.ref
        return None

    @soap_method("FindByInventoryPath")
    def find_by_inventory_path(self, call: Call, inventoryPath):
        node = self.vcenter.root_folder
        for part in [p for p in inventoryPath.strip("/").split("/") if p]:
            node = next((c for c in node.contents() if c.name == part), None)
            if node is None:
                return None
        return node.ref

    @soap_method("FindChild")
    def find_child(self, call: Call, entity, name):
        parent = self.registry.find(entity)
        if not isinstance(parent, ManagedEntity):
            return None
        child = next((c for c in parent.contents() if c.name == name), None)
        return child.ref if child is not None else None
