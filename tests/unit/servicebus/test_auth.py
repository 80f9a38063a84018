"""SAS signature verification, scopes and rights; bearer tokens for the Service Bus audience."""

import time
from urllib.parse import quote_plus

import pytest

from fakes.azure.servicebus import errors
from fakes.azure.servicebus.auth import AUDIENCE, Authorizer, signature
from lab.kit.monitoring import sas_token
from lab.kit.pki import LabPKI
from lab.kit.tokens import TokenValidator, app_token_claims, issue_token

TENANT = "8d70d0cf-0e8f-44bd-9657-a19e2c6f59d8"
NS = "drlab-unit-bus"
HOST = f"{NS}.servicebus.windows.net"
LAB = "127.0.0.1:45678"
RULES = [
    {"name": "root", "key": "cm9vdC1rZXktZm9yLXRlc3Rz", "rights": ["Manage", "Send", "Listen"]},
    {"name": "sender", "key": "c2VuZGVyLWtleQ==", "rights": ["Send"]},
    {"name": "listener", "key": "bGlzdGVuZXIta2V5", "rights": ["Listen"]},
]
KEYS = {r["name"]: r["key"] for r in RULES}


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory):
    pki = LabPKI(tmp_path_factory.mktemp("pki"))
    pki.ensure_ca()
    return pki.signing_key()


@pytest.fixture
def auth(signing_key):
    validator = TokenValidator(
        tenant_id=TENANT, audiences=[AUDIENCE], jwks={"keys": [signing_key.jwk]}
    )
    return Authorizer(NS, RULES, bearer=validator)


def token(resource=f"https://{LAB}/work", rule="root", lifetime=3600, key=None):
    return sas_token(resource, rule, key or KEYS[rule], lifetime=lifetime)


def test_the_signature_is_hmac_sha256_of_the_encoded_resource_and_expiry():
    # A known answer, computed independently with the documented recipe.
    import base64
    import hashlib
    import hmac

    sr, se, key = quote_plus("https://ns.servicebus.windows.net/q"), "1700000000", "k"
    expected = base64.b64encode(
        hmac.new(b"k", f"{sr}\n{se}".encode(), hashlib.sha256).digest()
    ).decode()
    assert signature(sr, se, key) == expected


@pytest.mark.parametrize(
    "resource",
    [
        f"https://{LAB}/work",
        f"https://{LAB}/",
        f"https://{HOST}/work",
        f"sb://{HOST}/",
        HOST,
        f"https://{HOST}/WORK",
    ],
)
def test_a_good_token_in_scope_is_accepted(auth, resource):
    caller = auth.authorize(token(resource), LAB, "work", "Send")
    assert caller.kind == "sas" and caller.name == "root"


def test_a_topic_token_reaches_its_subscriptions(auth):
    t = token(f"https://{LAB}/events")
    auth.authorize(t, LAB, "events/subscriptions/a", "Listen")


@pytest.mark.parametrize(
    "resource, path",
    [
        (f"https://{LAB}/work", "other"),
        (f"https://{LAB}/wor", "work"),  # a prefix of a name is not a scope
        (f"https://{LAB}/work-2", "work"),
        ("https://another-ns.servicebus.windows.net/work", "work"),
        ("https://127.0.0.1:1/work", "work"),
    ],
)
def test_a_token_out_of_scope_is_refused(auth, resource, path):
    with pytest.raises(errors.InvalidAudience):
        auth.authorize(token(resource), LAB, path, "Send")


def test_a_bad_signature_is_refused(auth):
    with pytest.raises(errors.InvalidSignature):
        auth.authorize(token(key="d3Jvbmc="), LAB, "work", "Send")


def test_an_unknown_rule_looks_like_a_bad_signature(auth):
    forged = token(rule="root").replace("skn=root", "skn=nobody")
    with pytest.raises(errors.InvalidSignature):
        auth.authorize(forged, LAB, "work", "Send")


def test_a_tampered_expiry_is_refused(auth):
    good = token()
    se = good.split("se=")[1].split("&")[0]
    with pytest.raises(errors.InvalidSignature):
        auth.authorize(good.replace(f"se={se}", f"se={int(se) + 1000}"), LAB, "work", "Send")


def test_an_expired_token_is_refused(auth):
    with pytest.raises(errors.ExpiredToken, match="Expiration time"):
        auth.authorize(token(lifetime=-10), LAB, "work", "Send")


def test_rights_are_the_rules(auth):
    auth.authorize(token(rule="sender"), LAB, "work", "Send")
    with pytest.raises(errors.MissingClaim, match="'Listen' claim"):
        auth.authorize(token(rule="sender"), LAB, "work", "Listen")
    with pytest.raises(errors.MissingClaim, match="'Send' claim.*sb://drlab-unit-bus.*/work"):
        auth.authorize(token(rule="listener"), LAB, "work", "Send")
    auth.authorize(token(rule="root"), LAB, "work", "Listen")  # Manage implies Listen


@pytest.mark.parametrize(
    "header, error",
    [
        (None, errors.MissingToken),
        ("", errors.MissingToken),
        ("Basic dXNlcjpwYXNz", errors.MalformedToken),
        ("SharedAccessSignature sr=x&sig=y", errors.MalformedToken),
        ("SharedAccessSignature sr=x&sig=y&se=soon&skn=root", errors.MalformedToken),
        ("SharedAccessSignature garbage", errors.MalformedToken),
    ],
)
def test_missing_or_malformed_headers(auth, header, error):
    with pytest.raises(error):
        auth.authorize(header, LAB, "work", "Send")


def bearer(signing_key, **overrides):
    claims = app_token_claims(
        tenant_id=TENANT, audience=AUDIENCE, client_id="app-1", object_id="o", lifetime=600
    )
    claims.update(overrides)
    return f"Bearer {issue_token(signing_key, claims)}"


def test_a_bearer_token_for_service_bus_has_every_right(auth, signing_key):
    caller = auth.authorize(bearer(signing_key), LAB, "work", "Manage")
    assert caller.kind == "bearer" and caller.name == "app-1"


def test_a_bearer_token_for_another_audience_is_refused(auth, signing_key):
    with pytest.raises(errors.InvalidAudience):
        auth.authorize(bearer(signing_key, aud="https://storage.azure.com"), LAB, "work", "Send")


def test_an_expired_bearer_token_is_refused(auth, signing_key):
    past = int(time.time()) - 3600
    with pytest.raises(errors.ExpiredToken):
        auth.authorize(
            bearer(signing_key, exp=past, iat=past - 60, nbf=past - 60), LAB, "w", "Send"
        )


def test_a_garbage_bearer_token_is_refused(auth):
    with pytest.raises(errors.Unauthorized):
        auth.authorize("Bearer not.a.jwt", LAB, "work", "Send")


def test_errors_render_as_the_services_xml():
    xml = errors.MissingToken().xml("ns.servicebus.windows.net:work")
    assert xml.startswith("<Error><Code>401</Code><Detail>MissingToken: ")
    assert "SystemTracker:ns.servicebus.windows.net:work" in xml
    assert xml.endswith("</Detail></Error>")
