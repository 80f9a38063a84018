"""ARM resource ids of plain resources (Compute, Network), and the lab's scope for them.

    /subscriptions/{sub}/resourceGroups/{rg}/providers/{Namespace}/{type}/{name}[/{type}/{name}...]

`parse` reads an id case-insensitively (clients send ids in any case); `ResourceId.format`
writes one the way Compute and Network write theirs (`/subscriptions/`, lower-case s, the
names as they were created). `ResourceScope` is the subscription, region and resource groups
the lab serves these providers in: the topology's resource group and the target resource
group of replication (where failover creates VMs) and any group the topology's networks name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ResourceGroupNotFound, SubscriptionNotFound

_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/(?P<ns>[^/]+)(?P<rest>(/[^/]+/[^/]+)+)/?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ResourceId:
    subscription_id: str
    resource_group: str
    namespace: str  # Microsoft.Network
    parts: tuple[tuple[str, str], ...]  # (("virtualNetworks", "vnet-prod"), ("subnets", "default"))

    @property
    def type(self) -> str:
        """The full resource type: Microsoft.Network/virtualNetworks/subnets."""
        return "/".join([self.namespace, *(t for t, _ in self.parts)])

    @property
    def name(self) -> str:
        return self.parts[-1][1]

    def name_of(self, type_segment: str) -> str | None:
        for t, n in self.parts:
            if t.lower() == type_segment.lower():
                return n
        return None

    def is_type(self, full_type: str) -> bool:
        return self.type.lower() == full_type.lower()

    def format(self) -> str:
        rest = "".join(f"/{t}/{n}" for t, n in self.parts)
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{self.namespace}{rest}"
        )

    def __str__(self) -> str:
        return self.format()


def parse(arm_id: str | None) -> ResourceId | None:
    """The parts of an id, or None if it is not a resource id."""
    m = _ID.match((arm_id or "").strip())
    if not m:
        return None
    segments = [s for s in m["rest"].split("/") if s]
    parts = tuple(zip(segments[::2], segments[1::2]))
    return ResourceId(m["sub"], m["rg"], m["ns"], parts)


def resource_id(subscription_id: str, group: str, namespace: str, *pairs: str) -> str:
    """resource_id(sub, rg, "Microsoft.Network", "virtualNetworks", "v", "subnets", "s")."""
    return ResourceId(
        subscription_id, group, namespace, tuple(zip(pairs[::2], pairs[1::2]))
    ).format()


@dataclass(frozen=True)
class ResourceScope:
    subscription_id: str
    location: str
    resource_groups: tuple[str, ...]
    # Where failover creates resources and the topology's networks live unless they name a
    # group: replication's target resource group, else the lab's own.
    target_group: str

    @classmethod
    def from_topology(cls, topology: dict) -> ResourceScope:
        azure = topology["azure"]
        replication = topology.get("replication") or {}
        target = replication.get("target_resource_group") or azure["resource_group"]
        groups = [azure["resource_group"], target]
        groups += [
            n["resource_group"] for n in azure.get("networks") or [] if n.get("resource_group")
        ]
        unique: dict[str, str] = {}
        for g in groups:
            unique.setdefault(g.lower(), g)
        return cls(
            azure["subscription_id"],
            azure.get("location", "westeurope"),
            tuple(unique.values()),
            target,
        )

    def group(self, name: str) -> str:
        """The group as the topology spells it; 404 ResourceGroupNotFound for another."""
        for g in self.resource_groups:
            if g.lower() == name.lower():
                return g
        raise ResourceGroupNotFound(name)

    def check_subscription(self, subscription_id: str) -> None:
        if subscription_id.lower() != self.subscription_id.lower():
            raise SubscriptionNotFound(subscription_id)

    def check(self, params: dict) -> None:
        """The scope check of a request's path parameters (subscription, resource group)."""
        sub = params.get("subscriptionId")
        if sub is not None:
            self.check_subscription(sub)
        group = params.get("resourceGroupName")
        if group is not None:
            self.group(group)

    def same_location(self, location: str | None) -> bool:
        """'West Europe' and 'westeurope' name the same region."""
        norm = (location or "").replace(" ", "").lower()
        return norm == self.location.replace(" ", "").lower()
