"""Network interfaces (`Microsoft.Network/networkInterfaces`): IP configurations in subnets.

Each IP configuration names a subnet and gets a private address there when the NIC is
written: dynamic (the lowest free address) or static (checked), in the same transaction that
reads every other NIC of the subnet, so two NICs never get one address. A dynamic address
stays the NIC's as long as it stays in its subnet (Azure keeps it across deallocation too).
A VM attaches a NIC (`attach`), which then refuses deletion (`NicInUse`) until detached.

Not emulated: public IPs, NSGs, load balancer pools, accelerated networking and IP forwarding
(recorded, without effect), secondary IP configurations' IPv6, DNS settings.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from fakes.azure.arm import resource_ids
from fakes.azure.arm.errors import ArmError
from fakes.azure.arm.resource_ids import ResourceScope, resource_id

from .. import ipam
from ..errors import (
    AddressRuleViolated,
    InvalidParameter,
    InvalidResourceReference,
    NicInUse,
    NotFound,
    check_location,
)
from .virtual_networks import NAMESPACE, T_SUBNET, VirtualNetworks, _tags, new_etag

T_NIC = f"{NAMESPACE}/networkInterfaces"
T_IP_CONFIG = f"{T_NIC}/ipConfigurations"


@dataclass
class IpConfigInput:
    name: str
    subnet_id: str
    private_ip: str | None = None  # static address, or None: dynamic
    primary: bool = False


@dataclass
class NicInput:
    location: str
    tags: dict
    ip_configurations: list[IpConfigInput]
    accelerated_networking: bool = False
    ip_forwarding: bool = False


def parse_nic_body(body) -> NicInput:
    if not isinstance(body, dict):
        raise InvalidParameter("The request body must be a JSON object.")
    props = body.get("properties") or {}
    configs = []
    for item in props.get("ipConfigurations") or []:
        item = item or {}
        p = item.get("properties") or {}
        subnet = (p.get("subnet") or {}).get("id")
        if not item.get("name") or not subnet:
            raise InvalidParameter(
                "Each IP configuration needs a name and properties.subnet.id.",
                target="ipConfigurations",
            )
        method = p.get("privateIPAllocationMethod") or (
            "Static" if p.get("privateIPAddress") else "Dynamic"
        )
        if method not in ("Static", "Dynamic"):
            raise InvalidParameter(f"privateIPAllocationMethod '{method}' is not valid.")
        if method == "Static" and not p.get("privateIPAddress"):
            raise InvalidParameter("A static IP configuration needs properties.privateIPAddress.")
        static = p.get("privateIPAddress") if method == "Static" else None
        configs.append(IpConfigInput(item["name"], subnet, static, bool(p.get("primary"))))
    if not configs:
        raise InvalidParameter(
            "A network interface needs at least one IP configuration.", target="ipConfigurations"
        )
    if not any(c.primary for c in configs):
        configs[0].primary = True
    if sum(c.primary for c in configs) > 1:
        raise InvalidParameter("Only one IP configuration of a network interface is primary.")
    return NicInput(
        body.get("location") or "",
        _tags(body.get("tags")),
        configs,
        bool(props.get("enableAcceleratedNetworking")),
        bool(props.get("enableIPForwarding")),
    )


def mac_address(guid: str) -> str:
    """A stable MAC in Microsoft's OUI (00-0D-3A), as Azure NICs have."""
    tail = hashlib.sha256(guid.encode()).digest()[:3]
    return "00-0D-3A-" + "-".join(f"{b:02X}" for b in tail)


