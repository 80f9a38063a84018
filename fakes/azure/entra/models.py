"""The directory: one tenant, its service principals and the resources tokens can be for.

No HTTP here: `Directory.client_credentials(...)` takes the token request's fields and returns
the token response, or raises one of Entra's errors.
"""

from __future__ import annotations

import hmac
import threading
import uuid
from collections import Counter
from dataclasses import dataclass

from lab.kit.tokens import app_token_claims, issue_token

from . import errors

TOKEN_LIFETIME = 3600


@dataclass(frozen=True)
class Principal:
    name: str
    client_id: str
    secret: str
    object_id: str


@dataclass(frozen=True)
class Resource:
    identifier: str  # the application ID URI a scope names
    audience: str  # the `aud` of tokens issued for it


class Directory:
    def __init__(self, topology_entra: dict, signing_key):
        self.tenant_id = topology_entra["tenant_id"]
        self.domain = topology_entra.get("domain") or ""
        self.signing_key = signing_key
        self.principals = {}
        for p in topology_entra["principals"]:
            object_id = p.get("object_id") or str(
                uuid.uuid5(uuid.UUID(self.tenant_id), "sp:" + p["client_id"])
            )
            self.principals[p["client_id"].lower()] = Principal(
                p["name"], p["client_id"], p["secret"], object_id
            )
        self.resources = [
            Resource(r["identifier"], r.get("audience") or r["identifier"])
            for r in topology_entra["resources"]
        ]
        self._lock = threading.Lock()
        self.issued: Counter = Counter()
        self.refused: Counter = Counter()

    # -- lookups ------------------------------------------------------------------------------
    def knows_tenant(self, tenant: str) -> bool:
        t = tenant.lower()
        return t == self.tenant_id.lower() or (bool(self.domain) and t == self.domain.lower())

    def resource(self, identifier: str) -> Resource | None:
        wanted = identifier.rstrip("/").lower()
        for r in self.resources:
            if r.identifier.rstrip("/").lower() == wanted:
                return r
        return None

    # -- the grant ----------------------------------------------------------------------------
    def client_credentials(self, tenant: str, form: dict, v1: bool = False) -> dict:
        try:
            response = self._grant(tenant, form, v1)
        except errors.EntraError as exc:
            with self._lock:
                self.refused[type(exc).__name__] += 1
            raise
        return response

    def _grant(self, tenant: str, form: dict, v1: bool) -> dict:
        if not self.knows_tenant(tenant):
            raise errors.TenantNotFound(tenant)
        grant = form.get("grant_type")
        if not grant:
            raise errors.MissingParameter("grant_type")
        if grant != "client_credentials":
            raise errors.UnsupportedGrantType(grant)
        client_id = form.get("client_id")
        if not client_id:
            raise errors.MissingParameter("client_id")
        principal = self.principals.get(client_id.lower())
        if principal is None:
            raise errors.ApplicationNotFound(client_id, tenant)
        secret = form.get("client_secret")
        if not secret:
            raise errors.MissingClientSecret()
        if not hmac.compare_digest(secret.encode(), principal.secret.encode()):
            raise errors.InvalidClientSecret(client_id)
        resource = self._requested_resource(form, v1, tenant)
        claims = app_token_claims(
            tenant_id=self.tenant_id,
            audience=resource.audience,
            client_id=principal.client_id,
            object_id=principal.object_id,
            lifetime=TOKEN_LIFETIME,
        )
        token = issue_token(self.signing_key, claims)
        with self._lock:
            self.issued[principal.name] += 1
        body = {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": token,
        }
        if v1:
            body.update(
                expires_on=str(claims["exp"]),
                not_before=str(claims["nbf"]),
                resource=resource.identifier,
            )
        return body

    def _requested_resource(self, form: dict, v1: bool, tenant: str) -> Resource:
        if v1 and form.get("resource"):
            name = form["resource"]
        else:
            scope = (form.get("scope") or "").strip()
            if not scope:
                raise errors.MissingParameter("scope")
            scopes = scope.split()
            if len(scopes) != 1 or not scopes[0].endswith("/.default"):
                raise errors.InvalidScope(scope)
            name = scopes[0][: -len("/.default")]
        resource = self.resource(name)
        if resource is None:
            raise errors.ResourceNotFound(name, tenant)
        return resource

    # -- control API --------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.issued.clear()
            self.refused.clear()

    def state(self) -> dict:
        with self._lock:
            return {
                "tenant_id": self.tenant_id,
                "principals": sorted(p.name for p in self.principals.values()),
                "resources": [r.identifier for r in self.resources],
                "tokens_issued": dict(self.issued),
                "requests_refused": dict(self.refused),
            }
