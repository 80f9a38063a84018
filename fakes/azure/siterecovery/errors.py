"""Site Recovery's errors: one class per error, ARM error JSON with ASR's extra members.

The real service answers with `{"error": {"code", "message", "possibleCauses",
"recommendedAction", "activityId"}}`; codes are numbers as strings where the real code is
known (15040), descriptive names where it is not (documented in docs/site-recovery.md).
"""

from __future__ import annotations

import uuid

from fakes.azure.arm.errors import ArmError, Conflict, ResourceNotFound

__all__ = [
    "SiteRecoveryError",
    "ResourceNotFound",
    "Conflict",
    "NotFound",
    "InvalidInput",
    "AppConsistentFrequencyTooLow",
    "RetentionTooLong",
    "InvalidRegistrationKey",
    "FabricNotRegistered",
    "ProviderNotEmulated",
    "OperationNotAllowed",
    "ProtectionAlreadyEnabled",
    "NotTheRegisteredServer",
    "WorkItemCancelled",
    "WorkItemFinished",
]


class SiteRecoveryError(ArmError):
    status = 400
    code = "BadRequest"
    possible_causes: str | None = None
    recommended_action: str | None = None

    def __init__(self, message: str, **kw):
        kw.setdefault("possibleCauses", self.possible_causes)
        kw.setdefault("recommendedAction", self.recommended_action)
        kw.setdefault("activityId", str(uuid.uuid4()))
        super().__init__(message, **kw)


def NotFound(resource_type: str, name: str, group: str | None = None) -> ResourceNotFound:  # noqa: N802
    """404 ResourceNotFound; the lab's choice where the real service sometimes answers 400."""
    return ResourceNotFound(resource_type, name, group)


class InvalidInput(SiteRecoveryError):
    code = "InvalidInput"
    recommended_action = "Correct the request and retry."


class AppConsistentFrequencyTooLow(SiteRecoveryError):
    code = "15040"
    possible_causes = "The app consistent snapshot frequency is less than 60 minutes."
    recommended_action = (
        "Set the app consistent snapshot frequency to 0 (off) or to at least 60 minutes."
    )

    def __init__(self, minutes: int):
        super().__init__(
            "The app consistent snapshot frequency can't be less than 60 minutes "
            f"(given: {minutes} minutes)."
        )


class RetentionTooLong(SiteRecoveryError):
    code = "InvalidRecoveryPointHistory"
    recommended_action = "Set a recovery point retention of at most 15 days (21600 minutes)."

    def __init__(self, minutes: int):
        super().__init__(
            f"The recovery point retention of {minutes} minutes is more than the maximum of "
            "15 days (21600 minutes) supported for replication to managed disks."
        )


class InvalidRegistrationKey(SiteRecoveryError):
    code = "InvalidRegistrationKey"
    possible_causes = "The vault credentials file is not of this vault, or is out of date."
    recommended_action = "Download the vault credentials of this vault again and retry."

    def __init__(self, vault: str):
        super().__init__(f"The registration key is not valid for the vault '{vault}'.")


class FabricNotRegistered(SiteRecoveryError):
    code = "FabricNotRegistered"
    recommended_action = "Register a configuration server with the vault first."


class ProviderNotEmulated(SiteRecoveryError):
    """A provider input (instanceType) the lab does not emulate: 501, named."""

    status = 501
    code = "NotImplemented"


class OperationNotAllowed(SiteRecoveryError):
    code = "OperationNotAllowed"


class ProtectionAlreadyEnabled(SiteRecoveryError):
    status = 409
    code = "ProtectionAlreadyEnabled"


class NotTheRegisteredServer(SiteRecoveryError):
    """A provider-channel call from a principal other than the one that registered."""

    status = 403
    code = "AuthorizationFailed"


class WorkItemCancelled(SiteRecoveryError):
    status = 409
    code = "WorkItemCancelled"


class WorkItemFinished(SiteRecoveryError):
    status = 409
    code = "WorkItemFinished"


class InternalError(SiteRecoveryError):
    """Work on the Azure side failed for a reason that is not the caller's."""

    status = 500
    code = "InternalError"
