"""Block devices: the one interface every guest write goes through.

A block device has a `size` in bytes and five operations: `read(offset, length)`,
`write(offset, data)`, `flush()`, `resize(new_size)` and `close()`. Offsets and lengths are
multiples of 512-byte sectors and stay inside the device; anything else is a
`BlockDeviceError` and changes nothing. A driver (a disk filter such as the mobility service's)
wraps one device in another with the same five operations, so it sees every read, write and
flush on its way down; `FilterDevice` is a convenience base for that, but any object with the
same attributes will do (drivers need not import this module).

Backings: `SparseFileDevice` (a flat file, as a datastore holds it; holes stay holes),
`MemoryDevice` (tests and crash simulation) and, for a guest running in Azure after failover,
`fakes.guest.pageblob.PageBlobDevice`. `open_device(DiskRef)` picks one by the disk's kind.

Not emulated: queue depth, write caching below the guest (a write that returned is in the
host's page cache and survives the guest being killed), trim/unmap, and disk geometry.
"""

from __future__ import annotations

import errno
import os
import threading
from abc import ABC, abstractmethod

SECTOR = 512


class BlockDeviceError(ValueError):
    """Misuse of a block device (alignment, bounds, shrinking): the caller's fault."""


def check_range(offset: int, length: int, size: int) -> None:
    if offset < 0 or length < 0:
        raise BlockDeviceError(f"negative offset or length ({offset}, {length})")
    if offset % SECTOR or length % SECTOR:
        raise BlockDeviceError(
            f"I/O must be aligned to {SECTOR}-byte sectors (offset {offset}, length {length})"
        )
    if offset + length > size:
        raise BlockDeviceError(f"I/O beyond the end of the device ({offset}+{length} > {size})")


def is_zero(data) -> bool:
    return bytes(data).count(0) == len(data)


class BlockDevice(ABC):
    """A disk as the guest sees it. Implementations are safe to call from several threads."""

    size: int

    @abstractmethod
    def read(self, offset: int, length: int) -> bytes: ...

    @abstractmethod
    def write(self, offset: int, data: bytes) -> None: ...

    @abstractmethod
    def flush(self) -> None: ...

    @abstractmethod
    def resize(self, new_size: int) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def _check_resize(self, new_size: int) -> None:
        if new_size % SECTOR:
            raise BlockDeviceError(f"a disk size is a multiple of {SECTOR} bytes ({new_size})")
        if new_size < self.size:
            raise BlockDeviceError(
                f"shrinking a disk is not supported ({self.size} -> {new_size} bytes)"
            )


class SparseFileDevice(BlockDevice):
    """A sparse flat file (the -flat.vmdk of a datastore), read and written with pread/pwrite.

    A write of zeros into a range that is all hole is skipped, so a disk that was never written
    keeps no blocks and SEEK_DATA/SEEK_HOLE find only what the guest wrote.
    """

    def __init__(self, path: str | os.PathLike, size: int | None = None, readonly: bool = False):
        self.path = os.fspath(path)
        self.readonly = readonly
        self._fd = os.open(self.path, os.O_RDONLY if readonly else os.O_RDWR)
        self._closed = False
        file_size = os.fstat(self._fd).st_size
        self.size = file_size if size is None else size
        if self.size % SECTOR:
            os.close(self._fd)
            raise BlockDeviceError(f"{self.path}: size {self.size} is not a multiple of {SECTOR}")
        if file_size < self.size and not readonly:
            os.ftruncate(self._fd, self.size)  # extending a file allocates nothing

    def read(self, offset: int, length: int) -> bytes:
        check_range(offset, length, self.size)
        data = os.pread(self._fd, length, offset)
        if len(data) < length:  # past the end of a shorter (read-only) file: zeros
            data += bytes(length - len(data))
        return data

    def write(self, offset: int, data: bytes) -> None:
        if self.readonly:
            raise BlockDeviceError(f"{self.path} is open read-only")
        check_range(offset, len(data), self.size)
        if is_zero(data) and self._all_hole(offset, len(data)):
            return
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view, offset = view[written:], offset + written

    def _all_hole(self, offset: int, length: int) -> bool:
        try:
            return os.lseek(self._fd, offset, os.SEEK_DATA) >= offset + length
        except OSError as exc:
            return exc.errno == errno.ENXIO  # ENXIO: no data at or after offset

    def flush(self) -> None:
        if not self.readonly:
            os.fdatasync(self._fd)

    def resize(self, new_size: int) -> None:
        self._check_resize(new_size)
        if not self.readonly and os.fstat(self._fd).st_size < new_size:
            os.ftruncate(self._fd, new_size)
        self.size = new_size

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self._fd)

    def allocated_extents(self) -> list[tuple[int, int]]:
        """(offset, length) of every data extent, from SEEK_DATA/SEEK_HOLE."""
        extents, pos = [], 0
        end = os.fstat(self._fd).st_size
        while pos < end:
            try:
                start = os.lseek(self._fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    break
                raise
            stop = os.lseek(self._fd, start, os.SEEK_HOLE)
            extents.append((start, stop - start))
            pos = stop
        return extents

    def __repr__(self) -> str:
        return f"SparseFileDevice({self.path!r}, size={self.size})"


class MemoryDevice(BlockDevice):
    """A disk in memory: for unit tests, crash simulation and tools."""

    def __init__(self, size: int):
        if size % SECTOR:
            raise BlockDeviceError(f"size {size} is not a multiple of {SECTOR}")
        self.size = size
        self.data = bytearray(size)
        self.flushes = 0
        self._lock = threading.Lock()

    def read(self, offset: int, length: int) -> bytes:
        check_range(offset, length, self.size)
        with self._lock:
            return bytes(self.data[offset : offset + length])

    def write(self, offset: int, data: bytes) -> None:
        check_range(offset, len(data), self.size)
        with self._lock:
            self.data[offset : offset + len(data)] = data

    def flush(self) -> None:
        self.flushes += 1

    def resize(self, new_size: int) -> None:
        self._check_resize(new_size)
        with self._lock:
            self.data.extend(bytes(new_size - self.size))
            self.size = new_size

    def close(self) -> None:
        pass


class FilterDevice(BlockDevice):
    """A driver's device on top of another: passes everything down; override what you filter."""

    def __init__(self, lower: BlockDevice):
        self.lower = lower

    @property
    def size(self) -> int:  # type: ignore[override]
        return self.lower.size

    def read(self, offset: int, length: int) -> bytes:
        return self.lower.read(offset, length)

    def write(self, offset: int, data: bytes) -> None:
        self.lower.write(offset, data)

    def flush(self) -> None:
        self.lower.flush()

    def resize(self, new_size: int) -> None:
        self.lower.resize(new_size)

    def close(self) -> None:
        self.lower.close()


def open_device(disk, readonly: bool = False) -> BlockDevice:
    """The raw device for a `DiskRef`, by its kind."""
    kind = getattr(disk, "kind", "file")
    if kind == "file":
        return SparseFileDevice(disk.path, disk.size, readonly=readonly)
    if kind == "page_blob":
        from .pageblob import PageBlobDevice  # the Azure SDK is only needed in Azure

        return PageBlobDevice.from_disk(disk, readonly=readonly)
    raise BlockDeviceError(f"disk {disk.label!r}: unknown disk kind {kind!r}")
