import time

import jwt
import pytest

from lab.kit.pki import LabPKI
from lab.kit.tokens import TokenError, TokenValidator, app_token_claims, issue_token

TENANT = "8d70d0cf-0e8f-44bd-9657-a19e2c6f59d8"
ARM = "https://management.azure.com/"


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    pki = LabPKI(tmp_path_factory.mktemp("pki"))
    pki.ensure_ca()
    return pki.signing_key()


@pytest.fixture
def validator(key):
    return TokenValidator(tenant_id=TENANT, audiences=[ARM], jwks={"keys": [key.jwk]})


def claims(**overrides):
    base = app_token_claims(
        tenant_id=TENANT, audience=ARM, client_id="c", object_id="o", lifetime=3600
    )
    base.update(overrides)
    return base


def test_valid_token_is_accepted(key, validator):
    token = issue_token(key, claims())
    assert validator.validate(token)["appid"] == "c"
    assert validator.validate_header(f"Bearer {token}")["tid"] == TENANT


def test_expired_token_is_refused(key, validator):
    now = int(time.time())
    token = issue_token(key, claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600))
    with pytest.raises(TokenError, match="expired"):
        validator.validate(token)


def test_tampered_token_is_refused(key, validator):
    token = issue_token(key, claims())
    head, body, sig = token.split(".")
    forged_body = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(body).replace(b'"appid":"c"', b'"appid":"x"')
    ).decode()
    with pytest.raises(TokenError, match="signature"):
        validator.validate(f"{head}.{forged_body}.{sig}")


def test_wrong_audience_is_refused(key, validator):
    token = issue_token(key, claims(aud="https://storage.azure.com"))
    with pytest.raises(TokenError, match="audience"):
        validator.validate(token)


def test_wrong_issuer_is_refused(key, validator):
    token = issue_token(key, claims(iss="https://sts.windows.net/another-tenant/"))
    with pytest.raises(TokenError, match="issuer"):
        validator.validate(token)


def test_token_from_another_key_is_refused(validator, tmp_path):
    other = LabPKI(tmp_path)
    other.ensure_ca()
    with pytest.raises(TokenError, match="unknown key"):
        validator.validate(issue_token(other.signing_key("other"), claims()))


def test_unsigned_token_is_refused(validator):
    token = jwt.encode(claims(), key=None, algorithm="none")
    with pytest.raises(TokenError, match="algorithm"):
        validator.validate(token)


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer not-a-jwt"])
def test_bad_authorization_headers(validator, header):
    with pytest.raises(TokenError):
        validator.validate_header(header)
