"""Where managed disks live: page blobs in the lab's disks storage account (`azurite-disks`).

A managed disk is one page blob in the container `managed-disks`, named after the disk's
unique id. Made from a recovery point, it is a server-side copy of a seed disk's snapshot
(`start_copy_from_url` within one Azurite instance completes at once and costs no data: the
extents are shared, emulator-anchors §3); made empty, it is a page blob of the size asked.

Sources are named relative to the disks account (`asr-seed-disks/<blob>?snapshot=<ts>`, what
the Site Recovery worker records in a recovery point) or as absolute URLs of that account.
The copy's source is the plain URL, without a SAS: within one account the destination's
Shared Key authorises the source (Azurite 3.37 answers 500 to a source URL carrying a SAS).
A guest gets a SAS URL with read and write on its own page blobs only.

The ARM process talks to the account with its Shared Key (managed disks are the platform's
storage, not a principal's). Not emulated: incremental snapshots, disk encryption,
access tiers, bursting, throughput limits.
"""

from __future__ import annotations

import logging
import socket
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, BlobType, generate_blob_sas

from .errors import DiskStorageUnavailable, InvalidParameter

log = logging.getLogger(__name__)

CONTAINER = "managed-disks"
GUEST_SAS_DAYS = 365  # a guest keeps its disks' URLs for as long as it runs
COPY_TIMEOUT = 60.0
LISTEN_WAIT = 20.0  # at lab start the disks account may still be starting


@dataclass(frozen=True)
class SourceBlob:
    container: str
    blob: str
    snapshot: str | None
    size: int

    @property
    def ref(self) -> str:
        """The relative form: container/blob[?snapshot=ts]."""
        base = f"{self.container}/{self.blob}"
        return f"{base}?snapshot={self.snapshot}" if self.snapshot else base


