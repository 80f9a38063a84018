"""Network's errors: ARM error JSON with the codes Microsoft.Network answers.

One class per code, the HTTP status on the class. Address rule violations come from
`ipam.AddressError` (pure) and are turned into `AddressRuleViolated` with Azure's code.
"""

from __future__ import annotations

from fakes.azure.arm.errors import ArmError, ResourceNotFound

__all__ = [
    "AddressRuleViolated",
    "check_location",
    "InUseSubnetCannotBeDeleted",
    "InvalidParameter",
    "InvalidResourceReference",
    "LocationNotAvailable",
    "LocationRequired",
    "NicInUse",
    "NotFound",
    "ResourceNotFound",
]


def NotFound(resource_type: str, name: str, group: str | None = None) -> ResourceNotFound:  # noqa: N802
    return ResourceNotFound(resource_type, name, group)


class InvalidParameter(ArmError):
    code = "InvalidRequestFormat"


class AddressRuleViolated(ArmError):
    """An address space, subnet prefix or private IP rule (code from ipam.AddressError)."""

    def __init__(self, exc):
        super().__init__(exc.message, code=exc.code)


class InvalidResourceReference(ArmError):
    code = "InvalidResourceReference"

    def __init__(self, referenced: str, referencing: str):
        super().__init__(
            f"Resource {referenced} referenced by resource {referencing} was not found. "
            "Please make sure that the referenced resource exists, and that both resources "
            "are in the same region."
        )


class InUseSubnetCannotBeDeleted(ArmError):
    code = "InUseSubnetCannotBeDeleted"

    def __init__(self, subnet_id: str, users: list[str]):
        super().__init__(
            f"Subnet {subnet_id} is in use by {', '.join(users[:3])} and cannot be deleted. "
            "In order to delete the subnet, delete all the resources within the subnet."
        )


class NicInUse(ArmError):
    code = "NicInUse"

    def __init__(self, nic_id: str, vm_id: str):
        super().__init__(
            f"Network Interface {nic_id} is used by existing resource {vm_id}. In order to "
            "delete the network interface, it must be dissociated from the resource."
        )


class LocationRequired(ArmError):
    code = "LocationRequired"

    def __init__(self):
        super().__init__("The location property is required for this definition.")


class LocationNotAvailable(ArmError):
    code = "LocationNotAvailableForResourceType"

    def __init__(self, location: str, resource_type: str, lab_location: str):
        super().__init__(
            f"The provided location '{location}' is not available for resource type "
            f"'{resource_type}'. The lab serves one region: '{lab_location}'."
        )


def check_location(scope, location: str | None, resource_type: str) -> None:
    """A resource's location must be given and be the lab's region."""
    if not location:
        raise LocationRequired()
    if not scope.same_location(location):
        raise LocationNotAvailable(location, resource_type, scope.location)
