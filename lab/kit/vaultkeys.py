"""Keys derived from a vault's registration key.

The configuration server holds the registration key (from the vault credentials file) and the
vault holds it too; both derive the key that encrypts replication data in the cache storage
account from it, so the key itself never travels.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def replication_data_key(registration_key: str) -> bytes:
    """The AES-256 key for replication logs in the cache storage account."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"drlab replication data v1"
    ).derive(registration_key.encode())
