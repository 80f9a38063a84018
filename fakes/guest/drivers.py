"""Drivers and services by module name, and the disk stacks drivers sit in.

The guest OS knows its drivers and services only as module names recorded in its registry; it
loads them as an OS loads a driver, with `importlib.import_module(name)`, so no fake imports a
component. The contract a module fulfils:

    driver:   attach(device, disk_index, guest_api) -> block device
              Called once per disk at boot (or at install). It returns a device with the same
              five operations (size, read, write, flush, resize, close) that usually wraps
              `device`; returning `device` itself leaves that disk unfiltered. Its close() must
              close the device below it; its flush() must flush it.
    service:  start(guest_api) -> object with stop(clean: bool)
              Started after the disks and the application are up; stopped with clean=True at
              a clean shutdown or reboot. A hard power-off stops nothing.
    program:  main(guest_api, argv) -> exit code     (see guestops.py)

`DiskStack` is one disk as the OS's I/O manager sees it: the raw device at the bottom, the
drivers' devices on top, and one lock, so every driver sees one request at a time per disk
and in the order the guest issued them.
"""

from __future__ import annotations

import importlib
import re
import threading

from .blockdev import BlockDevice, BlockDeviceError, check_range

MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
DEVICE_ATTRIBUTES = ("size", "read", "write", "flush", "resize", "close")


class DriverError(Exception):
    """A driver or service module cannot be loaded or broke its contract."""


def load_module(name: str, role: str, entry: str):
    """Import `name` and check it defines `entry` (attach, start or main)."""
    if not isinstance(name, str) or not MODULE_NAME.match(name):
        raise DriverError(f"{role} {name!r} is not a module name")
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        raise DriverError(f"{role} {name}: cannot be loaded ({type(exc).__name__}: {exc})") from exc
    if not callable(getattr(module, entry, None)):
        raise DriverError(f"{role} {name}: the module has no {entry}() function")
    return module


class DiskStack(BlockDevice):
    """One guest disk: raw device + driver filters, one request at a time."""

    def __init__(self, index: int, raw: BlockDevice, label: str = ""):
        self.index = index
        self.label = label
        self.raw = raw
        self.drivers: list[str] = []  # bottom to top
        self._top = raw
        self._lock = threading.RLock()
        self.closed = False

    @property
    def size(self) -> int:  # type: ignore[override]
        return self._top.size

    def attach(self, name: str, module, guest_api) -> None:
        """Put a driver on top of this disk's stack."""
        with self._lock:
            device = module.attach(self._top, self.index, guest_api)
            missing = [a for a in DEVICE_ATTRIBUTES if not hasattr(device, a)]
            if missing:
                raise DriverError(
                    f"driver {name}: attach() returned no block device (missing {missing})"
                )
            if device is not self._top:
                self._top = device
            self.drivers.append(name)

    def read(self, offset: int, length: int) -> bytes:
        check_range(offset, length, self.size)
        with self._lock:
            return self._top.read(offset, length)

    def write(self, offset: int, data: bytes) -> None:
        check_range(offset, len(data), self.size)
        with self._lock:
            if self.closed:
                raise BlockDeviceError(f"disk {self.index} is closed")
            self._top.write(offset, bytes(data))

    def flush(self) -> None:
        with self._lock:
            if not self.closed:
                self._top.flush()

    def resize(self, new_size: int) -> None:
        with self._lock:
            self._top.resize(new_size)

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._top.close()
