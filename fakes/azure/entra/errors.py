"""Entra's errors: OAuth error code, AADSTS number, HTTP status, as the real service answers."""

from __future__ import annotations

import datetime as dt
import uuid


class EntraError(Exception):
    status = 400
    error = "invalid_request"
    aadsts = 900144

    def __init__(self, description: str):
        super().__init__(description)
        self.description = description

    def body(self) -> dict:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.aadsts}: {self.description} Trace ID: {trace} "
                f"Correlation ID: {correlation} Timestamp: {stamp}"
            ),
            "error_codes": [self.aadsts],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.aadsts}",
        }


class MissingParameter(EntraError):
    aadsts = 900144

    def __init__(self, name: str):
        super().__init__(f"The request body must contain the following parameter: '{name}'.")


class TenantNotFound(EntraError):
    aadsts = 90002

    def __init__(self, tenant: str):
        super().__init__(
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud."
        )


class UnsupportedGrantType(EntraError):
    error = "unsupported_grant_type"
    aadsts = 70003

    def __init__(self, grant: str):
        super().__init__(f"The app requested an unsupported grant type '{grant}'.")


class ApplicationNotFound(EntraError):
    error = "unauthorized_client"
    aadsts = 700016

    def __init__(self, client_id: str, tenant: str):
        super().__init__(
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{tenant}'. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant."
        )


class InvalidClientSecret(EntraError):
    status = 401
    error = "invalid_client"
    aadsts = 7000215

    def __init__(self, client_id: str):
        super().__init__(
            "Invalid client secret provided. Ensure the secret being sent in the request is "
            f"the client secret value, not the client secret ID, for a secret added to app "
            f"'{client_id}'."
        )


class MissingClientSecret(EntraError):
    status = 401
    error = "invalid_client"
    aadsts = 7000218

    def __init__(self):
        super().__init__(
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'."
        )


class InvalidScope(EntraError):
    error = "invalid_scope"
    aadsts = 1002012

    def __init__(self, scope: str):
        super().__init__(
            f"The provided value for scope {scope} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier "
            "(application ID URI)."
        )


class ResourceNotFound(EntraError):
    error = "invalid_resource"
    aadsts = 500011

    def __init__(self, resource: str, tenant: str):
        super().__init__(
            f"The resource principal named {resource} was not found in the tenant named "
            f"{tenant}. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant."
        )
