"""How Service Bus messages travel over HTTP: the `BrokerProperties` header (JSON), custom
properties as headers, the JSON body of a batch send, RFC 1123 dates. No Flask here.

Custom property values in headers: a value in double quotes is a string, `true`/`false` a
boolean, a number a number, anything else a plain string; on receive, strings are sent back in
double quotes and numbers bare, as the real service does (`Priority: "High"`).
"""

from __future__ import annotations

import email.utils
import json
import re

from .errors import BadRequest
from .models import Delivery, NewMessage

BATCH_CONTENT_TYPE = "application/vnd.microsoft.servicebus.json"
DEFAULT_RECEIVE_TIMEOUT = 60  # seconds, the service's default for messages/head
MAX_RECEIVE_TIMEOUT = 120
# TimeSpan.MaxValue in seconds: what the service reports for "no TimeToLive".
TTL_FOREVER = 922337203685.4775

# Broker properties a sender may set (others are ignored, as the service ignores them).
_STRING_PROPERTIES = (
    "CorrelationId",
    "Label",
    "PartitionKey",
    "ReplyTo",
    "ReplyToSessionId",
    "SessionId",
    "To",
    "ViaPartitionKey",
)

# Request headers that are HTTP's or the SDKs', never a message's custom properties.
_NOT_CUSTOM = {
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "authorization",
    "brokerproperties",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "cookie",
    "date",
    "expect",
    "host",
    "keep-alive",
    "origin",
    "pragma",
    "referer",
    "request-id",
    "te",
    "traceparent",
    "tracestate",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "via",
    "x-request-id",
}
_NOT_CUSTOM_PREFIXES = ("x-ms-", "if-", "proxy-", "sec-", "x-forwarded-")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # what an HTTP header name may be
_INT = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$")


def rfc1123(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


def parse_rfc1123(text: str, what: str) -> float:
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        raise BadRequest(
            f"The value '{text}' of {what} is not a date in RFC 1123 format "
            "(e.g. 'Sun, 06 Nov 1994 08:49:37 GMT')."
        ) from None


# -- what a sender sends ------------------------------------------------------------------------
def broker_properties(raw: dict | str | None) -> dict:
    """NewMessage keyword arguments from a BrokerProperties header (JSON) or batch object."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise BadRequest("The BrokerProperties header is not valid JSON.") from None
    if not isinstance(raw, dict):
        raise BadRequest("BrokerProperties must be a JSON object.")
    out: dict = {"properties": {}}
    for name in _STRING_PROPERTIES:
        if name in raw and raw[name] is not None:
            out["properties"][name] = _string(raw[name], name)
    if raw.get("MessageId") is not None:
        out["message_id"] = _string(raw["MessageId"], "MessageId")
        if not 0 < len(out["message_id"]) <= 128:
            raise BadRequest("The MessageId must be 1 to 128 characters long.")
    if raw.get("TimeToLive") is not None:
        ttl = raw["TimeToLive"]
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
            raise BadRequest(f"The TimeToLive '{ttl}' is not a number of seconds.")
        out["time_to_live"] = float(ttl)
    if raw.get("ScheduledEnqueueTimeUtc"):
        out["scheduled_enqueue_time"] = parse_rfc1123(
            str(raw["ScheduledEnqueueTimeUtc"]), "ScheduledEnqueueTimeUtc"
        )
    return out


def _string(value, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BadRequest(f"The broker property {name} must be a string.")
    return str(value)


def custom_property(value: str):
    """A custom property's value from its header text."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if value in ("true", "false"):
        return value == "true"
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return value


def custom_properties(headers) -> dict:
    """Custom properties from request headers (name -> typed value)."""
    out = {}
    for name, value in headers.items():
        low = name.lower()
        if low in _NOT_CUSTOM or low.startswith(_NOT_CUSTOM_PREFIXES):
            continue
        out[name] = custom_property(value)
    return out


def message_from_request(body: bytes, content_type: str | None, headers) -> NewMessage:
    return NewMessage(
        body=body,
        content_type=content_type or None,
        user_properties=custom_properties(headers),
        **broker_properties(headers.get("BrokerProperties")),
    )


def messages_from_batch(body: bytes) -> list[NewMessage]:
    """The messages of a batch send: a JSON array of {Body, BrokerProperties, UserProperties}."""
    try:
        items = json.loads(body or b"null")
    except ValueError:
        raise BadRequest("The batch is not valid JSON.") from None
    if not isinstance(items, list) or not items:
        raise BadRequest(
            "A batch is a non-empty JSON array of objects with Body, BrokerProperties and "
            "UserProperties."
        )
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("Body"), str):
            raise BadRequest(f"Message {i} of the batch has no string 'Body'.")
        users = item.get("UserProperties") or {}
        if not isinstance(users, dict) or not all(
            isinstance(v, (str, int, float, bool)) for v in users.values()
        ):
            raise BadRequest(
                f"UserProperties of message {i} must be an object of strings, numbers or booleans."
            )
        for name in users:
            # Over HTTP a custom property comes back as a header: its name must be one.
            if not _TOKEN.match(name) or name.lower() in _NOT_CUSTOM:
                raise BadRequest(f"'{name}' (message {i}) cannot be a custom property name.")
        out.append(
            NewMessage(
                body=item["Body"].encode("utf-8"),
                user_properties=dict(users),
                **broker_properties(item.get("BrokerProperties")),
            )
        )
    return out


def receive_timeout(raw: str | None) -> float:
    if raw is None or raw == "":
        return DEFAULT_RECEIVE_TIMEOUT
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"The timeout '{raw}' is not a whole number of seconds.") from None
    if value < 0:
        raise BadRequest(f"The timeout '{raw}' must not be negative.")
    return min(value, MAX_RECEIVE_TIMEOUT)


# -- what a receiver gets -----------------------------------------------------------------------
def broker_properties_header(delivery: Delivery) -> str:
    props = {
        "DeliveryCount": delivery.delivery_count,
        "EnqueuedSequenceNumber": 0,
        "EnqueuedTimeUtc": rfc1123(delivery.enqueued_time),
        **delivery.properties,
        "MessageId": delivery.message_id,
        "SequenceNumber": delivery.sequence_number,
        "State": "Active",
        "TimeToLive": delivery.time_to_live if delivery.time_to_live is not None else TTL_FOREVER,
    }
    if delivery.lock_token is not None:
        props["LockToken"] = delivery.lock_token
        props["LockedUntilUtc"] = rfc1123(delivery.locked_until)
    if delivery.scheduled_enqueue_time is not None:
        props["ScheduledEnqueueTimeUtc"] = rfc1123(delivery.scheduled_enqueue_time)
    return json.dumps(dict(sorted(props.items())))


def custom_property_header(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value).replace('"', "").replace("\r", " ").replace("\n", " ")
    return f'"{text}"'