class NetworkInterfaces:
    def __init__(self, store, scope: ResourceScope, vnets: VirtualNetworks):
        self.store = store
        self.scope = scope
        self.vnets = vnets

    def nic_id(self, doc: dict) -> str:
        return resource_id(
            self.scope.subscription_id,
            doc["resourceGroup"],
            NAMESPACE,
            "networkInterfaces",
            doc["name"],
        )

    # -- reading ------------------------------------------------------------------------------
    def find(self, group: str, name: str) -> dict | None:
        return self.store.get(T_NIC, group, name)

    def get(self, group: str, name: str) -> dict:
        doc = self.find(group, name)
        if doc is None:
            raise NotFound(T_NIC, name, self.scope.group(group))
        return doc

    def by_id(self, nic_id: str) -> dict:
        rid = resource_ids.parse(nic_id)
        if rid is None or not rid.is_type(T_NIC):
            raise InvalidParameter(f"'{nic_id}' is not a network interface id.")
        self.scope.check_subscription(rid.subscription_id)
        return self.get(rid.resource_group, rid.name)

    def list(self, group: str | None = None) -> list[dict]:
        return self.store.list(T_NIC, group)

    def users_of(self, subnet_id: str) -> list[str]:
        """Ids of the IP configurations in a subnet (what the subnet shows)."""
        users = []
        for doc in self.list():
            for cfg in doc["ipConfigurations"]:
                if cfg["subnetId"].lower() == subnet_id.lower():
                    users.append(f"{self.nic_id(doc)}/ipConfigurations/{cfg['name']}")
        return users

    # -- writing ------------------------------------------------------------------------------
    def _resolve_subnet(self, subnet_id: str, nic_ref: str) -> tuple[dict, dict]:
        rid = resource_ids.parse(subnet_id)
        if rid is None or not rid.is_type(T_SUBNET):
            raise InvalidResourceReference(subnet_id, nic_ref)
        try:
            self.scope.check_subscription(rid.subscription_id)
            return self.vnets.subnet(
                rid.resource_group, rid.name_of("virtualNetworks"), rid.name_of("subnets")
            )
        except ArmError:
            raise InvalidResourceReference(subnet_id, nic_ref) from None

    def create_or_update(self, group: str, name: str, inp: NicInput) -> tuple[dict, bool]:
        group = self.scope.group(group)
        check_location(self.scope, inp.location, T_NIC)
        names = [c.name.lower() for c in inp.ip_configurations]
        if len(set(names)) != len(names):
            raise InvalidParameter("IP configuration names of a network interface are unique.")
        nic_ref = resource_id(
            self.scope.subscription_id, group, NAMESPACE, "networkInterfaces", name
        )
        with self.store.transaction():
            existing = self.find(group, name)
            before = {c["name"].lower(): c for c in (existing or {}).get("ipConfigurations", [])}
            configs = []
            for cfg in inp.ip_configurations:
                vnet, sub = self._resolve_subnet(cfg.subnet_id, nic_ref)
                subnet_id = self.vnets.subnet_id(vnet, sub["name"])
                used = self._addresses_in(subnet_id, exclude=nic_ref)
                used += [c["privateIPAddress"] for c in configs if c["subnetId"] == subnet_id]
                old = before.get(cfg.name.lower())
                keep = (
                    old is not None
                    and cfg.private_ip is None
                    and old["subnetId"].lower() == subnet_id.lower()
                    and old["privateIPAddress"] not in used
                )
                try:
                    address = (
                        old["privateIPAddress"]
                        if keep
                        else ipam.allocate(sub["addressPrefix"], used, cfg.private_ip)
                    )
                except ipam.AddressError as exc:
                    raise AddressRuleViolated(exc) from None
                configs.append(
                    {
                        "name": cfg.name,
                        "subnetId": subnet_id,
                        "privateIPAddress": address,
                        "privateIPAllocationMethod": "Static" if cfg.private_ip else "Dynamic",
                        "primary": cfg.primary,
                    }
                )
            guid = existing["resourceGuid"] if existing else str(uuid.uuid4())
            doc = {
                "name": existing["name"] if existing else name,
                "resourceGroup": group,
                "location": self.scope.location,
                "tags": inp.tags,
                "ipConfigurations": configs,
                "resourceGuid": guid,
                "macAddress": mac_address(guid),
                "enableAcceleratedNetworking": inp.accelerated_networking,
                "enableIPForwarding": inp.ip_forwarding,
                "virtualMachine": (existing or {}).get("virtualMachine"),
                "etag": new_etag(),
            }
            self.store.put(T_NIC, group, name, doc)
        return doc, existing is None

    def _addresses_in(self, subnet_id: str, exclude: str) -> list[str]:
        used = []
        for doc in self.list():
            if self.nic_id(doc).lower() == exclude.lower():
                continue
            for cfg in doc["ipConfigurations"]:
                if cfg["subnetId"].lower() == subnet_id.lower():
                    used.append(cfg["privateIPAddress"])
        return used

    def delete(self, group: str, name: str) -> bool:
        with self.store.transaction():
            doc = self.find(group, name)
            if doc is None:
                return False
            if doc.get("virtualMachine"):
                raise NicInUse(self.nic_id(doc), doc["virtualMachine"])
            return self.store.delete(T_NIC, group, name)

    def set_tags(self, group: str, name: str, tags: dict) -> dict:
        with self.store.transaction():
            doc = self.get(group, name)
            doc["tags"] = _tags(tags)
            doc["etag"] = new_etag()
            self.store.put(T_NIC, doc["resourceGroup"], doc["name"], doc)
        return doc

    # -- a VM's use of a NIC (called by compute, inside its transaction) ----------------------
    def attach(self, nic_id: str, vm_id: str) -> dict:
        with self.store.transaction():
            doc = self.by_id(nic_id)
            current = doc.get("virtualMachine")
            if current and current.lower() != vm_id.lower():
                raise NicInUse(self.nic_id(doc), current)
            doc["virtualMachine"] = vm_id
            self.store.put(T_NIC, doc["resourceGroup"], doc["name"], doc)
        return doc

    def detach(self, nic_id: str, vm_id: str) -> None:
        with self.store.transaction():
            try:
                doc = self.by_id(nic_id)
            except ArmError:
                return  # already gone
            if (doc.get("virtualMachine") or "").lower() == vm_id.lower():
                doc["virtualMachine"] = None
                self.store.put(T_NIC, doc["resourceGroup"], doc["name"], doc)

    # -- ARM JSON -----------------------------------------------------------------------------
    def render(self, doc: dict) -> dict:
        nic_id = self.nic_id(doc)
        props = {
            "provisioningState": "Succeeded",
            "resourceGuid": doc["resourceGuid"],
            "ipConfigurations": [
                {
                    "id": f"{nic_id}/ipConfigurations/{c['name']}",
                    "name": c["name"],
                    "type": T_IP_CONFIG,
                    "etag": doc["etag"],
                    "properties": {
                        "provisioningState": "Succeeded",
                        "privateIPAddress": c["privateIPAddress"],
                        "privateIPAllocationMethod": c["privateIPAllocationMethod"],
                        "subnet": {"id": c["subnetId"]},
                        "primary": c["primary"],
                        "privateIPAddressVersion": "IPv4",
                    },
                }
                for c in doc["ipConfigurations"]
            ],
            "dnsSettings": {"dnsServers": [], "appliedDnsServers": []},
            "macAddress": doc["macAddress"],
            "enableAcceleratedNetworking": doc["enableAcceleratedNetworking"],
            "enableIPForwarding": doc["enableIPForwarding"],
            "nicType": "Standard",
            "vnetEncryptionSupported": False,
        }
        if doc.get("virtualMachine"):
            props["virtualMachine"] = {"id": doc["virtualMachine"]}
            props["primary"] = True
        return {
            "id": nic_id,
            "name": doc["name"],
            "type": T_NIC,
            "location": doc["location"],
            "tags": dict(doc["tags"]),
            "etag": doc["etag"],
            "properties": props,
        }
