"""ARM ids and resource types of one vault's Site Recovery resources.

Ids are returned the way the real service writes them: `/Subscriptions/` with a capital S
(the rest as the path spells it). Ids that clients send (policyId, protectableItemId,
targetProtectionContainerId, ...) are parsed case-insensitively, with either spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROVIDER = "Microsoft.RecoveryServices"
VAULT_TYPE = f"{PROVIDER}/vaults"
T_FABRIC = f"{VAULT_TYPE}/replicationFabrics"
T_PROVIDER = f"{T_FABRIC}/replicationRecoveryServicesProviders"
T_VCENTER = f"{T_FABRIC}/replicationvCenters"
T_CONTAINER = f"{T_FABRIC}/replicationProtectionContainers"
T_PROTECTABLE = f"{T_CONTAINER}/replicationProtectableItems"
T_PROTECTED = f"{T_CONTAINER}/replicationProtectedItems"
T_RECOVERY_POINT = f"{T_PROTECTED}/recoveryPoints"
T_MAPPING = f"{T_CONTAINER}/replicationProtectionContainerMappings"
T_POLICY = f"{VAULT_TYPE}/replicationPolicies"
T_RECOVERY_PLAN = f"{VAULT_TYPE}/replicationRecoveryPlans"
T_JOB = f"{VAULT_TYPE}/replicationJobs"
T_EVENT = f"{VAULT_TYPE}/replicationEvents"

# Child collections under a vault, in id order: the key a parsed id uses for each.
_SEGMENTS = {
    "replicationfabrics": "fabric",
    "replicationprotectioncontainers": "container",
    "replicationprotectableitems": "protectable_item",
    "replicationprotecteditems": "protected_item",
    "recoverypoints": "recovery_point",
    "replicationprotectioncontainermappings": "mapping",
    "replicationvcenters": "vcenter",
    "replicationrecoveryservicesproviders": "provider",
    "replicationpolicies": "policy",
    "replicationjobs": "job",
    "replicationevents": "event",
}

_VAULT_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/"
    r"microsoft\.recoveryservices/vaults/(?P<vault>[^/]+)(?P<rest>(/[^/]+/[^/]+)*)/?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class VaultScope:
    subscription_id: str
    resource_group: str
    vault: str
    location: str = "westeurope"

    @property
    def id(self) -> str:
        return (
            f"/Subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{PROVIDER}/vaults/{self.vault}"
        )

    @property
    def path(self) -> str:
        """The vault's path as the SDK sends it (lower-case `subscriptions`), for URLs."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{PROVIDER}/vaults/{self.vault}"
        )

    # -- ids ----------------------------------------------------------------------------------
    def fabric(self, fabric: str) -> str:
        return f"{self.id}/replicationFabrics/{fabric}"

    def recovery_services_provider(self, fabric: str, provider: str) -> str:
        return f"{self.fabric(fabric)}/replicationRecoveryServicesProviders/{provider}"

    def vcenter(self, fabric: str, name: str) -> str:
        return f"{self.fabric(fabric)}/replicationvCenters/{name}"

    def container(self, fabric: str, container: str) -> str:
        return f"{self.fabric(fabric)}/replicationProtectionContainers/{container}"

    def protectable_item(self, fabric: str, container: str, name: str) -> str:
        return f"{self.container(fabric, container)}/replicationProtectableItems/{name}"

    def protected_item(self, fabric: str, container: str, name: str) -> str:
        return f"{self.container(fabric, container)}/replicationProtectedItems/{name}"

    def recovery_point(self, fabric: str, container: str, item: str, name: str) -> str:
        return f"{self.protected_item(fabric, container, item)}/recoveryPoints/{name}"

    def mapping(self, fabric: str, container: str, name: str) -> str:
        return f"{self.container(fabric, container)}/replicationProtectionContainerMappings/{name}"

    def policy(self, name: str) -> str:
        return f"{self.id}/replicationPolicies/{name}"

    def recovery_plan(self, name: str) -> str:
        return f"{self.id}/replicationRecoveryPlans/{name}"

    def job(self, name: str) -> str:
        return f"{self.id}/replicationJobs/{name}"

    def event(self, name: str) -> str:
        return f"{self.id}/replicationEvents/{name}"

    # -- parsing ------------------------------------------------------------------------------
    def parse(self, arm_id: str) -> dict[str, str] | None:
        """The named parts of an id inside this vault ({'fabric': ..., 'container': ...}), or
        None if the id is not a Site Recovery id of this vault."""
        m = _VAULT_RE.match(arm_id or "")
        if not m:
            return None
        if (
            m["sub"].lower() != self.subscription_id.lower()
            or m["rg"].lower() != self.resource_group.lower()
            or m["vault"].lower() != self.vault.lower()
        ):
            return None
        parts = [p for p in m["rest"].split("/") if p]
        named = {}
        for collection, name in zip(parts[::2], parts[1::2]):
            key = _SEGMENTS.get(collection.lower())
            if key is None:
                return None
            named[key] = name
        return named

    def is_same_vault(self, subscription: str, group: str, vault: str) -> bool:
        return (
            subscription.lower() == self.subscription_id.lower()
            and group.lower() == self.resource_group.lower()
            and vault.lower() == self.vault.lower()
        )


_ARM_ID_RE = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+(/providers/(?P<ns>[^/]+)/(?P<type>[^/]+)/[^/]+)?/?$",
    re.IGNORECASE,
)


def looks_like(arm_id: str, resource_type: str | None) -> bool:
    """Whether `arm_id` is an ARM id of a resource group (None) or of `Namespace/type`."""
    m = _ARM_ID_RE.match(arm_id or "")
    if not m:
        return False
    if resource_type is None:
        return m["ns"] is None
    return m["ns"] is not None and f"{m['ns']}/{m['type']}".lower() == resource_type.lower()
