import ssl

import jwt
import pytest
from cryptography import x509

from lab.kit.pki import LabPKI


@pytest.fixture
def pki(tmp_path):
    p = LabPKI(tmp_path / "pki")
    p.ensure_ca()
    return p


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, hostname: str):
    """A TLS handshake in memory: no sockets."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, server):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    client.do_handshake()
    return client


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost"])
def test_service_certificate_verifies_against_the_lab_ca(pki, hostname):
    paths = pki.service_cert("entra")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(paths.cert, paths.key)
    client_ctx = ssl.create_default_context(cafile=str(pki.ca_cert_path))
    client = _handshake(server_ctx, client_ctx, hostname)
    assert client.getpeercert()["subject"][0][0][1] == "entra"


def test_other_labs_ca_is_not_trusted(pki, tmp_path):
    other = LabPKI(tmp_path / "other")
    other.ensure_ca()
    paths = pki.service_cert("entra")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(paths.cert, paths.key)
    client_ctx = ssl.create_default_context(cafile=str(other.ca_cert_path))
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server_ctx, client_ctx, "127.0.0.1")


def test_certificates_are_kept_between_runs(pki):
    first = pki.service_cert("azurite").cert.read_bytes()
    again = LabPKI(pki.dir)
    again.ensure_ca()
    assert again.service_cert("azurite").cert.read_bytes() == first


def test_bundle_holds_lab_ca_and_public_roots(pki):
    bundle = pki.bundle_path.read_bytes()
    assert bundle.startswith(pki.ca_cert_path.read_bytes())
    assert bundle.count(b"BEGIN CERTIFICATE") > 10
    ca = x509.load_pem_x509_certificate(pki.ca_cert_path.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_keys_are_private(pki):
    pki.service_cert("entra")
    for key in pki.dir.glob("*.key"):
        assert key.stat().st_mode & 0o077 == 0


def test_signing_key_jwk_verifies_its_signatures(pki):
    key = pki.signing_key()
    token = jwt.encode({"a": 1}, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    public = jwt.PyJWK(key.jwk).key
    assert jwt.decode(token, public, algorithms=["RS256"]) == {"a": 1}
    assert pki.signing_key().kid == key.kid
