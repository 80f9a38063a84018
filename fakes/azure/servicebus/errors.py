"""Service Bus runtime errors: one class per answer the real service gives, HTTP status on the
class. The REST runtime answers errors as XML, `<Error><Code>{status}</Code><Detail>…</Detail>
</Error>`, the detail ending with a tracking id, the system tracker and a timestamp.
"""

from __future__ import annotations

import datetime as dt
import uuid
from xml.sax.saxutils import escape


class ServiceBusError(Exception):
    status = 500

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail

    def xml(self, tracker: str) -> str:
        now = dt.datetime.now(dt.UTC)
        stamp = f"{now.month}/{now.day}/{now.year} {now.strftime('%I:%M:%S %p').lstrip('0')}"
        detail = (
            f"{self.detail} TrackingId:{uuid.uuid4()}_G0, SystemTracker:{tracker}, "
            f"Timestamp:{stamp}"
        )
        return f"<Error><Code>{self.status}</Code><Detail>{escape(detail)}</Detail></Error>"


# -- 400 ----------------------------------------------------------------------------------------
class BadRequest(ServiceBusError):
    status = 400


# -- 401: every authentication and authorization failure ------------------------------------------
class Unauthorized(ServiceBusError):
    status = 401


class MissingToken(Unauthorized):
    def __init__(self):
        super().__init__("MissingToken: The authorization header was not found.")


class MalformedToken(Unauthorized):
    def __init__(self, why: str):
        super().__init__(
            "MalformedToken: The credentials contained in the authorization header are not in "
            f"the SharedAccessSignature or Bearer format: {why}."
        )


class InvalidSignature(Unauthorized):
    def __init__(self):
        super().__init__("InvalidSignature: The token has an invalid signature.")


class ExpiredToken(Unauthorized):
    def __init__(self, expired_at: str):
        super().__init__(f"ExpiredToken: The token is expired. Expiration time: '{expired_at}'")


class InvalidAudience(Unauthorized):
    def __init__(self):
        super().__init__(
            "InvalidAudience: The authorization header contains a token with a wrong audience."
        )


class InvalidBearerToken(Unauthorized):
    def __init__(self, description: str):
        super().__init__(f"InvalidToken: {description}")


class MissingClaim(Unauthorized):
    def __init__(self, right: str, resource: str):
        super().__init__(
            f"Unauthorized access. '{right}' claim(s) are required to perform this operation. "
            f"Resource: '{resource}'."
        )


# -- 403 ----------------------------------------------------------------------------------------
class QuotaExceeded(ServiceBusError):
    status = 403

    def __init__(self, kind: str, entity: str, size: int, limit: int):
        super().__init__(
            f"The maximum entity size has been reached or exceeded for {kind}: '{entity}'. "
            f"Size of entity in bytes:{size}, Max entity size in bytes:{limit}."
        )


# -- 404 ----------------------------------------------------------------------------------------
class NotFound(ServiceBusError):
    status = 404


class MessageLockLost(NotFound):
    def __init__(self):
        super().__init__(
            "The lock supplied is invalid. Either the lock expired, or the message has already "
            "been removed from the queue, or was received by a different receiver instance."
        )


class NoSuchResource(NotFound):
    def __init__(self, path: str):
        super().__init__(f"No service is hosted at the specified address '{path}'.")


# -- 410 ----------------------------------------------------------------------------------------
class MessagingEntityNotFound(ServiceBusError):
    # The REST runtime answers send and receive on a missing queue, topic or subscription with
    # 410 Gone ("Specified queue or topic doesn't exist").
    status = 410

    def __init__(self, resource: str):
        super().__init__(
            f"The messaging entity '{resource}' could not be found. To know more visit "
            "https://aka.ms/sbResourceMgrExceptions."
        )


# -- 413 ----------------------------------------------------------------------------------------
class MessageTooLarge(ServiceBusError):
    status = 413

    def __init__(self, size: int, limit: int):
        super().__init__(
            f"The received message (size: {size} bytes) exceeds the limit ({limit} bytes) "
            "currently allowed on the entity."
        )


# -- 501 ----------------------------------------------------------------------------------------
class NotImplementedOperation(ServiceBusError):
    status = 501

    def __init__(self, operation: str):
        super().__init__(
            f"NotImplemented: the lab's Service Bus does not emulate the {operation} operation "
            "(only the REST runtime: send, batch send, peek-lock, receive-and-delete, complete, "
            "unlock, renew lock)."
        )
