import pytest

from fakes.azure.entra import errors
from fakes.azure.entra.models import Directory
from lab.kit.pki import LabPKI
from lab.kit.tokens import TokenValidator
from lab.topology import load_topology, to_json

TOPO = to_json(load_topology("default"))["entra"]
OPERATOR = TOPO["principals"][0]


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    pki = LabPKI(tmp_path_factory.mktemp("pki"))
    pki.ensure_ca()
    return Directory(TOPO, pki.signing_key())


def form(**overrides):
    base = {
        "grant_type": "client_credentials",
        "client_id": OPERATOR["client_id"],
        "client_secret": OPERATOR["secret"],
        "scope": "https://management.azure.com/.default",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_token_has_v1_claims_and_verifies(directory):
    body = directory.client_credentials(directory.tenant_id, form())
    validator = TokenValidator(
        tenant_id=directory.tenant_id,
        audiences=["https://management.azure.com/"],
        jwks={"keys": [directory.signing_key.jwk]},
    )
    claims = validator.validate(body["access_token"])
    assert claims["iss"] == f"https://sts.windows.net/{directory.tenant_id}/"
    assert claims["appid"] == OPERATOR["client_id"]
    assert claims["tid"] == directory.tenant_id
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600


def test_storage_audience_has_no_trailing_slash(directory):
    body = directory.client_credentials(
        directory.tenant_id, form(scope="https://storage.azure.com/.default")
    )
    validator = TokenValidator(
        tenant_id=directory.tenant_id,
        audiences=["https://storage.azure.com"],
        jwks={"keys": [directory.signing_key.jwk]},
    )
    assert validator.validate(body["access_token"])["aud"] == "https://storage.azure.com"


def test_tenant_domain_is_accepted(directory):
    assert directory.client_credentials("drlab.onmicrosoft.com", form())["access_token"]


def test_v1_endpoint_takes_resource(directory):
    f = form(scope=None, resource="https://management.azure.com/")
    body = directory.client_credentials(directory.tenant_id, f, v1=True)
    assert body["resource"] == "https://management.azure.com/"
    assert int(body["expires_on"]) > int(body["not_before"])


@pytest.mark.parametrize(
    "tenant,overrides,error,status,aadsts",
    [
        ("00000000-0000-0000-0000-000000000000", {}, errors.TenantNotFound, 400, 90002),
        (None, {"client_secret": "wrong-secret"}, errors.InvalidClientSecret, 401, 7000215),
        (None, {"client_secret": None}, errors.MissingClientSecret, 401, 7000218),
        (
            None,
            {"client_id": "11111111-1111-1111-1111-111111111111"},
            errors.ApplicationNotFound,
            400,
            700016,
        ),
        (None, {"scope": "https://nowhere.example/.default"}, errors.ResourceNotFound, 400, 500011),
        (
            None,
            {"scope": "https://management.azure.com/user_impersonation"},
            errors.InvalidScope,
            400,
            1002012,
        ),
        (None, {"scope": None}, errors.MissingParameter, 400, 900144),
        (None, {"grant_type": "password"}, errors.UnsupportedGrantType, 400, 70003),
    ],
)
def test_refusals_carry_entras_codes(directory, tenant, overrides, error, status, aadsts):
    with pytest.raises(error) as info:
        directory.client_credentials(tenant or directory.tenant_id, form(**overrides))
    body = info.value.body()
    assert info.value.status == status
    assert body["error_description"].startswith(f"AADSTS{aadsts}:")
    assert body["error_codes"] == [aadsts]
    assert directory.state()["requests_refused"]
