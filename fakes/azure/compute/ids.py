"""Resource types and ids of Microsoft.Compute in the lab."""

from __future__ import annotations

from fakes.azure.arm.resource_ids import ResourceScope, resource_id

NAMESPACE = "Microsoft.Compute"
T_DISK = f"{NAMESPACE}/disks"
T_VM = f"{NAMESPACE}/virtualMachines"
T_SNAPSHOT = f"{NAMESPACE}/snapshots"


def disk_id(scope: ResourceScope, group: str, name: str) -> str:
    return resource_id(scope.subscription_id, group, NAMESPACE, "disks", name)


def vm_id(scope: ResourceScope, group: str, name: str) -> str:
    return resource_id(scope.subscription_id, group, NAMESPACE, "virtualMachines", name)
