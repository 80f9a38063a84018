"""Mobility agents' credentials towards process servers.

The configuration server registers an agent (after checking the passphrase) and issues it a
short-lived token: `<agent id>.<vm id>.<expiry>.<signature>`, signed with HMAC-SHA256 under a
key the configuration server shares with the process servers that registered with it. A
process server checks a token offline, so no call to the configuration server sits in the
replication data path. Expiry is wall-clock time, like TLS and bearer tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

TOKEN_LIFETIME = 3600


class AgentTokenError(Exception):
    pass


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    vm_id: str
    expires: int


def _sign(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(key: bytes, agent_id: str, vm_id: str, lifetime: int = TOKEN_LIFETIME, now=None) -> str:
    for part in (agent_id, vm_id):
        if not part or "." in part:
            raise ValueError(f"bad identity part {part!r}")
    expires = int((now if now is not None else time.time()) + lifetime)
    message = f"{agent_id}.{vm_id}.{expires}"
    return f"{message}.{_sign(key, message)}"


def verify(key: bytes, token: str, now=None) -> AgentIdentity:
    parts = token.split(".")
    if len(parts) != 4:
        raise AgentTokenError("malformed agent token")
    agent_id, vm_id, expires, signature = parts
    if not hmac.compare_digest(_sign(key, f"{agent_id}.{vm_id}.{expires}"), signature):
        raise AgentTokenError("agent token signature is invalid")
    try:
        expiry = int(expires)
    except ValueError:
        raise AgentTokenError("malformed agent token") from None
    if expiry < (now if now is not None else time.time()):
        raise AgentTokenError("agent token expired")
    return AgentIdentity(agent_id, vm_id, expiry)


def from_header(key: bytes, authorization: str | None, now=None) -> AgentIdentity:
    if not authorization or not authorization.startswith("Agent "):
        raise AgentTokenError("an 'Authorization: Agent <token>' header is required")
    return verify(key, authorization[len("Agent ") :].strip(), now)
