"""An Azure page blob as a guest disk: what a managed disk is to a VM running in Azure.

After failover the guest boots from page blobs (managed disks copied from a recovery point)
with the same runtime; this device is the only difference. Pages are 512 bytes, as on Azure;
a write goes up as Put Page (at most 4 MiB per call), a write of zeros as Put Page with
`x-ms-page-write: clear`, so the blob stays sparse and its page ranges list only what was
written. A page write is durable when it returns, so flush has nothing to do.

Reads go through a small cache of 1 MiB chunks (read-ahead and LRU): a journal or ledger check
reads record by record, and one HTTP request per 512-byte record would make a boot or a
verify take minutes. The device is the blob's only writer (a VM's own disk, or a snapshot
read-only), so writes update the cached chunks they touch and the cache stays exact.

`DiskRef(kind="page_blob", url=...)` carries a blob URL with a SAS token and `ca_cert` (the
lab CA); code in the same process may pass any `BlobClient` (an OAuth one, for instance).
Not emulated: leases, sequence numbers, incremental snapshots, throttling.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from .blockdev import BlockDevice, BlockDeviceError, check_range, is_zero

MAX_PAGE_WRITE = 4 * 2**20  # the Put Page limit
CACHE_CHUNK = 2**20
CACHE_CHUNKS = 64  # 64 MiB per open device at most


class PageBlobDevice(BlockDevice):
    def __init__(self, blob_client, readonly: bool = False):
        self.blob = blob_client
        self.readonly = readonly
        self.size = int(blob_client.get_blob_properties().size)
        if self.size % 512:
            raise BlockDeviceError(f"page blob size {self.size} is not a multiple of 512")
        self._chunks: OrderedDict[int, bytearray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._writes = 0  # a chunk read while a write went up is not kept (it may be stale)

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
        if length >= CACHE_CHUNK:  # a large read is one request, and not worth keeping
            return self.blob.download_blob(offset=offset, length=length).readall()
        out = bytearray()
        end = offset + length
        pos = offset
        while pos < end:
            index = pos // CACHE_CHUNK
            chunk = self._chunk(index)
            start = pos - index * CACHE_CHUNK
            take = min(end - pos, len(chunk) - start)
            out += chunk[start : start + take]
            pos += take
        return bytes(out)

    def _chunk(self, index: int) -> bytearray:
        with self._cache_lock:
            chunk = self._chunks.get(index)
            if chunk is not None:
                self._chunks.move_to_end(index)
                return chunk
            writes = self._writes
        start = index * CACHE_CHUNK
        length = min(CACHE_CHUNK, self.size - start)
        chunk = bytearray(self.blob.download_blob(offset=start, length=length).readall())
        with self._cache_lock:
            if writes != self._writes:
                return chunk
            self._chunks[index] = chunk
            while len(self._chunks) > CACHE_CHUNKS:
                self._chunks.popitem(last=False)
        return chunk

    def _update_cache(self, offset: int, data) -> None:
        with self._cache_lock:
            self._writes += 1
            end = offset + len(data)
            for index in range(offset // CACHE_CHUNK, (end - 1) // CACHE_CHUNK + 1):
                chunk = self._chunks.get(index)
                if chunk is None:
                    continue
                base = index * CACHE_CHUNK
                lo, hi = max(offset, base), min(end, base + len(chunk))
                chunk[lo - base : hi - base] = data[lo - offset : hi - offset]

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
        self._update_cache(offset, view)

    def flush(self) -> None:
        pass  # a Put Page is durable once acknowledged

    def resize(self, new_size: int) -> None:
        self._check_resize(new_size)
        current = int(self.blob.get_blob_properties().size)
        if current < new_size and not self.readonly:
            self.blob.resize_blob(new_size)
        self.size = new_size
        with self._cache_lock:
            self._chunks.clear()  # the last chunk's length changed

    def close(self) -> None:
        self.blob.close()

    def allocated_extents(self) -> list[tuple[int, int]]:
        """(offset, length) of every written page range."""
        return [
            (r.start, r.end - r.start + 1) for r in self.blob.list_page_ranges() if not r.cleared
        ]
