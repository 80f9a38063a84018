"""HTTP routes of the fake Entra ID: thin views over `Directory`."""

from __future__ import annotations

from flask import jsonify, request

from lab.kit.control import LabControl
from lab.kit.web import create_app as create_lab_app

from .errors import EntraError
from .models import Directory


def _entra_fault(error):
    body = {"error": error.code, "error_description": error.message}
    return jsonify(body), error.status


def create_app(directory: Directory, base_url_of=lambda: request.host_url.rstrip("/")):
    control = LabControl(name="entra", reset=directory.reset, state=directory.state)
    app = create_lab_app(__name__, control, fault_response=_entra_fault)

    @app.errorhandler(EntraError)
    def _entra_error(exc: EntraError):
        return jsonify(exc.body()), exc.status

    def _tenant_or_404(tenant):
        if not directory.knows_tenant(tenant):
            from .errors import TenantNotFound

            raise TenantNotFound(tenant)

    @app.get("/<tenant>/v2.0/.well-known/openid-configuration")
    def openid_configuration(tenant):
        _tenant_or_404(tenant)
        base, tid = base_url_of(), directory.tenant_id
        return jsonify(
            {
                "issuer": f"{base}/{tid}/v2.0",
                "authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/{tid}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/{tid}/oauth2/v2.0/logout",
                "jwks_uri": f"{base}/{tid}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid"],
                "request_uri_parameter_supported": False,
                "tenant_region_scope": "EU",
                "cloud_instance_name": "drlab.local",
            }
        )

    @app.get("/<tenant>/.well-known/openid-configuration")
    def openid_configuration_v1(tenant):
        _tenant_or_404(tenant)
        base, tid = base_url_of(), directory.tenant_id
        return jsonify(
            {
                "issuer": f"https://sts.windows.net/{tid}/",
                "authorization_endpoint": f"{base}/{tid}/oauth2/authorize",
                "token_endpoint": f"{base}/{tid}/oauth2/token",
                "jwks_uri": f"{base}/{tid}/discovery/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "cloud_instance_name": "drlab.local",
            }
        )

    @app.get("/<tenant>/discovery/v2.0/keys")
    @app.get("/<tenant>/discovery/keys")
    def keys(tenant):
        if tenant != "common":
            _tenant_or_404(tenant)
        return jsonify({"keys": [directory.signing_key.jwk]})

    @app.post("/<tenant>/oauth2/v2.0/token")
    def token(tenant):
        return jsonify(directory.client_credentials(tenant, request.form.to_dict()))

    @app.post("/<tenant>/oauth2/token")
    def token_v1(tenant):
        return jsonify(directory.client_credentials(tenant, request.form.to_dict(), v1=True))

    return app
