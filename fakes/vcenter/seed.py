"""From the topology's `vcenter:` section to objects: the infrastructure (datacenters, folders,
clusters, hosts, datastores, networks), rebuilt identically at every start, and the VMs,
seeded once (then owned by the store) with their disks and files.

Ids follow vCenter's style and never depend on anything but the topology's order:
root folder group-d1, then datacenter-N, group-vN/-hN/-sN/-nN, domain-cN, resgroup-N,
host-N, datastore-N, network-N; VMs continue the same numbering (vm-N).
"""

from __future__ import annotations

from pathlib import Path

from lab.kit.units import parse_size

from .compute_resource import ClusterComputeResource
from .datacenter import Datacenter
from .datastore import Datastore
from .folder import Folder
from .host_system import HostSystem
from .network import Network
from .resource_pool import ResourcePool

DATASTORES_DIR = "datastores"


def build_infrastructure(vc, spec: dict) -> int:
    """Create every non-VM object; returns the next free id number (VMs continue from it)."""
    registry = vc.registry
    counter = iter(range(2, 10**9))
    root = Folder(registry, "group-d1", "Datacenters", None, ["Folder", "Datacenter"])
    registry.add(root)
    vc.root_folder = root
    boot_time = vc.clock.now()
    for dc_spec in spec["datacenters"]:
        dc = Datacenter(registry, f"datacenter-{next(counter)}", dc_spec["name"], root)
        dc.vm_folder = Folder(
            registry,
            f"group-v{next(counter)}",
            "vm",
            dc,
            ["Folder", "VirtualMachine", "VirtualApp"],
        )
        dc.host_folder = Folder(
            registry, f"group-h{next(counter)}", "host", dc, ["Folder", "ComputeResource"]
        )
        dc.datastore_folder = Folder(
            registry,
            f"group-s{next(counter)}",
            "datastore",
            dc,
            ["Folder", "Datastore", "StoragePod"],
        )
        dc.network_folder = Folder(
            registry,
            f"group-n{next(counter)}",
            "network",
            dc,
            ["Folder", "Network", "DistributedVirtualSwitch"],
        )
        for obj in (dc, *dc.folders()):
            registry.add(obj)
        root.children.append(dc)
        hosts = []
        for cluster_spec in dc_spec["clusters"]:
            cluster = ClusterComputeResource(
                registry, f"domain-c{next(counter)}", cluster_spec["name"], dc.host_folder
            )
            pool = ResourcePool(registry, f"resgroup-{next(counter)}", "Resources", cluster)
            cluster.resource_pool = pool
            registry.add(cluster)
            registry.add(pool)
            dc.host_folder.children.append(cluster)
            for host_spec in cluster_spec["hosts"]:
                host = HostSystem(
                    registry,
                    f"host-{next(counter)}",
                    host_spec["name"],
                    cluster,
                    host_spec.get("cpus", 16),
                    host_spec.get("memory_gb", 128),
                    boot_time,
                )
                registry.add(host)
                cluster.hosts.append(host)
                hosts.append(host)
        for ds_spec in dc_spec["datastores"]:
            ds = Datastore(
                registry,
                f"datastore-{next(counter)}",
                ds_spec["name"],
                dc.datastore_folder,
                Path(vc.state_dir) / DATASTORES_DIR / ds_spec["name"],
                parse_size(ds_spec.get("capacity", "1TiB")),
                vc.clock,
            )
            ds.hosts = list(hosts)
            registry.add(ds)
            dc.datastore_folder.children.append(ds)
        for net_spec in dc_spec["networks"]:
            net = Network(
                registry,
                f"network-{next(counter)}",
                net_spec["name"],
                dc.network_folder,
                net_spec.get("subnet", ""),
            )
            net.hosts = list(hosts)
            registry.add(net)
            dc.network_folder.children.append(net)
        for host in hosts:
            host.datastores = dc.datastores()
            host.networks = dc.networks()
        vc.datacenters.append(dc)
    return next(counter)


def seed_vms(vc, spec: dict) -> None:
    """The topology's VMs, their folders and disks; powered-on ones boot at autostart."""
    for dc_spec, dc in zip(spec["datacenters"], vc.datacenters):
        for vm_spec in dc_spec.get("vms", []):
            account = vm_spec.get("guest_account") or vc.guest_account_for(vm_spec["os_family"])
            vm = vc.vm_factory.seed(
                vm_spec,
                dc.vm_folder,
                dc_name=dc.name,
                guest_account=account,
                parse_size=parse_size,
            )
            vc.add_vm(vm)