class DiskStorage:
    def __init__(self, account_url: str, account_name: str, account_key: str, ca_cert: str):
        self.account_url = account_url.rstrip("/")  # https://127.0.0.1:port/drlabdisks
        self.account_name = account_name
        self.account_key = account_key
        self.ca_cert = ca_cert
        self._service: BlobServiceClient | None = None

    @classmethod
    def for_lab(cls, ctx) -> DiskStorage | None:
        """The disks account of the lab (None when the topology has none)."""
        accounts = ctx.topology["storage"]["accounts"]
        disks = next((a for a in accounts if a["role"] == "disks"), None)
        if disks is None or "azurite-disks" not in ctx.lab.get("services", {}):
            return None
        url = f"{ctx.url('azurite-disks')}/{disks['name']}"
        return cls(url, disks["name"], disks["key"], ctx.ca_cert)

    # -- connection ---------------------------------------------------------------------------
    def _listening(self) -> bool:
        parsed = urllib.parse.urlsplit(self.account_url)
        try:
            socket.create_connection((parsed.hostname, parsed.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def wait_listening(self, timeout: float = LISTEN_WAIT) -> bool:
        deadline = time.monotonic() + timeout
        while not self._listening():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    @property
    def service(self) -> BlobServiceClient:
        if self._service is None:
            if not self.wait_listening():
                raise DiskStorageUnavailable(
                    f"The disks storage account ({self.account_url}) does not answer."
                )
            session = requests.Session()
            session.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=16))
            transport = RequestsTransport(
                session=session, session_owner=True, connection_verify=self.ca_cert
            )
            service = BlobServiceClient(
                self.account_url,
                credential={"account_name": self.account_name, "account_key": self.account_key},
                transport=transport,
            )
            try:
                service.create_container(CONTAINER)
            except ResourceExistsError:
                pass
            self._service = service
        return self._service

    def _blob(self, container: str, blob: str, snapshot: str | None = None):
        return self.service.get_blob_client(container, blob, snapshot=snapshot)

    # -- sources ------------------------------------------------------------------------------
    def resolve_source(self, ref: str) -> SourceBlob:
        """A seed disk snapshot (or any page blob) of the disks account, by reference."""
        text = (ref or "").strip()
        if text.lower().startswith("https://"):
            if not text.lower().startswith(self.account_url.lower() + "/"):
                raise InvalidParameter(
                    f"The source '{text}' is not a blob of the lab's disks account "
                    f"({self.account_url}): managed disks are copied within that account.",
                    target="sourceUri",
                )
            text = text[len(self.account_url) + 1 :]
        path, _, query = text.partition("?")
        container, _, blob = path.partition("/")
        snapshot = urllib.parse.parse_qs(query).get("snapshot", [None])[0]
        if not container or not blob:
            raise InvalidParameter(
                f"'{ref}' does not name a blob (container/blob[?snapshot=...]).",
                target="sourceUri",
            )
        blob = urllib.parse.unquote(blob)
        try:
            props = self._blob(container, blob, snapshot).get_blob_properties()
        except ResourceNotFoundError:
            raise InvalidParameter(
                f"The source blob '{ref}' does not exist in the disks account.",
                target="sourceUri",
            ) from None
        if props.blob_type != BlobType.PAGEBLOB:
            raise InvalidParameter(f"The source '{ref}' is not a page blob.", target="sourceUri")
        return SourceBlob(container, blob, snapshot, int(props.size))

    # -- managed disk blobs -------------------------------------------------------------------
    def copy(self, source: SourceBlob, blob: str) -> int:
        """Server-side copy of `source` into the managed disk blob; returns its size.

        Azurite (3.37, in memory) gives a copy the very page-range list of its source, so a
        write to the copy would also change the source — a recovery point's snapshot, when a
        failed-over VM boots. A snapshot's list is its own copy, so the disk is copied from a
        snapshot of a transient blob that is deleted at once: the disk's list is then shared
        with nothing left. Metadata only; no data moves."""
        src = self._blob(source.container, source.blob).url
        if source.snapshot:
            src = f"{src}?snapshot={urllib.parse.quote(source.snapshot)}"
        transient = self._blob(CONTAINER, f"{blob}.copying")
        try:
            self._copy_into(transient, src, source.ref)
            snap = transient.create_snapshot()["snapshot"]
            dest = self._blob(CONTAINER, blob)
            self._copy_into(
                dest, f"{transient.url}?snapshot={urllib.parse.quote(snap)}", source.ref
            )
        finally:
            try:
                transient.delete_blob(delete_snapshots="include")
            except ResourceNotFoundError:
                pass
        return int(dest.get_blob_properties().size)

    @staticmethod
    def _copy_into(dest, url: str, what: str) -> None:
        result = dest.start_copy_from_url(url)
        status = result.get("copy_status")
        deadline = time.monotonic() + COPY_TIMEOUT
        while status == "pending" and time.monotonic() < deadline:
            time.sleep(0.05)
            status = dest.get_blob_properties().copy.status
        if status != "success":
            raise DiskStorageUnavailable(f"The copy of {what} ended '{status}'.")

    def snapshot(self, blob: str) -> str:
        """A snapshot of a managed disk blob now: its reference (container/blob?snapshot=ts)."""
        snap = self._blob(CONTAINER, blob).create_snapshot()["snapshot"]
        return SourceBlob(CONTAINER, blob, snap, 0).ref

    def create_empty(self, blob: str, size: int) -> None:
        self._blob(CONTAINER, blob).create_page_blob(size)

    def resize(self, blob: str, size: int) -> None:
        self._blob(CONTAINER, blob).resize_blob(size)

    def size(self, blob: str) -> int | None:
        try:
            return int(self._blob(CONTAINER, blob).get_blob_properties().size)
        except ResourceNotFoundError:
            return None

    def delete(self, blob: str) -> bool:
        try:
            self._blob(CONTAINER, blob).delete_blob(delete_snapshots="include")
            return True
        except ResourceNotFoundError:
            return False
        except HttpResponseError as exc:
            log.warning("deleting managed disk blob %s: %s", blob, exc.message)
            return False

    def url(self, blob: str) -> str:
        return f"{self.account_url}/{CONTAINER}/{blob}"

    def guest_url(self, blob: str) -> str:
        """A SAS URL with read and write on one managed disk blob, for the guest using it."""
        sas = generate_blob_sas(
            self.account_name,
            CONTAINER,
            blob,
            account_key=self.account_key,
            permission=BlobSasPermissions(read=True, write=True),
            expiry=datetime.now(UTC) + timedelta(days=GUEST_SAS_DAYS),
        )
        return f"{self.url(blob)}?{sas}"
