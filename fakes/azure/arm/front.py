"""The ARM front: one Flask app that routes every request to a mounted resource provider.

The handler chain, in order (each step in one place, never repeated in a provider):

1. request id, access log, `/_lab/*` control API     (`lab.kit.web.create_app`)
2. bearer token: signature, issuer, audience, expiry  -> 401 + WWW-Authenticate
3. route: (method, path) -> operationId from the providers' route tables
                                                       -> 404 InvalidResourceType / 405
4. api-version: the provider's supported versions     -> 400 InvalidApiVersionParameter
5. fault rules, by operationId                        -> ARM error JSON
6. scope: subscription, resource group, vault exist   -> 404
7. handler registered for the operationId             -> 501 NotImplemented, named
8. the handler; any `ArmError` it raises becomes ARM error JSON here, anything else a 500.

Providers (Site Recovery now; Compute and Network later) are `ProviderMount`s: a route table,
the api-versions they accept, handlers by operationId and a scope check. The front knows
nothing about any of them.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Response, g, request

from lab.kit.control import LabControl
from lab.kit.faults import FaultError
from lab.kit.tokens import TokenError, TokenValidator
from lab.kit.web import create_app as create_lab_app

from . import errors
from .routes import Match, RouteTable

log = logging.getLogger(__name__)

ARM_AUDIENCE = "https://management.azure.com/"
ALL_METHODS = ["GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@dataclass
class ArmRequest:
    """What a handler sees of a request: no Flask objects."""

    method: str
    path: str  # raw (still percent-encoded) path
    operation_id: str
    params: dict[str, str]
    query: dict[str, str]
    body: bytes
    base_url: str  # https://127.0.0.1:port, for absolute URLs (LRO headers, nextLink)
    api_version: str
    claims: dict = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def json(self, *, required: bool = True) -> Any:
        if not self.body or not self.body.strip():
            if required:
                raise errors.InvalidRequestContent(
                    "The request content was invalid and could not be deserialized: "
                    "the body is empty."
                )
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise errors.InvalidRequestContent(
                f"The request content was invalid and could not be deserialized: {exc}."
            ) from None

    def url(self, path: str, **query: str) -> str:
        """An absolute URL on this front, with the request's api-version."""
        q = {"api-version": self.api_version, **query}
        return f"{self.base_url}{path}?{urllib.parse.urlencode(q, safe='$')}"

    @property
    def principal_app_id(self) -> str | None:
        return self.claims.get("appid") or self.claims.get("azp")


@dataclass
class ArmResponse:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[ArmRequest], ArmResponse]


@dataclass
class ProviderMount:
    """A resource provider served by the front."""

    name: str
    routes: RouteTable
    api_versions: tuple[str, ...]
    handlers: dict[str, Handler]
    # Raises ArmError (404 subscription / resource group / vault) when the scope is unknown.
    check_scope: Callable[[ArmRequest], None] = lambda req: None

    def missing_handlers(self) -> list[str]:
        """Operations of the surface that answer 501: visible, never silent."""
        return sorted(self.routes.operation_ids() - set(self.handlers))


def arm_error_response(exc: errors.ArmError, request_id: str | None = None) -> Response:
    resp = Response(json.dumps(exc.body()), status=exc.status, mimetype="application/json")
    for k, v in exc.headers.items():
        resp.headers[k] = v
    return resp


def _arm_fault(error: FaultError) -> Response:
    return arm_error_response(errors.ArmError(error.message, code=error.code, status=error.status))


