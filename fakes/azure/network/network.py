"""`Network`: the root of Microsoft.Network's state in the ARM process, and its Python API.

The HTTP handlers and the in-process callers (Compute attaching NICs, Site Recovery's
failover) use the same object:

    network = Network.open(store, scope, topology["azure"].get("networks", []))
    network.virtual_network(rg, "vnet-prod")             # ARM JSON of the VNet (subnets inside)
    network.subnet(rg, "vnet-test", "default")            # ARM JSON of a subnet
    nic = network.create_nic(rg, "vm1-nic", vnet="vnet-test", subnet="default",
                             private_ip=None, tags={})     # ARM JSON; address allocated
    network.nic(rg, "vm1-nic"); network.delete_nic(rg, "vm1-nic")
    network.nic_network(nic["id"])                        # NicNetwork: vnet, subnet, isolated, ip
    network.reset(); network.state()

Errors are `ArmError`s (the same the API answers). The store is shared with Compute (one
database), so a VM's NIC attachment and its own record commit together.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from fakes.azure.arm import resource_ids
from fakes.azure.arm.resource_ids import ResourceScope

from .models.network_interfaces import (
    T_NIC,
    IpConfigInput,
    NetworkInterfaces,
    NicInput,
)
from .models.virtual_networks import T_VNET, VirtualNetworks, is_isolated

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NicNetwork:
    """Where a NIC's primary IP configuration sits: what a guest is told about its network."""

    nic_id: str
    resource_group: str
    vnet: str
    vnet_id: str
    subnet: str
    subnet_id: str
    address_prefix: str
    private_ip: str
    isolated: bool

    def to_dict(self) -> dict:
        return asdict(self)


class Network:
    def __init__(self, store, scope: ResourceScope, seed_networks: list[dict] | None = None):
        self.store = store
        self.scope = scope
        self.seed_networks = list(seed_networks or [])
        self.virtual_networks = VirtualNetworks(store, scope)
        self.network_interfaces = NetworkInterfaces(store, scope, self.virtual_networks)
        self.virtual_networks.users_of = self.network_interfaces.users_of

    @classmethod
    def open(cls, store, scope: ResourceScope, seed_networks: list[dict] | None = None):
        network = cls(store, scope, seed_networks)
        network.seed()
        return network

    def seed(self) -> None:
        created = self.virtual_networks.seed(self.seed_networks)
        if created:
            log.info("virtual networks seeded from the topology: %s", ", ".join(created))

    # -- virtual networks ---------------------------------------------------------------------
    def virtual_network(self, group: str, name: str) -> dict:
        return self.virtual_networks.render(self.virtual_networks.get(group, name))

    def subnet(self, group: str, vnet: str, name: str) -> dict:
        doc, sub = self.virtual_networks.subnet(group, vnet, name)
        return self.virtual_networks.render_subnet(doc, sub)

    # -- network interfaces -------------------------------------------------------------------
    def create_nic(
        self,
        group: str,
        name: str,
        *,
        vnet: str,
        subnet: str,
        private_ip: str | None = None,
        tags: dict | None = None,
        vnet_group: str | None = None,
    ) -> dict:
        """A NIC with one IP configuration (`ipconfig1`) in `vnet`/`subnet`."""
        doc, _sub = self.virtual_networks.subnet(vnet_group or group, vnet, subnet)
        subnet_id = self.virtual_networks.subnet_id(doc, _sub["name"])
        inp = NicInput(
            self.scope.location,
            dict(tags or {}),
            [IpConfigInput("ipconfig1", subnet_id, private_ip, primary=True)],
        )
        nic, _created = self.network_interfaces.create_or_update(group, name, inp)
        return self.network_interfaces.render(nic)

    def nic(self, group: str, name: str) -> dict:
        return self.network_interfaces.render(self.network_interfaces.get(group, name))

    def delete_nic(self, group: str, name: str) -> bool:
        return self.network_interfaces.delete(group, name)

    def nic_network(self, nic_id: str) -> NicNetwork:
        doc = self.network_interfaces.by_id(nic_id)
        cfg = next((c for c in doc["ipConfigurations"] if c["primary"]), doc["ipConfigurations"][0])
        rid = resource_ids.parse(cfg["subnetId"])
        vnet_doc, sub = self.virtual_networks.subnet(
            rid.resource_group, rid.name_of("virtualNetworks"), rid.name_of("subnets")
        )
        return NicNetwork(
            nic_id=self.network_interfaces.nic_id(doc),
            resource_group=vnet_doc["resourceGroup"],
            vnet=vnet_doc["name"],
            vnet_id=self.virtual_networks.vnet_id(vnet_doc),
            subnet=sub["name"],
            subnet_id=cfg["subnetId"],
            address_prefix=sub["addressPrefix"],
            private_ip=cfg["privateIPAddress"],
            isolated=is_isolated(vnet_doc),
        )

    def nic_addresses(self, nic_id: str) -> list[str]:
        doc = self.network_interfaces.by_id(nic_id)
        return [c["privateIPAddress"] for c in doc["ipConfigurations"]]

    # -- control API --------------------------------------------------------------------------
    def reset(self) -> None:
        """Every NIC and VNet goes; the topology's VNets are seeded again. (Compute resets
        first: its VMs hold NICs.)"""
        self.store.wipe(T_NIC, T_VNET)
        self.seed()

    def state(self) -> dict:
        vnets = []
        for doc in self.virtual_networks.list():
            vnets.append(
                {
                    "id": self.virtual_networks.vnet_id(doc),
                    "address_space": doc["addressPrefixes"],
                    "isolated": is_isolated(doc),
                    "subnets": {s["name"]: s["addressPrefix"] for s in doc["subnets"]},
                }
            )
        nics = []
        for doc in self.network_interfaces.list():
            subnet = resource_ids.parse(doc["ipConfigurations"][0]["subnetId"])
            nics.append(
                {
                    "id": self.network_interfaces.nic_id(doc),
                    "ips": [c["privateIPAddress"] for c in doc["ipConfigurations"]],
                    "subnet": f"{subnet.name_of('virtualNetworks')}/{subnet.name}",
                    "virtual_machine": doc.get("virtualMachine"),
                }
            )
        return {"virtual_networks": vnets, "network_interfaces": nics}
