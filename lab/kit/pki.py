"""The lab's PKI: a lab CA, a TLS certificate per service, and the Entra token-signing key.

Everything is made at the first `drlab up` and kept in `<state>/pki/`, so a restarted lab keeps
trusting the same CA. TLS keys are EC P-256 (instant to make); the token-signing key is RSA
because Entra signs RS256. The bundle a user exports (`ca-bundle.pem`) is the lab CA followed by
the public roots, so pointing `REQUESTS_CA_BUNDLE` at it does not break other HTTPS.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "drlab CA"
_CERT_DAYS = 825
_RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class CertPaths:
    cert: Path
    key: Path


class LabPKI:
    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)

    @property
    def ca_cert_path(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def ca_key_path(self) -> Path:
        return self.dir / "ca.key"

    @property
    def bundle_path(self) -> Path:
        return self.dir / "ca-bundle.pem"

    # -- the CA -------------------------------------------------------------------------------
    def ensure_ca(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not (self.ca_cert_path.exists() and self.ca_key_path.exists()):
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "drlab"),
                    # A per-lab serial in the name keeps two labs' CAs apart in a trust store.
                    x509.NameAttribute(NameOID.SERIAL_NUMBER, os.urandom(8).hex()),
                ]
            )
            now = _now()
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(
                    x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
                )
                .sign(key, hashes.SHA256())
            )
            _write_key(self.ca_key_path, key)
            self.ca_cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            self.bundle_path.unlink(missing_ok=True)
        if not self.bundle_path.exists():
            roots = Path(certifi.where()).read_bytes()
            self.bundle_path.write_bytes(self.ca_cert_path.read_bytes() + b"\n" + roots)

    def _ca(self):
        cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), None)
        return cert, key

    # -- service certificates -----------------------------------------------------------------
    def service_cert(self, service: str) -> CertPaths:
        """The TLS certificate of one service (made or renewed as needed)."""
        paths = CertPaths(self.dir / f"{service}.pem", self.dir / f"{service}.key")
        if self._still_good(paths):
            return paths
        ca_cert, ca_key = self._ca()
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, service)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_CERT_DAYS))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_key(paths.key, key)
        paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return paths

    def _still_good(self, paths: CertPaths) -> bool:
        if not (paths.cert.exists() and paths.key.exists()):
            return False
        cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
        ca_cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        if cert.issuer != ca_cert.subject:
            return False
        return cert.not_valid_after_utc - _RENEW_BEFORE > _now()

    # -- token signing ------------------------------------------------------------------------
    def signing_key(self, name: str = "entra-signing") -> SigningKey:
        path = self.dir / f"{name}.key"
        if not path.exists():
            _write_key(path, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return SigningKey.load(path)


@dataclass(frozen=True)
class SigningKey:
    """An RSA key with the JWK form Entra publishes (kid and x5t are the key's thumbprint)."""

    private_key: rsa.RSAPrivateKey  # loaded once: parsing the PEM costs more than signing
    kid: str
    jwk: dict

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        pem = path.read_bytes()
        key = serialization.load_pem_private_key(pem, None)
        numbers = key.public_key().public_numbers()
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        kid = _b64url(hashlib.sha1(der).digest())
        jwk = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "x5t": kid,
            "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        }
        return cls(key, kid, jwk)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_key(path: Path, key) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
