"""ClusterComputeResource: the cluster of ESXi hosts, its root resource pool and its totals.

Not emulated: DRS and HA (no recommendations, no placement: a VM stays where it was put),
ReconfigureComputeResource_Task, AddHost_Task, MoveInto_Task.
"""

from __future__ import annotations

from pyVmomi import vim

from .entity import GREEN, ManagedEntity
from .host_system import CPU_MHZ
from .registry import refs


class ClusterComputeResource(ManagedEntity):
    vim_type = vim.ClusterComputeResource

    def __init__(self, registry, moid, name, parent):
        super().__init__(registry, moid, name, parent)
        self.hosts: list = []
        self.resource_pool = None

    def contents(self):
        return [*self.hosts, self.resource_pool]

    def datastores(self):
        seen = []
        for host in self.hosts:
            seen.extend(ds for ds in host.datastores if ds not in seen)
        return seen

    def networks(self):
        seen = []
        for host in self.hosts:
            seen.extend(n for n in host.networks if n not in seen)
        return seen

    def prop_host(self):
        return refs(vim.HostSystem, self.hosts)

    def prop_resourcePool(self):
        return self.resource_pool.ref

    def prop_datastore(self):
        return refs(vim.Datastore, self.datastores())

    def prop_network(self):
        return refs(vim.Network, self.networks())

    def prop_summary(self):
        cores = sum(h.cpus for h in self.hosts)
        memory = sum(h.memory for h in self.hosts)
        return vim.ClusterComputeResource.Summary(
            totalCpu=cores * CPU_MHZ,
            totalMemory=memory,
            numCpuCores=cores,
            numCpuThreads=cores * 2,
            effectiveCpu=cores * CPU_MHZ,
            effectiveMemory=memory // 2**20,
            numHosts=len(self.hosts),
            numEffectiveHosts=len(self.hosts),
            overallStatus=GREEN,
            currentFailoverLevel=0,
            numVmotions=0,
        )
