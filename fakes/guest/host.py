"""What a hypervisor uses to run guests: provision, power on, talk to and power off a guest.

    provision(config)          install the OS the first time (idempotent)
    start(config) -> handle    power on: a guest process in its own session, registered with
                               the lab (so `drlab down` stops it), once its tools answer
    GuestHandle.attach(config) re-adopt a guest still running after the hypervisor restarted
    handle.shutdown()/reboot() clean (ShutdownGuest, RebootGuest); power_off() hard (SIGKILL)
    handle.start_program/list_processes/put_file/get_file    guest operations
    verify_disks(disks)        offline check of the application's data (and the ledger's)
    verify_ledger(sender_disks, receiver_disks)
                               a ledger pair's invariant on two VMs' disks from one instant

Reboot keeps the same process (the guest re-executes itself after its clean shutdown, as a
machine keeps its identity across a reboot), so the same handle, pid and lab registration stay
valid; `reboot()` returns once the new boot's tools answer.

The guest's stdout and stderr go to `<run_dir>/guest.log`; `<run_dir>/guest.pid` holds its
pid and start time. Not emulated: suspend, reset (use power_off + start), guest memory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from lab.kit import procs

from .blockdev import open_device
from .channel import unix_transport
from .config import DiskRef, GuestConfig
from .errors import GuestError
from .offline import install_os, verify_disks, verify_ledger
from .system import lab_clock
from .tools import ToolsClient

__all__ = [
    "DiskRef",
    "GuestConfig",
    "GuestError",
    "GuestHandle",
    "attach",
    "provision",
    "start",
    "verify_disks",
    "verify_ledger",
]

log = logging.getLogger(__name__)

PID_FILE = "guest.pid"
LOG_FILE = "guest.log"


def provision(config: GuestConfig) -> None:
    """Install the OS on disk 0 and format the application's area, the first time only."""
    devices = [open_device(d) for d in config.disks]
    try:
        install_os(devices, config, lab_clock(config.state_dir).time())
    finally:
        for device in devices:
            device.close()


