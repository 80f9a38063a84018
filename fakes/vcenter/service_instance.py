"""ServiceInstance: the entry point (RetrieveServiceContent, CurrentTime) and the `about` of
this vCenter.

ServiceContent names only the managers this fake serves; the others (licensing, alarms,
performance, customization, OVF, ...) are left out rather than answering half-made objects.
"""

from __future__ import annotations

from pyVmomi import vim

from . import soap
from .registry import Call, ManagedObjectBase, soap_method

VC_VERSION, VC_BUILD = "8.0.3", "24322831"


def vcenter_about(instance_uuid: str) -> vim.AboutInfo:
    return vim.AboutInfo(
        name="VMware vCenter Server",
        fullName=f"VMware vCenter Server {VC_VERSION} build-{VC_BUILD}",
        vendor="VMware, Inc.",
        version=VC_VERSION,
        patchLevel="",
        build=VC_BUILD,
        localeVersion="INTL",
        localeBuild="000",
        osType="linux-x64",
        productLineId="vpx",
        apiType="VirtualCenter",
        apiVersion=soap.CURRENT_VERSION_ID,
        instanceUuid=instance_uuid,
        licenseProductName="VMware VirtualCenter Server",
        licenseProductVersion="8.0",
    )


class ServiceInstance(ManagedObjectBase):
    vim_type = vim.ServiceInstance

    def __init__(self, registry, moid, vcenter):
        super().__init__(registry, moid)
        self.vcenter = vcenter

    def content(self) -> vim.ServiceInstanceContent:
        vc = self.vcenter
        return vim.ServiceInstanceContent(
            rootFolder=vc.root_folder.ref,
            propertyCollector=vc.property_collector.ref,
            viewManager=vc.view_manager.ref,
            about=vcenter_about(vc.instance_uuid),
            sessionManager=vc.session_manager.ref,
            eventManager=vc.events.ref,
            taskManager=vc.tasks.ref,
            searchIndex=vc.search_index.ref,
            guestOperationsManager=vc.guest_operations.ref,
        )

    @soap_method("RetrieveServiceContent", anonymous=True)
    def retrieve_service_content(self, call: Call):
        return self.read("content")

    @soap_method("CurrentTime")
    def current_time(self, call: Call):
        return self.vcenter.clock.now()

    def prop_content(self):
        return self.content()

    def prop_serverClock(self):
        return self.vcenter.clock.now()

    def prop_capability(self):
        return vim.Capability(
            provisioningSupported=True,
            multiHostSupported=True,
            userShellAccessSupported=False,
            nfcSslSupported=False,
        )

    volatile = frozenset({"serverClock"})
