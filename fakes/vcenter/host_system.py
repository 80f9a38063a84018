"""HostSystem: an ESXi host of the cluster: its hardware summary, runtime and the VMs it runs.

VMs stay on the host the topology (or CreateVM_Task) placed them on. Not emulated: host
configuration (network, storage and firewall systems, `config`), maintenance mode,
disconnect/reconnect, esxcli; those methods answer MethodNotFound.
"""

from __future__ import annotations

import uuid

from pyVmomi import vim

from .entity import GREEN, ManagedEntity
from .registry import refs

ESXI_VERSION, ESXI_BUILD, ESXI_API = "8.0.3", "24022510", "8.0.3.0"
CPU_MHZ = 2000


def esxi_about() -> vim.AboutInfo:
    return vim.AboutInfo(
        name="VMware ESXi",
        fullName=f"VMware ESXi {ESXI_VERSION} build-{ESXI_BUILD}",
        vendor="VMware, Inc.",
        version=ESXI_VERSION,
        build=ESXI_BUILD,
        localeVersion="INTL",
        localeBuild="000",
        osType="vmnix-x86",
        productLineId="embeddedEsx",
        apiType="HostAgent",
        apiVersion=ESXI_API,
        licenseProductName="VMware ESX Server",
        licenseProductVersion="8.0",
    )


class HostSystem(ManagedEntity):
    vim_type = vim.HostSystem
    volatile = ManagedEntity.volatile | {"vm"}
    derived = frozenset({"summary"})

    def __init__(self, registry, moid, name, parent, cpus: int, memory_gb: int, boot_time):
        super().__init__(registry, moid, name, parent)
        self.cpus = cpus
        self.memory = memory_gb * 2**30
        self.boot_time = boot_time
        self.uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"drlab-host-{name}"))
        self.datastores: list = []
        self.networks: list = []

    def vms(self):
        return [vm for vm in self.registry.vcenter.vms.values() if vm.host is self]

    def contents(self):
        return self.vms()

    def runtime(self) -> vim.host.RuntimeInfo:
        return vim.host.RuntimeInfo(
            connectionState=vim.HostSystem.ConnectionState.connected,
            powerState=vim.HostSystem.PowerState.poweredOn,
            standbyMode="none",
            inMaintenanceMode=False,
            inQuarantineMode=False,
            bootTime=self.boot_time,
        )

    def hardware_summary(self) -> vim.host.Summary.HardwareSummary:
        return vim.host.Summary.HardwareSummary(
            vendor="VMware, Inc.",
            model="VMware7,1",
            uuid=self.uuid,
            memorySize=self.memory,
            cpuModel="Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
            cpuMhz=CPU_MHZ,
            numCpuPkgs=2,
            numCpuCores=self.cpus,
            numCpuThreads=self.cpus * 2,
            numNics=2,
            numHBAs=2,
        )

    def prop_summary(self):
        return vim.host.Summary(
            host=self.ref,
            hardware=self.hardware_summary(),
            runtime=self.runtime(),
            config=vim.host.Summary.ConfigSummary(
                name=self.name,
                port=443,
                product=esxi_about(),
                vmotionEnabled=True,
                faultToleranceEnabled=False,
            ),
            quickStats=vim.host.Summary.QuickStats(overallCpuUsage=0, overallMemoryUsage=0),
            overallStatus=GREEN,
            rebootRequired=False,
            managementServerIp="127.0.0.1",
        )

    def prop_runtime(self):
        return self.runtime()

    def prop_hardware(self):
        return vim.host.HardwareInfo(
            systemInfo=vim.host.SystemInfo(
                vendor="VMware, Inc.", model="VMware7,1", uuid=self.uuid, serialNumber=self.uuid
            ),
            cpuInfo=vim.host.CpuInfo(
                numCpuPackages=2,
                numCpuCores=self.cpus,
                numCpuThreads=self.cpus * 2,
                hz=CPU_MHZ * 1_000_000,
            ),
            cpuPkg=vim.host.CpuPackage.Array(),
            memorySize=self.memory,
            smcPresent=False,
        )

    def prop_vm(self):
        return refs(vim.VirtualMachine, self.vms())

    def prop_datastore(self):
        return refs(vim.Datastore, self.datastores)

    def prop_network(self):
        return refs(vim.Network, self.networks)