def start(config: GuestConfig, timeout: float = 30.0) -> GuestHandle:
    """Power on: start the guest process and wait until its tools channel answers."""
    if GuestHandle.attach(config) is not None:
        raise GuestError("bad_request", f"the guest of {config.vm_name} is already running")
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = config.save()
    with open(run_dir / LOG_FILE, "ab") as logfile:
        popen = subprocess.Popen(
            [sys.executable, "-m", "fakes.guest", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            cwd=run_dir,
            start_new_session=True,
        )
    try:
        ref = procs.ProcRef.of(popen.pid, config.lab_process_name)
        (run_dir / PID_FILE).write_text(json.dumps({"pid": ref.pid, "started": ref.started}))
        if config.state_dir:
            procs.register(config.state_dir, config.lab_process_name, popen.pid)
    except psutil.NoSuchProcess:
        ref = procs.ProcRef(popen.pid, 0.0, config.lab_process_name)
    handle = GuestHandle(config, ref, popen)
    try:
        handle._wait_booted(timeout, after_boot=0)
    except BaseException:
        handle.power_off()  # a guest that did not come up is not left running
        raise
    return handle


def attach(config: GuestConfig) -> GuestHandle | None:
    return GuestHandle.attach(config)


class GuestHandle:
    """A powered-on guest as its hypervisor sees it."""

    def __init__(self, config: GuestConfig, ref: procs.ProcRef, popen=None):
        self.config = config
        self.ref = ref
        self._popen = popen
        self._client = ToolsClient(self._transport)

    @property
    def pid(self) -> int:
        return self.ref.pid

    @classmethod
    def attach(cls, config: GuestConfig) -> GuestHandle | None:
        """The guest of `config` if it still runs (pid file and start time both match)."""
        try:
            data = json.loads((Path(config.run_dir) / PID_FILE).read_text())
            ref = procs.ProcRef(int(data["pid"]), float(data["started"]), config.lab_process_name)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cls(config, ref) if ref.alive() else None

    # -- state --------------------------------------------------------------------------------
    def running(self) -> bool:
        if self._popen is not None and self._popen.poll() is not None:
            return False
        return self.ref.alive()

    def status(self) -> dict:
        base = {
            "running": False,
            "tools": "guestToolsNotRunning",
            "hostname": None,
            "ip_addresses": [],
            "heartbeat": None,
            "boot_count": None,
            "previous_shutdown_clean": None,
        }
        if not self.running():
            return base
        base["running"] = True
        try:
            status = self._client.call("status")
        except GuestError:
            return base
        return {**base, **status, "running": True, "tools": "guestToolsRunning"}

    # -- power --------------------------------------------------------------------------------
    def shutdown(self, timeout: float = 30) -> None:
        """Clean: services stop, everything flushes, the OS records a clean stop, exit 0."""
        self._call("shutdown")
        if not self._wait_exit(timeout):
            raise GuestError("timeout", f"the guest did not shut down within {timeout:g} s")
        self._forget()

    def reboot(self, timeout: float = 30) -> None:
        """Clean shutdown, then boot again in the same process; returns when tools answer."""
        before = self._call("status")["boot_count"]
        self._call("reboot")
        self._wait_booted(timeout, after_boot=before)

    def power_off(self) -> None:
        """Hard: SIGKILL, nothing flushed (the seed's forced shutdown)."""
        proc = self.ref.process()
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.ref.pid, signal.SIGKILL)  # the guest leads its own session
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self._wait_exit(10)
        self._forget()

    def disk_resized(self, index: int, new_size: int) -> None:
        self._call("disk_resized", index=index, size=new_size)

    # -- guest operations ---------------------------------------------------------------------
    def start_program(self, user, password, path, arguments="", env=None, cwd=None) -> int:
        result = self._call(
            "start_program",
            user=user,
            password=password,
            path=path,
            arguments=arguments or "",
            env=env,
            cwd=cwd,
        )
        return result["pid"]

    def list_processes(self, user, password, pids=None) -> list[dict]:
        return self._call(
            "list_processes", user=user, password=password, pids=list(pids) if pids else None
        )

    def put_file(self, user, password, guest_path, data: bytes, overwrite: bool) -> None:
        self._guarded(self._client.put_file, user, password, guest_path, data, overwrite)

    def get_file(self, user, password, guest_path) -> bytes:
        return self._guarded(self._client.get_file, user, password, guest_path)

    def make_directory(self, user, password, guest_path, parents: bool = False) -> None:
        self._call(
            "make_directory", user=user, password=password, guest_path=guest_path, parents=parents
        )

    # -- quiesce and checks (beyond the hypervisor contract: snapshots and drills use them) ---
    @contextlib.contextmanager
    def quiesce(self, timeout: float = 10.0):
        """The guest flushes and holds writes for the block (CreateSnapshot quiesce=True)."""
        token = self._call("quiesce_begin", timeout=timeout)["token"]
        try:
            yield
        finally:
            expired = self._call("quiesce_end", token=token)["expired"]
        if expired:
            raise GuestError("timeout", f"writes were held longer than {timeout:g} s")

    def check_app(self) -> dict:
        """The application's check, run inside the running guest."""
        return self._call("check_app")

    # -- plumbing -----------------------------------------------------------------------------
    def _transport(self, line: bytes) -> bytes:
        return unix_transport(self.config.run_dir)(line)

    def _call(self, op: str, **args):
        return self._guarded(self._client.call, op, **args)

    def _guarded(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GuestError as exc:
            if exc.kind == "tools_unavailable" and not self.running():
                raise GuestError("not_running", f"{self.config.vm_name} is not running") from None
            raise

    def _wait_booted(self, timeout: float, after_boot: int) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                self._forget()
                raise GuestError(
                    "not_running", f"the guest stopped while booting: {self._last_log()}"
                )
            try:
                status = self._client.call("status")
                if status.get("state") == "running" and status.get("boot_count", 0) > after_boot:
                    return
            except GuestError as exc:
                if exc.kind != "tools_unavailable":
                    raise
            if time.monotonic() > deadline:
                raise GuestError(
                    "timeout", f"the guest's tools did not answer within {timeout:g} s"
                )
            time.sleep(0.05)

    def _wait_exit(self, timeout: float) -> bool:
        if self._popen is not None:
            try:
                self._popen.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        proc = self.ref.process()
        if proc is None:
            return True
        try:
            proc.wait(timeout)
            return True
        except psutil.TimeoutExpired:
            return not self.running()

    def _forget(self) -> None:
        if self.config.state_dir:
            procs.unregister(self.config.state_dir, self.config.lab_process_name)

    def _last_log(self) -> str:
        try:
            lines = (Path(self.config.run_dir) / LOG_FILE).read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        return lines[-1].strip() if lines else "no log"
