"""VNets, subnets and NICs on a temporary database: seeding, allocation, in-use rules."""

from __future__ import annotations

import pytest

from fakes.azure.arm.errors import ArmError, ResourceGroupNotFound
from fakes.azure.network.models.network_interfaces import parse_nic_body
from fakes.azure.network.models.virtual_networks import parse_vnet_body

from .conftest import NETWORKS, RG, SUB


def subnet_id(vnet="vnet-prod", subnet="default"):
    return (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/"
        f"virtualNetworks/{vnet}/subnets/{subnet}"
    )


def nic_body(subnet=None, ip=None, **extra):
    props = {"subnet": {"id": subnet or subnet_id()}}
    if ip:
        props.update(privateIPAllocationMethod="Static", privateIPAddress=ip)
    return {
        "location": "West Europe",
        "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": props}]},
        **extra,
    }


def test_the_topology_networks_are_seeded_once(network):
    vnet = network.virtual_network(RG, "VNET-TEST")  # names are case-insensitive
    assert vnet["tags"] == {"drlab-isolated": "true"}
    assert vnet["properties"]["addressSpace"]["addressPrefixes"] == ["10.30.0.0/16"]
    assert [s["name"] for s in vnet["properties"]["subnets"]] == ["default"]
    network.virtual_networks.set_tags(RG, "vnet-prod", {"owner": "dr"})
    network.seed()  # a restart: nothing recreated or overwritten
    assert network.virtual_network(RG, "vnet-prod")["tags"] == {"owner": "dr"}
    assert len(network.virtual_networks.list()) == len(NETWORKS)


def test_nics_get_the_lowest_free_address_and_keep_it(network):
    nics = network.network_interfaces
    a, _ = nics.create_or_update(RG, "a", parse_nic_body(nic_body()))
    b, _ = nics.create_or_update(RG, "b", parse_nic_body(nic_body()))
    assert [
        a["ipConfigurations"][0]["privateIPAddress"],
        b["ipConfigurations"][0]["privateIPAddress"],
    ] == ["10.20.1.4", "10.20.1.5"]
    nics.delete(RG, "a")
    b2, created = nics.create_or_update(RG, "b", parse_nic_body(nic_body(tags={"x": "y"})))
    assert not created and b2["ipConfigurations"][0]["privateIPAddress"] == "10.20.1.5"
    c = network.create_nic(RG, "c", vnet="vnet-prod", subnet="default")
    assert c["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] == "10.20.1.4"
    subnet = network.subnet(RG, "vnet-prod", "default")
    assert sorted(i["id"].split("/")[-3] for i in subnet["properties"]["ipConfigurations"]) == [
        "b",
        "c",
    ]


def test_static_addresses_conflict_and_change_nothing(network):
    network.create_nic(RG, "a", vnet="vnet-prod", subnet="default", private_ip="10.20.1.50")
    with pytest.raises(ArmError) as err:
        network.create_nic(RG, "b", vnet="vnet-prod", subnet="default", private_ip="10.20.1.50")
    assert err.value.code == "PrivateIPAddressIsAllocated"
    assert network.network_interfaces.find(RG, "b") is None


def test_a_small_subnet_fills_up(network):
    for name in "abc":
        network.create_nic(RG, name, vnet="vnet-test", subnet="default")
    with pytest.raises(ArmError) as err:
        network.create_nic(RG, "d", vnet="vnet-test", subnet="default")
    assert err.value.code == "SubnetIsFull"


def test_a_nic_must_name_an_existing_subnet(network):
    with pytest.raises(ArmError) as err:
        network.network_interfaces.create_or_update(
            RG, "x", parse_nic_body(nic_body(subnet_id("vnet-prod", "nope")))
        )
    assert err.value.code == "InvalidResourceReference"


def test_subnets_in_use_cannot_go(network):
    network.create_nic(RG, "a", vnet="vnet-prod", subnet="default")
    for remove in (
        lambda: network.virtual_networks.delete_subnet(RG, "vnet-prod", "default"),
        lambda: network.virtual_networks.delete(RG, "vnet-prod"),
        lambda: network.virtual_networks.put_subnet(RG, "vnet-prod", "default", "10.20.2.0/24"),
    ):
        with pytest.raises(ArmError) as err:
            remove()
        assert err.value.code == "InUseSubnetCannotBeDeleted"
    network.delete_nic(RG, "a")
    assert network.virtual_networks.delete_subnet(RG, "vnet-prod", "default")


def test_vnet_create_checks_prefixes_and_location(network):
    body = {
        "location": "westeurope",
        "properties": {
            "addressSpace": {"addressPrefixes": ["10.50.0.0/16"]},
            "subnets": [{"name": "s", "properties": {"addressPrefix": "10.51.0.0/24"}}],
        },
    }
    with pytest.raises(ArmError) as err:
        network.virtual_networks.create_or_update(RG, "v", parse_vnet_body(body))
    assert err.value.code == "NetcfgSubnetRangeOutsideVnet"
    body["properties"]["subnets"][0]["properties"]["addressPrefix"] = "10.50.0.0/24"
    body["location"] = "eastus"
    with pytest.raises(ArmError) as err:
        network.virtual_networks.create_or_update(RG, "v", parse_vnet_body(body))
    assert err.value.code == "LocationNotAvailableForResourceType"
    body["location"] = "westeurope"
    with pytest.raises(ResourceGroupNotFound):
        network.virtual_networks.create_or_update("other-rg", "v", parse_vnet_body(body))
    doc, created = network.virtual_networks.create_or_update(RG, "v", parse_vnet_body(body))
    assert created and network.virtual_network(RG, "v")["properties"]["subnets"][0]["name"] == "s"


def test_an_attached_nic_cannot_be_deleted(network):
    nic = network.create_nic(RG, "a", vnet="vnet-test", subnet="default")
    network.network_interfaces.attach(nic["id"], "/subscriptions/s/resourceGroups/r/vm1")
    with pytest.raises(ArmError) as err:
        network.network_interfaces.attach(nic["id"], "/subscriptions/s/resourceGroups/r/vm2")
    assert err.value.code == "NicInUse"
    with pytest.raises(ArmError) as err:
        network.delete_nic(RG, "a")
    assert err.value.code == "NicInUse"
    where = network.nic_network(nic["id"])
    assert (where.vnet, where.subnet, where.isolated, where.private_ip) == (
        "vnet-test",
        "default",
        True,
        "10.30.1.4",
    )
    network.network_interfaces.detach(nic["id"], "/subscriptions/s/resourceGroups/r/vm1")
    assert network.delete_nic(RG, "a")


def test_reset_seeds_again(network):
    network.create_nic(RG, "a", vnet="vnet-test", subnet="default")
    network.virtual_networks.delete_subnet(RG, "vnet-prod", "default")
    network.reset()
    assert network.network_interfaces.list() == []
    assert (
        network.subnet(RG, "vnet-prod", "default")["properties"]["addressPrefix"] == "10.20.1.0/24"
    )
