"""The worker's two storage accounts through azure-storage-blob: the cache account (logs and
control records, written by process servers) and the disks account (seed page blobs and their
snapshots, the worker's own).

Both authenticate with OAuth as the topology's `site-recovery` principal (Azurite checks the
token's issuer, audience and times). One HTTP connection pool per account, sized for the
parallel page writes. Azurite's page-range diffs against a snapshot are not reliable
(emulator-anchors §3), so nothing here asks for one: ranges are only listed on a snapshot
itself.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import requests
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

from . import names
from .names import LogRef

log = logging.getLogger(__name__)

POOL_SIZE = 32


def service_client(account_url: str, credential, ca_cert: str) -> BlobServiceClient:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
    session.mount("https://", adapter)
    # The transport owns the connection settings: the lab CA goes to it, not the client.
    transport = RequestsTransport(session=session, session_owner=True, connection_verify=ca_cert)
    return BlobServiceClient(account_url, credential=credential, transport=transport)


def ensure_container(client) -> None:
    try:
        client.create_container()
    except ResourceExistsError:
        pass


class AzureCache:
    """The cache container (`asr-cache`): logs, plans and manifests."""

    def __init__(self, service: BlobServiceClient, container: str = names.CACHE_CONTAINER):
        self.service = service
        self.container = service.get_container_client(container)

    def ensure(self) -> None:
        ensure_container(self.container)

    def list_logs(self, prefix: str) -> list[LogRef]:
        refs = []
        for blob in self.container.list_blobs(name_starts_with=prefix):
            ref = names.parse_log(blob.name, blob.size or 0)
            if ref is not None:
                refs.append(ref)
        refs.sort(key=lambda r: (r.first, r.last, r.name))
        return refs

    def list(self, prefix: str) -> list[tuple[str, int]]:
        return [(b.name, b.size or 0) for b in self.container.list_blobs(name_starts_with=prefix)]

    def prefixes(self, prefix: str = "") -> list[str]:
        """The 'directories' under `prefix` (names ending with '/')."""
        return [
            item.name
            for item in self.container.walk_blobs(name_starts_with=prefix, delimiter="/")
            if item.name.endswith("/")
        ]

    def read(self, name: str) -> bytes:
        return self.container.download_blob(name).readall()

    def read_json(self, name: str) -> dict | None:
        try:
            return json.loads(self.read(name))
        except ResourceNotFoundError:
            return None

    def exists(self, name: str) -> bool:
        return self.container.get_blob_client(name).exists()

    def write(self, name: str, data: bytes) -> None:
        """A blob the worker publishes for the on-premises side (resync checksums)."""
        self.container.upload_blob(name, data, overwrite=True)

    def delete(self, name: str) -> None:
        try:
            self.container.delete_blob(name)
        except ResourceNotFoundError:
            pass

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        for name, _size in self.list(prefix):
            self.delete(name)
            count += 1
        return count


class AzureSeedDisks:
    """Seed disks as page blobs in the disks account; recovery points as their snapshots."""

    def __init__(
        self,
        service: BlobServiceClient,
        container: str = names.SEED_CONTAINER,
        account_name: str | None = None,
        account_key: str | None = None,
    ):
        self.service = service
        self.account_name = account_name or service.account_name
        self.container_name = container
        self.container = service.get_container_client(container)
        self.account_key = account_key

    def ensure(self) -> None:
        ensure_container(self.container)

    def _blob(self, blob: str, snapshot: str | None = None):
        return self.container.get_blob_client(blob, snapshot=snapshot)

    def create(self, blob: str, size: int) -> None:
        self._blob(blob).create_page_blob(size)

    def write(self, blob: str, offset: int, data) -> None:
        data = bytes(data)
        self._blob(blob).upload_page(data, offset, len(data))

    def clear(self, blob: str, offset: int, length: int) -> None:
        self._blob(blob).clear_page(offset, length)

    def resize(self, blob: str, size: int) -> None:
        self._blob(blob).resize_blob(size)

    def snapshot(self, blob: str) -> str:
        return self._blob(blob).create_snapshot()["snapshot"]

    def delete(self, blob: str) -> None:
        try:
            self._blob(blob).delete_blob(delete_snapshots="include")
        except ResourceNotFoundError:
            pass

    def delete_snapshot(self, blob: str, snapshot: str) -> None:
        try:
            self._blob(blob, snapshot).delete_blob()
        except ResourceNotFoundError:
            pass

    def exists(self, blob: str) -> bool:
        return self._blob(blob).exists()

    # -- reading (verify) -----------------------------------------------------------------------
    def size(self, blob: str, snapshot: str | None = None) -> int:
        return int(self._blob(blob, snapshot).get_blob_properties().size)

    def page_ranges(self, blob: str, snapshot: str | None = None) -> list[tuple[int, int]]:
        """(start, end exclusive) of every written page range."""
        return [
            (r.start, r.end + 1)
            for r in self._blob(blob, snapshot).list_page_ranges()
            if not r.cleared
        ]

    def read(self, blob: str, offset: int, length: int, snapshot: str | None = None) -> bytes:
        return self._blob(blob, snapshot).download_blob(offset=offset, length=length).readall()

    def read_sas_url(self, blob: str, snapshot: str | None = None, minutes: int = 60) -> str:
        """A read-only SAS URL for a seed blob or one of its snapshots."""
        if not self.account_key:
            raise RuntimeError("the disks account key is needed to make a SAS")
        sas = generate_blob_sas(
            self.account_name,
            self.container_name,
            blob,
            snapshot=snapshot,
            account_key=self.account_key,
            permission=BlobSasPermissions(read=True),
            expiry=datetime.now(UTC) + timedelta(minutes=minutes),
        )
        url = self._blob(blob).url
        query = f"snapshot={snapshot}&{sas}" if snapshot else sas
        return f"{url}?{query}"
