"""Compute's errors: ARM error JSON with the codes Microsoft.Compute answers.

One class per code, the HTTP status on the class. Compute names the offending property in
`target` (e.g. "vmSize", "diskSizeGB"), as the real service does.
"""

from __future__ import annotations

from fakes.azure.arm.errors import ArmError, ResourceNotFound
from fakes.azure.network.errors import check_location

__all__ = [
    "ArmError",
    "DiskStorageUnavailable",
    "InvalidParameter",
    "NotEmulated",
    "NotFound",
    "OperationNotAllowed",
    "PropertyChangeNotAllowed",
    "ResourceNotFound",
    "check_location",
]


def NotFound(resource_type: str, name: str, group: str | None = None) -> ResourceNotFound:  # noqa: N802
    return ResourceNotFound(resource_type, name, group)


class InvalidParameter(ArmError):
    code = "InvalidParameter"


class OperationNotAllowed(ArmError):
    status = 409
    code = "OperationNotAllowed"


class PropertyChangeNotAllowed(ArmError):
    status = 409
    code = "PropertyChangeNotAllowed"

    def __init__(self, prop: str):
        super().__init__(f"Changing property '{prop}' is not allowed.", target=prop)


class NotEmulated(ArmError):
    """A valid option of the API that the lab does not emulate: 501, named."""

    status = 501
    code = "NotImplemented"

    def __init__(self, what: str, instead: str = ""):
        hint = f" {instead}" if instead else ""
        super().__init__(f"{what} is not emulated by drlab.{hint}", target=what)


class DiskStorageUnavailable(ArmError):
    status = 503
    code = "DiskStorageUnavailable"
