"""An Azure page blob as a guest disk: what a managed disk is to a VM running in Azure.

After failover the guest boots from page blobs (managed disks copied from a recovery point)
with the same runtime; this device is the only difference. Pages are 512 bytes, as on Azure;
a write goes up as Put Page (at most 4 MiB per call), a write of zeros as Put Page with
`x-ms-page-write: clear`, so the blob stays sparse and its page ranges list only what was
written. A page write is durable when it returns, so flush has nothing to do.

`DiskRef(kind="page_blob", url=...)` carries a blob URL with a SAS token and `ca_cert` (the
lab CA); code in the same process may pass any `BlobClient` (an OAuth one, for instance).
Not emulated: leases, sequence numbers, incremental snapshots, throttling.
"""

from __future__ import annotations

from .blockdev import BlockDevice, BlockDeviceError, check_range, is_zero

MAX_PAGE_WRITE = 4 * 2**20  # the Put Page limit


class PageBlobDevice(BlockDevice):
    def __init__(self, blob_client, readonly: bool = False):
        self.blob = blob_client
        self.readonly = readonly
        self.size = int(blob_client.get_blob_properties().size)
        if self.size % 512:
            raise BlockDeviceError(f"page blob size {self.size} is not a multiple of 512")

    @classmethod
    def from_disk(cls, disk, readonly: bool = False, credential=None) -> PageBlobDevice:
        from azure.storage.blob import BlobClient

        if not disk.url:
            raise BlockDeviceError(f"disk {disk.label!r}: a page-blob disk needs a url")
        client = BlobClient.from_blob_url(
            disk.url, credential=credential, connection_verify=disk.ca_cert or True
        )
        return cls(client, readonly=readonly)

    def read(self, offset: int, length: int) -> bytes:
        check_range(offset, length, self.size)
        if length == 0:
            return b""
        return self.blob.download_blob(offset=offset, length=length).readall()

    def write(self, offset: int, data: bytes) -> None:
        if self.readonly:
            raise BlockDeviceError("the page blob is open read-only")
        check_range(offset, len(data), self.size)
        view = memoryview(bytes(data))
        for start in range(0, len(view), MAX_PAGE_WRITE):
            chunk = view[start : start + MAX_PAGE_WRITE]
            if is_zero(chunk):
                self.blob.clear_page(offset + start, len(chunk))
            else:
                self.blob.upload_page(bytes(chunk), offset + start, len(chunk))

    def flush(self) -> None:
        pass  # a Put Page is durable once acknowledged

    def resize(self, new_size: int) -> None:
        self._check_resize(new_size)
        current = int(self.blob.get_blob_properties().size)
        if current < new_size and not self.readonly:
            self.blob.resize_blob(new_size)
        self.size = new_size

    def close(self) -> None:
        self.blob.close()

    def allocated_extents(self) -> list[tuple[int, int]]:
        """(offset, length) of every written page range."""
        return [
            (r.start, r.end - r.start + 1) for r in self.blob.list_page_ranges() if not r.cleared
        ]
