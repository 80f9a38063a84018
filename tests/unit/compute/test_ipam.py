"""Address rules of virtual networks: prefixes, subnets, private IP allocation."""

from __future__ import annotations

import pytest

from fakes.azure.network import ipam


def test_dynamic_addresses_start_after_the_reserved_four():
    assert ipam.allocate("10.20.1.0/24", []) == "10.20.1.4"
    assert ipam.allocate("10.20.1.0/24", ["10.20.1.4", "10.20.1.5"]) == "10.20.1.6"
    assert ipam.allocate("10.20.1.0/24", ["10.20.1.4", "10.20.1.6"]) == "10.20.1.5"


def test_a_subnet_fills_up():
    used = ["10.30.1.4", "10.30.1.5", "10.30.1.6"]  # a /29: .4-.6 usable
    assert ipam.available("10.30.1.0/29", used) == 0
    with pytest.raises(ipam.AddressError) as err:
        ipam.allocate("10.30.1.0/29", used)
    assert err.value.code == "SubnetIsFull"


@pytest.mark.parametrize(
    ("address", "code"),
    [
        ("10.20.2.9", "PrivateIPAddressNotInSubnet"),
        ("10.20.1.1", "PrivateIPAddressInReservedRange"),
        ("10.20.1.255", "PrivateIPAddressInReservedRange"),
        ("10.20.1.7", "PrivateIPAddressIsAllocated"),
        ("10.20.1.x", "InvalidPrivateIPAddressFormat"),
    ],
)
def test_static_addresses_are_checked(address, code):
    with pytest.raises(ipam.AddressError) as err:
        ipam.allocate("10.20.1.0/24", ["10.20.1.7"], address)
    assert err.value.code == code


def test_a_free_static_address_is_given():
    assert ipam.allocate("10.20.1.0/24", ["10.20.1.4"], "10.20.1.200") == "10.20.1.200"


@pytest.mark.parametrize(
    ("space", "subnets", "code"),
    [
        (["10.20.0.0/16"], {"a": "10.21.0.0/24"}, "NetcfgSubnetRangeOutsideVnet"),
        (
            ["10.20.0.0/16"],
            {"a": "10.20.1.0/24", "b": "10.20.1.128/25"},
            "NetcfgSubnetRangesOverlap",
        ),
        (["10.20.0.1/16"], {}, "InvalidCIDRNotation"),
        (["10.20.0.0/16"], {"a": "10.20.1.0/30"}, "InvalidSubnetPrefix"),
        (["10.20.0.0/16", "10.20.128.0/17"], {}, "NetcfgInvalidAddressSpace"),
        ([], {}, "InvalidAddressSpace"),
    ],
)
def test_subnet_rules(space, subnets, code):
    with pytest.raises(ipam.AddressError) as err:
        ipam.check_subnets(space, subnets)
    assert err.value.code == code


def test_valid_subnets_pass():
    ipam.check_subnets(["10.20.0.0/16", "10.40.0.0/16"], {"a": "10.20.1.0/24", "b": "10.40.0.0/29"})