class ArmFront:
    def __init__(self, validator: TokenValidator, authorization_uri: str):
        self.validator = validator
        self.authorization_uri = authorization_uri
        self.providers: list[ProviderMount] = []

    def mount(self, provider: ProviderMount) -> None:
        for op in set(provider.handlers) - provider.routes.operation_ids():
            raise ValueError(f"{provider.name}: handler for unknown operationId {op}")
        self.providers.append(provider)
        missing = provider.missing_handlers()
        log.info(
            "%s mounted: %d operations, %d emulated, %d answer 501",
            provider.name,
            len(provider.routes),
            len(provider.routes) - len(missing),
            len(missing),
        )

    # -- the chain ----------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> dict:
        try:
            return self.validator.validate_header(authorization)
        except TokenError as exc:
            raise self._auth_error(exc, authorization) from None

    def _auth_error(self, exc: TokenError, authorization: str | None) -> errors.ArmError:
        if not authorization:
            cls, message = (
                errors.AuthenticationFailed,
                "Authentication failed. The 'Authorization' header is missing.",
            )
            description = "The authentication failed because of missing 'Authorization' header."
        else:
            text = exc.description
            if "expired" in text:
                cls = errors.ExpiredAuthenticationToken
            elif "audience" in text:
                cls = errors.InvalidAuthenticationTokenAudience
            else:
                cls = errors.InvalidAuthenticationToken
            message = f"The access token is not valid: {text}."
            description = text
        challenge = (
            f'Bearer authorization_uri="{self.authorization_uri}", error="invalid_token", '
            f'error_description="{description}"'
        )
        return cls(message, headers={"WWW-Authenticate": challenge})

    def route(self, method: str, path: str) -> tuple[ProviderMount, Match]:
        for provider in self.providers:
            m = provider.routes.match(method, path)
            if m is not None:
                return provider, m
        allowed = sorted({x for p in self.providers for x in p.routes.methods_at(path)})
        if allowed:
            raise errors.HttpMethodNotAllowed(
                f"The requested resource does not support http method '{method}'.",
                headers={"Allow": ", ".join(allowed)},
            )
        raise errors.InvalidResourceType(
            f"The resource type could not be found for the path '{urllib.parse.unquote(path)}'."
        )

    @staticmethod
    def check_api_version(provider: ProviderMount, given: str | None, route=None) -> str:
        if not given:
            raise errors.MissingApiVersionParameter()
        # A route may carry its own versions (SDK-derived tables: one per resource type).
        supported = (route.api_versions if route is not None else ()) or provider.api_versions
        if given not in supported:
            raise errors.InvalidApiVersionParameter(given, supported)
        return given

    def handle(self, control: LabControl) -> Response:
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
        path = (raw or urllib.parse.quote(request.path)).split("?", 1)[0]
        try:
            claims = self.authenticate(request.headers.get("Authorization"))
            provider, match = self.route(request.method, path)
            operation_id = match.route.operation_id
            g.operation = operation_id
            api_version = self.check_api_version(
                provider, request.args.get("api-version"), match.route
            )
            fault = control.faults.apply(operation_id)
            if fault is not None:
                log.info("fault rule answers %s with %s", operation_id, fault.code)
                return _arm_fault(fault)
            req = ArmRequest(
                method=request.method,
                path=path,
                operation_id=operation_id,
                params=match.params,
                query=request.args.to_dict(),
                body=request.get_data(),
                base_url=request.host_url.rstrip("/"),
                api_version=api_version,
                claims=claims,
                headers={k.lower(): v for k, v in request.headers.items()},
            )
            provider.check_scope(req)
            handler = provider.handlers.get(operation_id)
            if handler is None:
                raise errors.OperationNotImplemented(
                    operation_id, request.method, match.route.template
                )
            result = handler(req)
        except errors.ArmError as exc:
            if exc.status >= 500 and exc.status != 501:
                log.warning("%s %s -> %s %s", request.method, path, exc.status, exc.code)
            return arm_error_response(exc)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, path)
            return arm_error_response(
                errors.InternalServerError("An internal error occurred in the lab's ARM front.")
            )
        return self.render(result)

    @staticmethod
    def render(result: ArmResponse) -> Response:
        if result.body is None:
            resp = Response(b"", status=result.status)
            del resp.headers["Content-Type"]  # no body, no type (ARM's 202 and 204)
        else:
            resp = Response(
                json.dumps(result.body), status=result.status, mimetype="application/json"
            )
        for k, v in result.headers.items():
            resp.headers[k] = v
        return resp

    # -- the app ------------------------------------------------------------------------------
    def create_app(self, control: LabControl):
        # Faults are applied after authentication and routing, by operationId (step 5).
        app = create_lab_app(
            __name__, control, fault_response=_arm_fault, operation_of=lambda: None
        )

        @app.after_request
        def _arm_headers(response):
            response.headers.setdefault(
                "x-ms-correlation-request-id", g.get("request_id") or str(uuid.uuid4())
            )
            return response

        def dispatch(path=""):
            return self.handle(control)

        app.add_url_rule("/", "arm", dispatch, methods=ALL_METHODS)
        app.add_url_rule("/<path:path>", "arm_path", dispatch, methods=ALL_METHODS)
        return app
