"""Virtual networks and their subnets (`Microsoft.Network/virtualNetworks[/subnets]`).

A VNet is one document: address prefixes, subnets (name -> prefix), tags. Which NICs use a
subnet is not stored here: it is asked of the network interfaces (`users_of`), so a subnet's
`ipConfigurations` can never disagree with the NICs. The topology's networks are seeded at
start (created when missing, never overwritten). A VNet is isolated (no route to
on-premises, where test failovers go) when its tag `drlab-isolated` is "true": seeded from
the topology's `isolated: true`, and settable through the API like any tag.

Not emulated: peerings, DDoS plans, service endpoints, delegations, NSGs and route tables on
subnets, DNS servers, IPv6, encryption, flow timeouts (given in a body, they are ignored).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from fakes.azure.arm.resource_ids import ResourceScope, resource_id

from .. import ipam
from ..errors import (
    AddressRuleViolated,
    InUseSubnetCannotBeDeleted,
    InvalidParameter,
    NotFound,
    check_location,
)

NAMESPACE = "Microsoft.Network"
T_VNET = f"{NAMESPACE}/virtualNetworks"
T_SUBNET = f"{T_VNET}/subnets"
ISOLATED_TAG = "drlab-isolated"


def is_isolated(doc: dict) -> bool:
    return str((doc.get("tags") or {}).get(ISOLATED_TAG, "")).lower() == "true"


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


@dataclass
class VnetInput:
    location: str
    tags: dict
    address_prefixes: list[str]
    subnets: dict[str, str]  # name -> prefix, in order


def _tags(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidParameter("'tags' must be an object of string values.")
    return dict(value)


def parse_vnet_body(body) -> VnetInput:
    if not isinstance(body, dict):
        raise InvalidParameter("The request body must be a JSON object.")
    props = body.get("properties") or {}
    prefixes = (props.get("addressSpace") or {}).get("addressPrefixes") or []
    if not isinstance(prefixes, list) or not prefixes:
        raise InvalidParameter(
            "A virtual network needs properties.addressSpace.addressPrefixes.",
            target="addressSpace",
        )
    subnets: dict[str, str] = {}
    for item in props.get("subnets") or []:
        name = (item or {}).get("name")
        prefix = ((item or {}).get("properties") or {}).get("addressPrefix")
        if not name or not prefix:
            raise InvalidParameter("Each subnet needs a name and properties.addressPrefix.")
        if name.lower() in {n.lower() for n in subnets}:
            raise InvalidParameter(f"The subnet name '{name}' appears twice.")
        subnets[name] = prefix
    return VnetInput(body.get("location") or "", _tags(body.get("tags")), prefixes, subnets)


def parse_subnet_body(body) -> str:
    props = (body or {}).get("properties") if isinstance(body, dict) else None
    prefix = (props or {}).get("addressPrefix")
    if not prefix and (props or {}).get("addressPrefixes"):
        prefix = props["addressPrefixes"][0]
    if not prefix:
        raise InvalidParameter("A subnet needs properties.addressPrefix.", target="addressPrefix")
    return prefix


class VirtualNetworks:
    def __init__(
        self,
        store,
        scope: ResourceScope,
        users_of: Callable[[str], list[str]] = lambda subnet_id: [],
    ):
        self.store = store
        self.scope = scope
        self.users_of = users_of  # subnet id -> ids of the IP configurations in it

    # -- ids ----------------------------------------------------------------------------------
    def vnet_id(self, doc: dict) -> str:
        return resource_id(
            self.scope.subscription_id,
            doc["resourceGroup"],
            NAMESPACE,
            "virtualNetworks",
            doc["name"],
        )

    def subnet_id(self, doc: dict, subnet: str) -> str:
        return f"{self.vnet_id(doc)}/subnets/{subnet}"

    # -- reading ------------------------------------------------------------------------------
    def find(self, group: str, name: str) -> dict | None:
        return self.store.get(T_VNET, group, name)

    def get(self, group: str, name: str) -> dict:
        doc = self.find(group, name)
        if doc is None:
            raise NotFound(T_VNET, name, self.scope.group(group))
        return doc

    def list(self, group: str | None = None) -> list[dict]:
        return self.store.list(T_VNET, group)

    def subnet(self, group: str, vnet: str, name: str) -> tuple[dict, dict]:
        """(vnet document, {"name", "addressPrefix"}) or 404."""
        doc = self.get(group, vnet)
        for sub in doc["subnets"]:
            if sub["name"].lower() == name.lower():
                return doc, sub
        raise NotFound(T_SUBNET, f"{doc['name']}/{name}", doc["resourceGroup"])

    # -- writing ------------------------------------------------------------------------------
    def create_or_update(self, group: str, name: str, inp: VnetInput) -> tuple[dict, bool]:
        group = self.scope.group(group)
        check_location(self.scope, inp.location, T_VNET)
        try:
            ipam.check_subnets(inp.address_prefixes, inp.subnets)
        except ipam.AddressError as exc:
            raise AddressRuleViolated(exc) from None
        with self.store.transaction():
            existing = self.find(group, name)
            if existing is not None:
                kept = {n.lower() for n in inp.subnets}
                for sub in existing["subnets"]:
                    changed = inp.subnets.get(sub["name"]) != sub["addressPrefix"]
                    if sub["name"].lower() not in kept or changed:
                        self._check_unused(existing, sub["name"])
            doc = {
                "name": existing["name"] if existing else name,
                "resourceGroup": group,
                "location": self.scope.location,
                "tags": inp.tags,
                "addressPrefixes": list(inp.address_prefixes),
                "subnets": [{"name": n, "addressPrefix": p} for n, p in inp.subnets.items()],
                "resourceGuid": existing["resourceGuid"] if existing else str(uuid.uuid4()),
                "etag": new_etag(),
                "seeded": bool(existing and existing.get("seeded")),
            }
            self.store.put(T_VNET, group, name, doc)
        return doc, existing is None

    def set_tags(self, group: str, name: str, tags) -> dict:
        with self.store.transaction():
            doc = self.get(group, name)
            doc["tags"] = _tags(tags)
            doc["etag"] = new_etag()
            self.store.put(T_VNET, doc["resourceGroup"], doc["name"], doc)
        return doc

    def delete(self, group: str, name: str) -> bool:
        with self.store.transaction():
            doc = self.find(group, name)
            if doc is None:
                return False
            for sub in doc["subnets"]:
                self._check_unused(doc, sub["name"])
            return self.store.delete(T_VNET, group, name)

    def put_subnet(self, group: str, vnet: str, name: str, prefix: str) -> tuple[dict, bool]:
        with self.store.transaction():
            doc = self.get(group, vnet)
            subnets = {s["name"]: s["addressPrefix"] for s in doc["subnets"]}
            current = next((n for n in subnets if n.lower() == name.lower()), None)
            if current is not None and subnets[current] != prefix:
                self._check_unused(doc, current)
            subnets[current or name] = prefix
            try:
                ipam.check_subnets(doc["addressPrefixes"], subnets)
            except ipam.AddressError as exc:
                raise AddressRuleViolated(exc) from None
            doc["subnets"] = [{"name": n, "addressPrefix": p} for n, p in subnets.items()]
            doc["etag"] = new_etag()
            self.store.put(T_VNET, doc["resourceGroup"], doc["name"], doc)
        return {"name": current or name, "addressPrefix": prefix}, current is None

    def delete_subnet(self, group: str, vnet: str, name: str) -> bool:
        with self.store.transaction():
            doc = self.get(group, vnet)
            sub = next((s for s in doc["subnets"] if s["name"].lower() == name.lower()), None)
            if sub is None:
                return False
            self._check_unused(doc, sub["name"])
            doc["subnets"] = [s for s in doc["subnets"] if s is not sub]
            doc["etag"] = new_etag()
            self.store.put(T_VNET, doc["resourceGroup"], doc["name"], doc)
            return True

    def _check_unused(self, doc: dict, subnet: str) -> None:
        sid = self.subnet_id(doc, subnet)
        users = self.users_of(sid)
        if users:
            raise InUseSubnetCannotBeDeleted(sid, users)

    # -- the topology -------------------------------------------------------------------------
    def seed(self, networks: list[dict]) -> list[str]:
        """Create the topology's VNets that do not exist; returns the names created."""
        created = []
        for spec in networks:
            group = spec.get("resource_group") or self.scope.target_group
            if self.find(group, spec["name"]) is not None:
                continue
            tags = {ISOLATED_TAG: "true"} if spec.get("isolated") else {}
            subnets = {s["name"]: s["prefix"] for s in spec.get("subnets") or []}
            inp = VnetInput(self.scope.location, tags, list(spec["address_space"]), subnets)
            doc, _ = self.create_or_update(group, spec["name"], inp)
            doc["seeded"] = True
            self.store.put(T_VNET, doc["resourceGroup"], doc["name"], doc)
            created.append(spec["name"])
        return created

    # -- ARM JSON -----------------------------------------------------------------------------
    def render_subnet(self, doc: dict, sub: dict) -> dict:
        sid = self.subnet_id(doc, sub["name"])
        return {
            "id": sid,
            "name": sub["name"],
            "type": T_SUBNET,
            "etag": doc["etag"],
            "properties": {
                "provisioningState": "Succeeded",
                "addressPrefix": sub["addressPrefix"],
                "ipConfigurations": [{"id": i} for i in self.users_of(sid)],
                "delegations": [],
                "privateEndpointNetworkPolicies": "Disabled",
                "privateLinkServiceNetworkPolicies": "Enabled",
            },
        }

    def render(self, doc: dict) -> dict:
        return {
            "id": self.vnet_id(doc),
            "name": doc["name"],
            "type": T_VNET,
            "location": doc["location"],
            "tags": dict(doc["tags"]),
            "etag": doc["etag"],
            "properties": {
                "provisioningState": "Succeeded",
                "resourceGuid": doc["resourceGuid"],
                "addressSpace": {"addressPrefixes": list(doc["addressPrefixes"])},
                "subnets": [self.render_subnet(doc, s) for s in doc["subnets"]],
                "virtualNetworkPeerings": [],
                "enableDdosProtection": False,
                "privateEndpointVNetPolicies": "Disabled",
            },
        }
