"""Address management of a virtual network: prefixes, subnets, private IP allocation.

Pure functions on `ipaddress` values, no state. Azure's rules: a subnet's prefix lies inside
one of its VNet's address prefixes and overlaps no other subnet; the first four addresses of
a subnet (network, gateway, two DNS) and the last (broadcast) are reserved, so a /24 offers
.4 to .254; a dynamic address is the lowest free one; a static one must be in the subnet, not
reserved and not taken. IPv4 only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

RESERVED_AT_START = 4
SMALLEST_PREFIX = 29  # Azure's smallest subnet: /29 (3 usable addresses)


class AddressError(ValueError):
    """A prefix or address that breaks a rule; `code` is the ARM error code Azure uses."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def parse_prefix(text: str) -> ipaddress.IPv4Network:
    """A CIDR prefix with no host bits set ("10.20.1.0/24")."""
    try:
        net = ipaddress.ip_network(str(text).strip(), strict=True)
    except ValueError:
        raise AddressError(
            "InvalidCIDRNotation", f"The address prefix {text} has an invalid CIDR notation."
        ) from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise AddressError("InvalidCIDRNotation", f"Only IPv4 prefixes are emulated ({text}).")
    return net


def check_subnets(address_space: list[str], subnets: dict[str, str]) -> None:
    """Every subnet (name -> prefix) inside the address space, none overlapping another."""
    space = [parse_prefix(p) for p in address_space]
    if not space:
        raise AddressError("InvalidAddressSpace", "A virtual network needs an address prefix.")
    for i, a in enumerate(space):
        for b in space[i + 1 :]:
            if a.overlaps(b):
                raise AddressError(
                    "NetcfgInvalidAddressSpace", f"The address prefixes {a} and {b} overlap."
                )
    nets = {}
    for name, prefix in subnets.items():
        net = parse_prefix(prefix)
        if net.prefixlen > SMALLEST_PREFIX:
            raise AddressError(
                "InvalidSubnetPrefix",
                f"Subnet {name}: the prefix {net} is smaller than /{SMALLEST_PREFIX}.",
            )
        if not any(net.subnet_of(s) for s in space):
            raise AddressError(
                "NetcfgSubnetRangeOutsideVnet",
                f"Subnet '{name}' is not valid because its IP address range ({net}) is outside "
                f"the IP address range of the virtual network ({', '.join(map(str, space))}).",
            )
        for other, other_net in nets.items():
            if net.overlaps(other_net):
                raise AddressError(
                    "NetcfgSubnetRangesOverlap",
                    f"Subnet '{name}' ({net}) overlaps subnet '{other}' ({other_net}).",
                )
        nets[name] = net


def usable(subnet: ipaddress.IPv4Network) -> tuple[int, int]:
    """The first and last assignable address of a subnet, as integers."""
    first = int(subnet.network_address) + RESERVED_AT_START
    last = int(subnet.broadcast_address) - 1
    return first, last


def allocate(subnet_prefix: str, used: Iterable[str], requested: str | None = None) -> str:
    """A private address in the subnet: `requested` (static) checked, or the lowest free."""
    subnet = parse_prefix(subnet_prefix)
    taken = {int(ipaddress.ip_address(u)) for u in used}
    first, last = usable(subnet)
    if requested:
        try:
            address = ipaddress.ip_address(requested)
        except ValueError:
            raise AddressError(
                "InvalidPrivateIPAddressFormat", f"'{requested}' is not a valid IP address."
            ) from None
        if address not in subnet:
            raise AddressError(
                "PrivateIPAddressNotInSubnet",
                f"Private static IP address {requested} does not belong to the range of "
                f"subnet prefix {subnet}.",
            )
        if not first <= int(address) <= last:
            raise AddressError(
                "PrivateIPAddressInReservedRange",
                f"Private static IP address {requested} falls within the reserved IP range of "
                f"subnet prefix {subnet}.",
            )
        if int(address) in taken:
            raise AddressError(
                "PrivateIPAddressIsAllocated",
                f"IP configuration has a private IP address {requested} which is already "
                "allocated to another resource.",
            )
        return str(address)
    for candidate in range(first, last + 1):
        if candidate not in taken:
            return str(ipaddress.ip_address(candidate))
    raise AddressError("SubnetIsFull", f"Subnet with address prefix {subnet} is full.")


def available(subnet_prefix: str, used: Iterable[str]) -> int:
    """How many addresses of the subnet are still free."""
    first, last = usable(parse_prefix(subnet_prefix))
    taken = {int(ipaddress.ip_address(u)) for u in used}
    return last - first + 1 - sum(1 for a in taken if first <= a <= last)
