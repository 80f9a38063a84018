"""The link proxies' API errors, with the messages and statuses Toxiproxy answers.

Toxiproxy's body is `{"error": <message>, "status": <HTTP status>}`; a wrapped error reads
`<message>: <detail>` (its `joinError`). One class per error.
"""

from __future__ import annotations


class LinkApiError(Exception):
    status = 500
    message = "internal error"

    def __init__(self, detail: str | None = None):
        self.detail = detail
        super().__init__(self.text)

    @property
    def text(self) -> str:
        return f"{self.message}: {self.detail}" if self.detail else self.message

    def body(self) -> dict:
        return {"error": self.text, "status": self.status}


class BadRequestBody(LinkApiError):
    status = 400
    message = "bad request body"


class MissingField(LinkApiError):
    status = 400
    message = "missing required field"


class ProxyNotFound(LinkApiError):
    status = 404
    message = "proxy not found"


class InvalidStream(LinkApiError):
    status = 400
    message = "stream was invalid, can be either upstream or downstream"


class InvalidToxicType(LinkApiError):
    status = 400
    message = "invalid toxic type"


class ToxicAlreadyExists(LinkApiError):
    status = 409
    message = "toxic already exists"


class ToxicNotFound(LinkApiError):
    status = 404
    message = "toxic not found"


class NotFound(LinkApiError):
    status = 404
    message = "not found"


class MethodNotAllowed(LinkApiError):
    status = 405
    message = "method not allowed"


class NotImplementedInLab(LinkApiError):
    """An operation of Toxiproxy's API that the lab does not emulate, named."""

    status = 501
    message = "not implemented"


class ProxyStartFailed(LinkApiError):
    """Re-enabling a link could not take its port back (another process holds it)."""

    status = 500
    message = "proxy could not listen again"
