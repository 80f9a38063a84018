"""ARM's errors: one class per error code, the HTTP status on the class.

Every error the ARM front or a resource provider raises is an `ArmError`; the front turns it
into ARM's error JSON in one place (`ArmError.body()`):

    {"error": {"code": "...", "message": "...", "target"?: "...", "details"?: [...]}}

Resource providers subclass `ArmError` for their own codes (Site Recovery's numeric codes
such as 15040 carry `possibleCauses` and `recommendedAction`, as the real service does).
No Flask here: models raise these, and the worker process imports them too.
"""

from __future__ import annotations


class ArmError(Exception):
    status = 400
    code = "BadRequest"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        target: str | None = None,
        details: list[dict] | None = None,
        headers: dict | None = None,
        **extra,
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.target = target
        self.details = details or []
        self.headers = headers or {}
        # Provider-specific members of the error object (e.g. possibleCauses).
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def error_object(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        error.update(self.extra)
        return error

    def body(self) -> dict:
        return {"error": self.error_object()}


# -- authentication (401, with WWW-Authenticate) ---------------------------------------------
class AuthenticationFailed(ArmError):
    status = 401
    code = "AuthenticationFailed"


class InvalidAuthenticationToken(ArmError):
    status = 401
    code = "InvalidAuthenticationToken"


class InvalidAuthenticationTokenAudience(ArmError):
    status = 401
    code = "InvalidAuthenticationTokenAudience"


class ExpiredAuthenticationToken(ArmError):
    status = 401
    code = "ExpiredAuthenticationToken"


class AuthorizationFailed(ArmError):
    status = 403
    code = "AuthorizationFailed"


# -- request shape ----------------------------------------------------------------------------
class MissingApiVersionParameter(ArmError):
    code = "MissingApiVersionParameter"

    def __init__(self):
        super().__init__(
            "The api-version query parameter (?api-version=) is required for all requests."
        )


class InvalidApiVersionParameter(ArmError):
    code = "InvalidApiVersionParameter"

    def __init__(self, given: str, supported: list[str] | tuple[str, ...]):
        super().__init__(
            f"The api-version '{given}' is invalid. The supported versions are "
            f"'{','.join(supported)}'."
        )


class InvalidRequestContent(ArmError):
    code = "InvalidRequestContent"


class InvalidResourceType(ArmError):
    status = 404
    code = "InvalidResourceType"


class HttpMethodNotAllowed(ArmError):
    status = 405
    code = "HttpMethodNotAllowed"


class InvalidFilter(ArmError):
    code = "InvalidFilter"


# -- resources --------------------------------------------------------------------------------
class SubscriptionNotFound(ArmError):
    status = 404
    code = "SubscriptionNotFound"

    def __init__(self, subscription: str):
        super().__init__(f"The subscription '{subscription}' could not be found.")


class ResourceGroupNotFound(ArmError):
    status = 404
    code = "ResourceGroupNotFound"

    def __init__(self, group: str):
        super().__init__(f"Resource group '{group}' could not be found.")


class ResourceNotFound(ArmError):
    status = 404
    code = "ResourceNotFound"

    def __init__(self, resource_type: str, name: str, group: str | None = None):
        where = f" under resource group '{group}'" if group else ""
        super().__init__(f"The Resource '{resource_type}/{name}'{where} was not found.")


class Conflict(ArmError):
    status = 409
    code = "Conflict"


# -- the lab's own answers --------------------------------------------------------------------
class OperationNotImplemented(ArmError):
    """An operation of the API surface that drlab does not emulate: 501, named."""

    status = 501
    code = "NotImplemented"

    def __init__(self, operation_id: str, method: str = "", path: str = "", why: str = ""):
        where = f" ({method} {path})" if method else ""
        reason = f": {why}" if why else ""
        super().__init__(
            f"The operation '{operation_id}'{where} is not emulated by drlab{reason}.",
            target=operation_id,
        )


class InternalServerError(ArmError):
    status = 500
    code = "InternalServerError"
