"""The Entra app through Flask's test client: discovery, keys, tokens, errors, control API."""

import pytest

from fakes.azure.entra.app import create_app
from fakes.azure.entra.models import Directory
from lab.kit.pki import LabPKI
from lab.topology import load_topology, to_json

TOPO = to_json(load_topology("default"))["entra"]
TENANT = TOPO["tenant_id"]
OPERATOR = TOPO["principals"][0]


@pytest.fixture
def client(tmp_path):
    pki = LabPKI(tmp_path)
    pki.ensure_ca()
    app = create_app(Directory(TOPO, pki.signing_key()), base_url_of=lambda: "https://entra.test")
    return app.test_client()


def token_form(**overrides):
    form = {
        "grant_type": "client_credentials",
        "client_id": OPERATOR["client_id"],
        "client_secret": OPERATOR["secret"],
        "scope": "https://management.azure.com/.default",
    }
    form.update(overrides)
    return form


def test_discovery_documents(client):
    v2 = client.get(f"/{TENANT}/v2.0/.well-known/openid-configuration").get_json()
    assert v2["token_endpoint"] == f"https://entra.test/{TENANT}/oauth2/v2.0/token"
    assert v2["jwks_uri"].endswith("/discovery/v2.0/keys")
    v1 = client.get(f"/{TENANT}/.well-known/openid-configuration").get_json()
    assert v1["issuer"] == f"https://sts.windows.net/{TENANT}/"


def test_unknown_tenant_discovery_is_an_entra_error(client):
    resp = client.get("/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration")
    assert resp.status_code == 400
    assert resp.get_json()["error_codes"] == [90002]


def test_jwks(client):
    keys = client.get(f"/{TENANT}/discovery/v2.0/keys").get_json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256"


def test_token_and_wrong_secret(client):
    ok = client.post(f"/{TENANT}/oauth2/v2.0/token", data=token_form())
    assert ok.status_code == 200 and ok.get_json()["access_token"].count(".") == 2
    bad = client.post(f"/{TENANT}/oauth2/v2.0/token", data=token_form(client_secret="nope-nope"))
    assert bad.status_code == 401
    assert bad.get_json()["error"] == "invalid_client"


def test_control_api(client):
    assert client.get("/_lab/health").get_json()["status"] == "ok"
    assert client.get("/_lab/ready").status_code == 200
    client.post(f"/{TENANT}/oauth2/v2.0/token", data=token_form())
    assert client.get("/_lab/state").get_json()["tokens_issued"] == {"operator": 1}
    assert client.post("/_lab/reset").status_code == 200
    assert client.get("/_lab/state").get_json()["tokens_issued"] == {}


def test_fault_rule_answers_the_named_operation_in_entras_shape(client):
    rule = {
        "operation": "token",
        "error": {
            "status": 503,
            "code": "temporarily_unavailable",
            "message": "AADSTS90033: lab fault",
        },
        "times": 1,
    }
    assert client.post("/_lab/faults", json=[rule]).status_code == 200
    resp = client.post(f"/{TENANT}/oauth2/v2.0/token", data=token_form())
    assert resp.status_code == 503
    assert resp.get_json() == {
        "error": "temporarily_unavailable",
        "error_description": "AADSTS90033: lab fault",
    }
    # `times: 1` used it up; other operations were never affected.
    assert client.post(f"/{TENANT}/oauth2/v2.0/token", data=token_form()).status_code == 200
    assert client.get("/_lab/faults").get_json() == {"rules": []}


def test_bad_fault_rule_is_refused(client):
    resp = client.post("/_lab/faults", json=[{"operation": "token"}])
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "InvalidFaultRule"
    assert client.get("/_lab/faults").get_json() == {"rules": []}
