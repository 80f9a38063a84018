"""Who may do what: Shared Access Signatures of the topology's rules, and Entra bearer tokens.

SAS: `Authorization: SharedAccessSignature sr=<url-encoded resource URI>&sig=<url-encoded
base64 HMAC-SHA256>&se=<expiry, epoch seconds>&skn=<rule name>`. The signature is
HMAC-SHA256, keyed with the rule's key as text (its UTF-8 bytes, not base64-decoded), of
`<sr as sent, still url-encoded>` + "\\n" + `<se>`, as every Service Bus SDK computes it.

The resource `sr` may name the namespace as the real service knows it
(`https://<namespace>.servicebus.windows.net/<path>`, also `sb://` or without a scheme) or as
the lab serves it (`https://127.0.0.1:<port>/<path>`); the path is a scope: the token is good
for that entity and everything under it (a topic's token reaches its subscriptions), and an
empty path is the whole namespace. Rights are the rule's: Send, Listen, Manage (Manage implies
the other two). Expiry (`se`) is wall-clock time, as in the real service.

Bearer: a JWT from the lab's Entra with audience `https://servicebus.azure.net`. The fake
Entra has no role assignments, so a valid token has every right (the real service would also
require a data-plane role such as Azure Service Bus Data Sender).

Authorization comes before the entity is looked up, as in the real service: a caller without
rights cannot probe which entities exist.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from lab.kit.tokens import TokenError, TokenValidator

from . import errors

RIGHTS = ("Send", "Listen", "Manage")
AUDIENCE = "https://servicebus.azure.net"


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: a SAS rule or an Entra application."""

    kind: str  # "sas" | "bearer"
    name: str  # the rule name or the token's appid
    rights: frozenset[str]


@dataclass(frozen=True)
class SasRule:
    name: str
    key: str
    rights: frozenset[str]


def signature(sr: str, expiry: str, key: str) -> str:
    """The base64 signature of a SAS token (before url-encoding)."""
    digest = hmac.new(key.encode("utf-8"), f"{sr}\n{expiry}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Authorizer:
    def __init__(
        self,
        namespace: str,
        sas_rules: list[dict],
        bearer: TokenValidator | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.host = f"{namespace}.servicebus.windows.net".lower()
        self.rules = {
            r["name"]: SasRule(r["name"], r["key"], _rights(r.get("rights", ["Send", "Listen"])))
            for r in sas_rules
        }
        self.bearer = bearer
        self.clock = clock

    def authorize(self, authorization: str | None, served_host: str, path: str, right: str):
        """The caller, if it may exercise `right` on the entity at `path`; raises a 401."""
        if not authorization or not authorization.strip():
            raise errors.MissingToken()
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme == "SharedAccessSignature":
            caller = self._sas(credentials.strip(), served_host.lower(), path.strip("/").lower())
        elif scheme.lower() == "bearer":
            caller = self._bearer(authorization)
        else:
            raise errors.MalformedToken(f"unknown scheme '{scheme}'")
        if right not in caller.rights:
            raise errors.MissingClaim(right, f"sb://{self.host}/{path.strip('/')}")
        return caller

    def _sas(self, credentials: str, served_host: str, path: str) -> Caller:
        fields = {}
        for part in credentials.split("&"):
            name, sep, value = part.partition("=")
            if not sep:
                raise errors.MalformedToken(f"'{name}' has no value")
            fields[name] = value
        missing = [f for f in ("sr", "sig", "se", "skn") if not fields.get(f)]
        if missing:
            raise errors.MalformedToken(f"missing {', '.join(missing)}")
        try:
            expiry = int(fields["se"])
        except ValueError:
            raise errors.MalformedToken("se is not a number of seconds") from None
        rule = self.rules.get(unquote(fields["skn"]))
        if rule is None:
            raise errors.InvalidSignature()  # an unknown rule name is not revealed as such
        expected = signature(fields["sr"], fields["se"], rule.key)
        if not hmac.compare_digest(unquote(fields["sig"]).encode(), expected.encode()):
            raise errors.InvalidSignature()
        if expiry < self.clock():
            stamp = dt.datetime.fromtimestamp(expiry, dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
            raise errors.ExpiredToken(stamp)
        if not self._in_scope(unquote_plus(fields["sr"]), served_host, path):
            raise errors.InvalidAudience()
        return Caller("sas", rule.name, rule.rights)

    def _in_scope(self, resource: str, served_host: str, path: str) -> bool:
        resource = resource.strip().lower()
        for scheme in ("sb://", "https://", "http://"):
            if resource.startswith(scheme):
                resource = resource[len(scheme) :]
                break
        host, _, scope = resource.partition("/")
        if host not in (self.host, served_host):
            return False
        scope = scope.strip("/")
        return not scope or path == scope or path.startswith(scope + "/")

    def _bearer(self, authorization: str) -> Caller:
        if self.bearer is None:
            raise errors.MalformedToken("bearer tokens are not accepted here")
        try:
            claims = self.bearer.validate_header(authorization)
        except TokenError as exc:
            text = exc.description
            if "expired" in text:
                raise errors.ExpiredToken("see the token's exp claim") from None
            if "audience" in text:
                raise errors.InvalidAudience() from None
            if "signature" in text:
                raise errors.InvalidSignature() from None
            raise errors.InvalidBearerToken(text) from None
        return Caller("bearer", claims.get("appid", "?"), frozenset(RIGHTS))


def _rights(names: list[str]) -> frozenset[str]:
    rights = set(names)
    if "Manage" in rights:
        rights |= {"Send", "Listen"}
    return frozenset(rights)
