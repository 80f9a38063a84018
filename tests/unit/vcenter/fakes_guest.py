"""A stand-in for `fakes.guest.host` in unit tests of the vCenter model: it keeps guests as
objects in memory (no processes), with the same contract (configs, handles, errors)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

_pids = itertools.count(5000)


class GuestError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


@dataclass
class DiskRef:
    label: str
    path: str
    size: int


@dataclass
class GuestConfig:
    vm_id: str
    vm_name: str
    os_family: str
    hostname: str
    ip_addresses: list
    disks: list
    run_dir: str
    accounts: dict
    workload: dict = field(default_factory=dict)
    state_dir: str = ""


class FakeHandle:
    def __init__(self, backend, config):
        self.backend, self.config = backend, config
        self.pid = next(_pids)
        self.alive = True
        self.files: dict[str, bytes] = {}
        self.resized: list[tuple[int, int]] = []
        self.programs: list[dict] = []

    def running(self):
        return self.alive

    def status(self):
        if not self.alive:
            return {"running": False, "tools": "guestToolsNotRunning"}
        return {
            "running": True,
            "tools": "guestToolsRunning",
            "hostname": self.config.hostname,
            "ip_addresses": list(self.config.ip_addresses),
            "heartbeat": 1,
        }

    def _check(self, user, password):
        if not self.alive:
            raise GuestError("not_running", "not running")
        if self.config.accounts.get(user) != password:
            raise GuestError("invalid_login", "bad credentials")

    def shutdown(self, timeout=30):
        self.alive = False
        self.backend.running.pop(self.config.vm_name, None)
        self.backend.log.append(("shutdown", self.config.vm_name))

    def reboot(self, timeout=30):
        self.backend.log.append(("reboot", self.config.vm_name))

    def power_off(self):
        self.alive = False
        self.backend.running.pop(self.config.vm_name, None)
        self.backend.log.append(("power_off", self.config.vm_name))

    def disk_resized(self, index, size):
        self.resized.append((index, size))

    def start_program(self, user, password, path, arguments="", env=None, cwd=None):
        self._check(user, password)
        if not path.startswith("/"):
            raise GuestError("program_not_found", path)
        pid = next(_pids)
        self.programs.append(
            {
                "name": path,
                "pid": pid,
                "owner": user,
                "cmd_line": f"{path} {arguments}".strip(),
                "start_time": 1.0e9,
                "end_time": 1.0e9 + 1,
                "exit_code": 0,
            }
        )
        return pid

    def list_processes(self, user, password, pids=None):
        self._check(user, password)
        return [p for p in self.programs if not pids or p["pid"] in pids]

    def put_file(self, user, password, guest_path, data, overwrite):
        self._check(user, password)
        if guest_path in self.files and not overwrite:
            raise GuestError("file_exists", guest_path)
        self.files[guest_path] = data

    def get_file(self, user, password, guest_path):
        self._check(user, password)
        if guest_path not in self.files:
            raise GuestError("file_not_found", guest_path)
        return self.files[guest_path]

    def make_directory(self, user, password, guest_path, parents=False):
        self._check(user, password)


class FakeGuestBackend:
    """Module-shaped: DiskRef, GuestConfig, GuestError, GuestHandle.attach, provision, start."""

    DiskRef = DiskRef
    GuestConfig = GuestConfig
    GuestError = GuestError

    def __init__(self):
        self.running: dict[str, FakeHandle] = {}
        self.provisioned: set[str] = set()
        self.log: list = []
        backend = self

        class GuestHandle:
            @staticmethod
            def attach(config):
                return backend.running.get(config.vm_name)

        self.GuestHandle = GuestHandle

    def provision(self, config):
        self.provisioned.add(config.vm_name)

    def start(self, config, timeout=30):
        if config.vm_name in self.running:
            raise GuestError("bad_request", "already running")
        if config.vm_name not in self.provisioned:
            raise GuestError("not_running", "no operating system")
        handle = self.running[config.vm_name] = FakeHandle(self, config)
        self.log.append(("start", config.vm_name))
        return handle

    def verify_disks(self, disks):
        return {"ok": True, "disks": [d.path for d in disks]}
