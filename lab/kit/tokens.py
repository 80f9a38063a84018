"""Bearer tokens: Entra signs them here, every other fake checks them here.

Tokens are RS256 JWTs with Entra's v1 claims. Validation checks the signature against the
tenant's JWKS (fetched from Entra's `jwks_uri` as real resource servers do, refetched when an
unknown key id appears), the issuer, the audience and the expiry. Expiry is wall-clock time:
MSAL and Azurite, which also read these tokens, know no other clock.
"""

from __future__ import annotations

import threading
import time
import uuid

import jwt
import requests

V1_ISSUER = "https://sts.windows.net/{tenant}/"


class TokenError(Exception):
    """A bearer token was missing or refused; `description` is safe to show the caller."""

    def __init__(self, description: str, error: str = "invalid_token"):
        super().__init__(description)
        self.description = description
        self.error = error


def issue_token(signing_key, claims: dict) -> str:
    headers = {"kid": signing_key.kid, "x5t": signing_key.kid, "typ": "JWT"}
    return jwt.encode(claims, signing_key.private_key, algorithm="RS256", headers=headers)


def app_token_claims(
    *, tenant_id: str, audience: str, client_id: str, object_id: str, lifetime: int, now=None
) -> dict:
    """Claims of a v1 application (client-credentials) token, as Entra issues them."""
    now = int(now if now is not None else time.time())
    issuer = V1_ISSUER.format(tenant=tenant_id)
    return {
        "aud": audience,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "appid": client_id,
        "appidacr": "1",
        "idp": issuer,
        "idtyp": "app",
        "oid": object_id,
        "sub": object_id,
        "tid": tenant_id,
        "uti": uuid.uuid4().hex[:22],
        "ver": "1.0",
    }


class TokenValidator:
    """Checks bearer tokens for one resource (audience) of one tenant."""

    def __init__(
        self,
        *,
        tenant_id: str,
        audiences: list[str] | tuple[str, ...],
        jwks: dict | None = None,
        jwks_url: str | None = None,
        ca_bundle: str | None = None,
        leeway: float = 30.0,
    ):
        if jwks is None and jwks_url is None:
            raise ValueError("a TokenValidator needs a JWKS or the URL to fetch it from")
        self.tenant_id = tenant_id
        self.issuer = V1_ISSUER.format(tenant=tenant_id)
        self.audiences = list(audiences)
        self._jwks_url = jwks_url
        self._ca_bundle = ca_bundle
        self._leeway = leeway
        self._keys: dict[str, object] = {}
        self._lock = threading.Lock()
        if jwks is not None:
            self._load(jwks)

    def _load(self, jwks: dict) -> None:
        keys = {}
        for item in jwks.get("keys", []):
            keys[item["kid"]] = jwt.PyJWK(item).key
        self._keys = keys

    def _key(self, kid: str):
        with self._lock:
            if kid not in self._keys and self._jwks_url:
                try:
                    resp = requests.get(self._jwks_url, verify=self._ca_bundle, timeout=5)
                    resp.raise_for_status()
                    self._load(resp.json())
                except (requests.RequestException, ValueError) as exc:
                    raise TokenError(f"the signing keys could not be fetched: {exc}") from exc
            key = self._keys.get(kid)
        if key is None:
            raise TokenError(f"the token is signed with an unknown key ({kid})")
        return key

    def validate(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError(f"the token is malformed: {exc}") from exc
        if header.get("alg") != "RS256":
            raise TokenError(f"the token's algorithm {header.get('alg')!r} is not RS256")
        key = self._key(header.get("kid", ""))
        try:
            return jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.audiences,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "nbf"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("the token is expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError(
                f"the token's audience is not valid here (expected {self.audiences[0]})"
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenError(
                f"the token's issuer is not valid here (expected {self.issuer})"
            ) from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenError("the token's signature is invalid") from exc
        except jwt.PyJWTError as exc:
            raise TokenError(f"the token is not valid: {exc}") from exc

    def validate_header(self, authorization: str | None) -> dict:
        """Validate an `Authorization` header value."""
        if not authorization:
            raise TokenError("the 'Authorization' header is missing", error="invalid_request")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenError("the 'Authorization' header is not a bearer token")
        return self.validate(token.strip())
