"""Unit fixtures for Compute and Network: models on a temporary SQLite file, a disks account
and a guest runtime in memory. No sockets, no processes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from fakes.azure.arm.resource_ids import ResourceScope
from fakes.azure.arm.resource_store import ResourceStore
from fakes.azure.compute.compute import Compute
from fakes.azure.compute.disk_storage import CONTAINER, SourceBlob
from fakes.azure.compute.errors import InvalidParameter
from fakes.azure.compute.guests import GuestDefaults
from fakes.azure.network.network import Network
from fakes.guest.config import DiskRef, GuestConfig
from fakes.guest.errors import GuestError

SUB = "7efbbe65-a449-441f-8079-98035951a214"
RG = "drlab-target"
NETWORKS = [
    {
        "name": "vnet-prod",
        "address_space": ["10.20.0.0/16"],
        "subnets": [{"name": "default", "prefix": "10.20.1.0/24"}],
    },
    {
        "name": "vnet-test",
        "address_space": ["10.30.0.0/16"],
        "isolated": True,
        "subnets": [{"name": "default", "prefix": "10.30.1.0/29"}],
    },
]
GiB = 1 << 30


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def time(self) -> float:
        return self.t


class MemoryDiskStorage:
    """The disks account in memory: blob name -> size; sources by reference."""

    account_url = "https://127.0.0.1:1/drlabdisks"
    account_name = "drlabdisks"
    ca_cert = "/lab/ca.pem"

    def __init__(self):
        self.blobs: dict[str, int] = {}
        self.sources = {"asr-seed-disks/seed-1?snapshot=t1": 4 * GiB}

    def resolve_source(self, ref: str) -> SourceBlob:
        ref = ref.removeprefix(self.account_url + "/")
        if ref not in self.sources:
            raise InvalidParameter(f"The source blob '{ref}' does not exist.", target="sourceUri")
        path, _, query = ref.partition("?")
        container, _, blob = path.partition("/")
        return SourceBlob(container, blob, query.partition("=")[2] or None, self.sources[ref])

    def copy(self, source: SourceBlob, blob: str) -> int:
        self.blobs[blob] = source.size
        return source.size

    def create_empty(self, blob, size):
        self.blobs[blob] = size

    def resize(self, blob, size):
        self.blobs[blob] = size

    def delete(self, blob):
        return self.blobs.pop(blob, None) is not None

    def url(self, blob):
        return f"{self.account_url}/{CONTAINER}/{blob}"

    def guest_url(self, blob):
        return self.url(blob) + "?sas"

    def wait_listening(self, timeout=0):
        return True


class FakeHandle:
    pids = itertools.count(1000)

    def __init__(self, backend, config):
        self.backend, self.config = backend, config
        self.pid = next(self.pids)
        self.alive = True
        self.boots = 1

    def running(self):
        return self.alive

    def status(self):
        return {
            "running": self.alive,
            "hostname": self.config.hostname,
            "boot_count": self.boots,
            "previous_shutdown_clean": True,
            "network": self.config.network,
            "app": {"state": "running", "last_check": self.backend.app_check},
        }

    def shutdown(self, timeout=30):
        self.alive = False
        self.backend.events.append(("shutdown", self.config.vm_name))

    def power_off(self):
        self.alive = False
        self.backend.events.append(("power_off", self.config.vm_name))

    def reboot(self, timeout=30):
        self.boots += 1
        self.backend.events.append(("reboot", self.config.vm_name))


class FakeGuestBackend:
    """fakes.guest.host's surface, in memory: guests by run directory."""

    DiskRef = DiskRef
    GuestConfig = GuestConfig
    GuestError = GuestError

    def __init__(self):
        self.running: dict[str, FakeHandle] = {}
        self.events: list[tuple[str, str]] = []
        self.blank_disks: set[str] = set()  # disk URLs without an OS
        self.app_check = {"ok": True, "committed_seq": 12, "records_checked": 12, "errors": []}
        self.configs: list[GuestConfig] = []
        outer = self

        class GuestHandle:
            @staticmethod
            def attach(config):
                handle = outer.running.get(config.run_dir)
                return handle if handle is not None and handle.alive else None

        self.GuestHandle = GuestHandle

    def start(self, config, timeout=30):
        self.configs.append(config)
        if config.disks[0].url in self.blank_disks:
            raise GuestError("not_running", "the guest stopped while booting: no OS on disk 0")
        handle = FakeHandle(self, config)
        self.running[config.run_dir] = handle
        self.events.append(("start", config.vm_name))
        return handle


@dataclass
class Parts:
    store: ResourceStore
    scope: ResourceScope
    network: Network
    storage: MemoryDiskStorage
    backend: FakeGuestBackend
    compute: Compute


@pytest.fixture
def scope():
    return ResourceScope(SUB, "westeurope", ("drlab-rg", RG), RG)


@pytest.fixture
def store(tmp_path):
    s = ResourceStore(tmp_path / "resources.db")
    yield s
    s.close()


@pytest.fixture
def network(store, scope):
    return Network.open(store, scope, NETWORKS)


@pytest.fixture
def parts(tmp_path, store, scope, network):
    storage = MemoryDiskStorage()
    backend = FakeGuestBackend()
    defaults = GuestDefaults(
        {"linux": {"root": "pw"}, "windows": {"Administrator": "pw"}},
        {"lin-db-01": {"churn_mb_s": 0.0, "app_tps": 5.0}},
    )
    compute = Compute(
        store, scope, network, storage, FakeClock(), tmp_path / "state", defaults, backend
    )
    # What the OS disk's registry says (reading it is I/O on a page blob).
    compute.guests.read_identity = lambda disk: (
        None if disk.url in backend.blank_disks else {"hostname": "lin-db-01", "os_family": "linux"}
    )
    yield Parts(store, scope, network, storage, backend, compute)
    compute.close()
