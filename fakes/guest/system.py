"""The guest OS: boot, the drivers and services it loads, its workload, quiesce and shutdown.

Boot: open the disks, read the registry from disk 0's system area, load each installed driver
onto every disk (by module name), record the boot (state "running", boot count + 1) through
the drivers, recover and check the journaled application, recover the ledger and start its
side of the pair (when the workload has one), start the write generator, start each installed
service, then the guest operations (file system, processes). A clean shutdown does it
backwards: programs, services (stop(clean=True)), generator and ledger threads, ledger,
application (finish and flush), registry (state "clean"), disks flushed and closed through the
drivers. A hard power-off is the process being killed: nothing of that runs, and the registry
still says "running", which is how the next boot knows (previous_shutdown_clean False).

`GuestOS` does no process work and serves no tools channel: `__main__` runs it in a process and
serves its tools channel; unit tests run it in memory. (A ledger receiver is the one socket it
opens itself: the link between two guests, see ledger_link.py.) Not emulated: a kernel,
memory, CPU, file systems on the disks (the guest's files are beside its disks, see
guestops.py), a network.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from pathlib import Path

from . import app as journal
from .api import GuestAPI
from .blockdev import open_device
from .config import GuestConfig
from .drivers import DiskStack, DriverError, load_module
from .errors import GuestError
from .guestops import GuestFileSystem, ProcessTable, Programs, check_login
from .layout import Area, workload_areas
from .ledger_link import LedgerNode
from .offline import ensure_ledger_area
from .registry import Registry, read_registry, write_registry
from .workload import Workload, WorkloadSettings, WriteGenerator, boot_seed

log = logging.getLogger(__name__)


class WallClock:
    """Stands in for the lab clock when the guest runs outside a lab (unit tests)."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        return not (stop or threading.Event()).wait(seconds)


def lab_clock(state_dir: str):
    from lab.kit.clock import CLOCK_FILE, LabClock

    path = Path(state_dir or ".") / CLOCK_FILE
    return LabClock(path) if state_dir and path.exists() else WallClock()


class GuestOS:
    def __init__(self, config: GuestConfig, clock=None, devices: list | None = None):
        self.config = config
        self.settings = WorkloadSettings.from_dict(config.workload)
        self.clock = clock or lab_clock(config.state_dir)
        self.run_dir = Path(config.run_dir)
        self.state = "off"  # off | booting | running | stopping
        self.disks: list[DiskStack] = []
        self.registry: Registry | None = None
        self.previous_shutdown_clean: bool | None = None
        self.app: journal.JournalApp | None = None
        self.app_area: Area | None = None
        self.ledger: LedgerNode | None = None
        self.ledger_area: Area | None = None
        self.workload: Workload | None = None
        self.services: dict[str, object] = {}
        self.service_pids: dict[str, tuple[str, int]] = {}  # module -> (process name, pid)
        self.load_errors: list[str] = []
        self.stopping = threading.Event()
        self.on_power_request = None  # callable(action) set by the process running the OS
        self._devices = devices
        self._lock = threading.RLock()  # registry, install, disk changes
        self._threads: list[threading.Thread] = []
        self._quiesce_lock = threading.Lock()
        self._quiesce_token: str | None = None
        self._quiesce_timer: threading.Timer | None = None
        self._expired_tokens: set[str] = set()
        self.fs = GuestFileSystem(self.run_dir / "fs", config.os_family)
        self.processes = ProcessTable(config.os_family, self.clock)
        self.programs = Programs(
            config.os_family, self.fs, self.processes, self._program_api, self.control_service
        )

    # -- boot ---------------------------------------------------------------------------------
    def boot(self) -> None:
        self.state = "booting"
        raw = self._devices or [open_device(d) for d in self.config.disks]
        self.disks = [
            DiskStack(i, dev, d.label)
            for i, (dev, d) in enumerate(zip(raw, self.config.disks, strict=True))
        ]
        try:
            self.registry = read_registry(self.disks[0])
        except Exception:
            for disk in self.disks:
                disk.close()
            self.state = "off"
            raise
        reg = self.registry
        self.previous_shutdown_clean = reg.state == "clean"
        for name in reg.drivers:
            self._load_driver(name)
        reg.state = "running"
        reg.boot_count += 1
        reg.last_boot = self.clock.time()
        write_registry(self.disks[0], reg)
        log.info(
            "%s booted (boot %d, previous shutdown %s, drivers %s)",
            reg.hostname,
            reg.boot_count,
            "clean" if self.previous_shutdown_clean else "UNCLEAN",
            reg.drivers or "none",
        )
        self._start_app()
        self._start_ledger()
        self._start_workload()
        for name in reg.services:
            self._start_service(name)
        self.fs.create_standard_dirs(list(self.config.accounts))
        if self.config.os_family == "windows":
            self.processes.add_system("System", "", pid=4)
            self.processes.add_system("vmtoolsd.exe", '"C:\\Program Files\\VMware\\vmtoolsd.exe"')
        else:
            self.processes.add_system("systemd", "/sbin/init", pid=1)
            self.processes.add_system("vmtoolsd", "/usr/bin/vmtoolsd")
        self.state = "running"

    def _load_driver(self, name: str) -> None:
        try:
            module = load_module(name, "driver", "attach")
            for disk in self.disks:
                disk.attach(name, module, GuestAPI(self, name))
        except Exception as exc:  # a broken driver must not stop the OS from booting
            message = str(exc) if isinstance(exc, DriverError) else f"driver {name}: {exc!r}"
            log.error("%s", message)
            self.load_errors.append(message)

    def _start_service(self, name: str) -> None:
        try:
            module = load_module(name, "service", "start")
            handle = module.start(GuestAPI(self, name))
            if not callable(getattr(handle, "stop", None)):
                raise DriverError(f"service {name}: start() returned nothing with stop()")
            self.services[name] = handle
            # A service may name its process per OS (PROCESS_NAMES), as real services are
            # known by their executables; otherwise the module's last name.
            names = getattr(module, "PROCESS_NAMES", {})
            default = name.rsplit(".", 1)[-1] + (
                ".exe" if self.config.os_family == "windows" else ""
            )
            proc = names.get(self.config.os_family, default)
            pid = self.processes.add_system(proc, f"drlab-service {name}")
            self.service_pids[name] = (proc, pid)
        except Exception as exc:
            message = str(exc) if isinstance(exc, DriverError) else f"service {name}: {exc!r}"
            log.error("%s", message)
            self.load_errors.append(message)

    def control_service(self, action: str, which: str) -> int:
        """Stop, start or restart an installed service by module or process name (what
        `systemctl restart svagentsd` or `net stop svagents` do); returns the exit code."""
        wanted = which.lower().removesuffix(".exe")

        def known_as(module: str) -> set[str]:
            process = self.service_pids.get(module, ("",))[0]
            return {module.lower(), process.lower().removesuffix(".exe")}

        name = next((n for n in self.registry.services if wanted in known_as(n)), None)
        if name is None:
            return 1060 if self.config.os_family == "windows" else 5  # no such service
        if action in ("stop", "restart") and name in self.services:
            handle = self.services.pop(name)
            try:
                handle.stop(True)
            finally:
                _proc, pid = self.service_pids.pop(name, (None, None))
                if pid is not None:
                    self.processes.end(pid, 0)
            log.info("service %s stopped", name)
        if action in ("start", "restart") and name not in self.services:
            self._start_service(name)
            log.info("service %s started", name)
        return 0

    def _start_app(self) -> None:
        self.app_area = Area.from_dict(self.registry.app_area)
        if self.app_area is None or not self.settings.app:
            return
        disk = self.disks[self.app_area.disk]
        if _never_formatted(disk, self.app_area.offset):  # recorded at install, never formatted
            journal.format_area(disk, self.app_area.offset, ring_slots(self.app_area), self._seed())
        self.app = journal.JournalApp(disk, self.app_area.offset, self.clock)
        self.app.recover()
        if self.settings.app_tps > 0 and self.app.state == "running":
            self._thread("journal-app", self.app.run, self.settings.app_tps, self.stopping)
            self.processes.add_system(
                "journal-app.exe" if self.config.os_family == "windows" else "journal-app",
                f"journal-app --tps {self.settings.app_tps:g}",
            )

    def _start_ledger(self) -> None:
        self.ledger_area = Area.from_dict(self.registry.ledger_area)
        spec = self.settings.ledger_settings
        if spec is None:
            return  # an area recorded before stays out of the write generator's way
        # The pair names machines by their on-premises names; a failed-over machine keeps its
        # own (its hostname) whatever Azure calls the VM, and talks only within its VNet.
        network = self.config.network
        name = self.config.hostname if network else self.config.vm_name
        scope = f"{network.get('resource_group', '')}-{network.get('vnet', '')}" if network else ""
        with self._lock:
            self.ledger_area = ensure_ledger_area(self.disks, self.registry, spec, name)
        if self.ledger_area is None:
            self.load_errors.append("ledger: the disks have no room for the ledger's area")
            return
        node = LedgerNode(
            spec,
            name,
            self.disks[self.ledger_area.disk],
            self.ledger_area.offset,
            self.clock,
            self.config.state_dir,
            scope,
        )
        node.start(self._thread, self.stopping)
        self.ledger = node
        if node.error:
            self.load_errors.append(node.error)
            return
        self.processes.add_system(
            "ledger.exe" if self.config.os_family == "windows" else "ledger",
            f"ledger --{spec.role} {spec.peer}",
        )

    def _start_workload(self) -> None:
        s = self.settings
        seed = boot_seed(self._seed(), self.registry.boot_count)
        areas = workload_areas([d.size for d in self.disks], self.app_area, self.ledger_area)
        generator = WriteGenerator(seed, areas, s.io_size, s.hot_fraction, s.hot_share)
        self.workload = Workload(generator, self.disks, s.churn_mb_s)
        if s.churn_mb_s > 0:
            self._thread("workload", self.workload.run, self.stopping)

    def _seed(self) -> int:
        return self.settings.base_seed(self.config.vm_name)

    def _thread(self, name: str, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- shutdown -----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Clean shutdown: everything flushes and the registry records a clean stop."""
        if self.state in ("off", "stopping"):
            return
        self.state = "stopping"
        self.stopping.set()
        self.processes.shutdown()
        self._release_quiesce(expired=False)
        if self.ledger is not None:
            self.ledger.stop(clean=False)  # receive nothing more; the book flushes below
        for thread in self._threads:
            thread.join(30)
        if self.ledger is not None:
            self.ledger.stop(clean=True)
        if self.app is not None:
            self.app.stop()
        with self._lock:
            reg = self.registry
            reg.state = "clean"
            reg.last_shutdown = self.clock.time()
            write_registry(self.disks[0], reg)
        # Services stop after the last write of the machine, as drivers and agents outlive
        # applications in a real shutdown: the mobility agent's final point then holds all of
        # it (a planned failover loses nothing).
        for name, service in reversed(list(self.services.items())):
            try:
                service.stop(True)
            except Exception:
                log.exception("service %s failed to stop cleanly", name)
        with self._lock:
            for disk in self.disks:
                disk.flush()
                disk.close()
        self.state = "off"
        log.info("%s shut down cleanly", reg.hostname)

    def crash(self) -> None:
        """What a hard power-off leaves, for in-process runs: threads stop after their current
        write, nothing is flushed, closed or recorded (the registry still says "running")."""
        self.state = "off"
        self.stopping.set()
        self.processes.stop.set()
        self._release_quiesce(expired=False)
        if self.ledger is not None:
            self.ledger.stop(clean=False)  # the receiver's socket goes away with the machine
        for thread in self._threads:
            thread.join(30)

    def request_power(self, action: str) -> None:
        """Ask the process running this OS to shut down or reboot (answers before it acts)."""
        if action not in ("shutdown", "reboot"):
            raise GuestError("bad_request", f"unknown power action {action!r}")
        if self.on_power_request is None:
            raise GuestError("not_supported", "this guest cannot be shut down from the tools")
        self.on_power_request(action)

    # -- registry: install, settings ----------------------------------------------------------
    def install(self, drivers: list[str], services: list[str], settings: dict) -> None:
        """Record drivers/services in the registry and load them now (modules checked first)."""
        if not isinstance(settings, dict) or not all(
            isinstance(v, dict) for v in settings.values()
        ):
            raise GuestError("bad_request", "settings must map module names to dicts")
        for name in drivers:
            load_module(name, "driver", "attach")
        for name in services:
            load_module(name, "service", "start")
        with self._lock:
            reg = self.registry
            for name, values in settings.items():
                reg.settings[name] = dict(values)
            new_drivers = [d for d in dict.fromkeys(drivers) if d not in reg.drivers]
            new_services = [s for s in dict.fromkeys(services) if s not in reg.services]
            reg.drivers.extend(new_drivers)
            reg.services.extend(new_services)
            write_registry(self.disks[0], reg)
            for name in new_drivers:
                self._load_driver(name)
        for name in new_services:
            self._start_service(name)
        log.info("installed drivers %s, services %s", new_drivers, new_services)

    def uninstall(self, drivers: list[str], services: list[str]) -> bool:
        """Remove from the registry; services stop now, drivers stay until the next boot."""
        with self._lock:
            reg = self.registry
            reg.drivers = [d for d in reg.drivers if d not in drivers]
            reg.services = [s for s in reg.services if s not in services]
            for name in [*drivers, *services]:
                reg.settings.pop(name, None)
            write_registry(self.disks[0], reg)
        for name in services:
            service = self.services.pop(name, None)
            if service is not None:
                service.stop(True)
        return any(name in disk.drivers for disk in self.disks for name in drivers)

    def save_settings(self, owner: str, settings: dict) -> None:
        with self._lock:
            self.registry.settings[owner] = dict(settings)
            write_registry(self.disks[0], self.registry)

    # -- quiesce ------------------------------------------------------------------------------
    def quiesce(self, timeout: float = 10.0):
        return _Quiesce(self, timeout)

    def quiesce_begin(self, timeout: float) -> str:
        """Flush and hold writes; released by quiesce_end or after `timeout` seconds."""
        if not self.settings.quiesce:
            raise GuestError("not_supported", "this guest's workload cannot be quiesced")
        if not 0 < timeout <= 600:
            raise GuestError("bad_request", "a quiesce timeout is between 0 and 600 seconds")
        with self._quiesce_lock:
            if self._quiesce_token is not None:
                raise GuestError("bad_request", "the guest is already quiesced")
            if self.app is not None:
                self.app.freeze()
            if self.ledger is not None:
                self.ledger.freeze()
            if self.workload is not None:
                self.workload.hold()
            for disk in self.disks:
                disk.flush()
            token = uuid.uuid4().hex
            self._quiesce_token = token
            self._quiesce_timer = threading.Timer(timeout, self._release_quiesce, (True,))
            self._quiesce_timer.daemon = True
            self._quiesce_timer.start()
        log.info("quiesced (writes held for at most %g s)", timeout)
        return token

    def quiesce_end(self, token: str) -> bool:
        """Release held writes. Returns True if they had already been released (timed out)."""
        with self._quiesce_lock:
            if token in self._expired_tokens:
                self._expired_tokens.discard(token)
                return True
            if token != self._quiesce_token:
                raise GuestError("bad_request", "no quiesce with that token")
        self._release_quiesce(expired=False)
        return False

    def _release_quiesce(self, expired: bool) -> None:
        with self._quiesce_lock:
            if self._quiesce_token is None:
                return
            if self._quiesce_timer is not None:
                self._quiesce_timer.cancel()
            if expired:
                self._expired_tokens.add(self._quiesce_token)
                log.warning("quiesce timed out: writes released")
            self._quiesce_token = self._quiesce_timer = None
            if self.workload is not None:
                self.workload.release()
            if self.ledger is not None:
                self.ledger.thaw()
            if self.app is not None:
                self.app.thaw()

    # -- the hypervisor's view ----------------------------------------------------------------
    def disk_resized(self, index: int, new_size: int) -> None:
        if not isinstance(index, int) or not 0 <= index < len(self.disks):
            raise GuestError("bad_request", f"no disk {index!r}")
        with self._lock:
            try:
                self.disks[index].resize(int(new_size))
            except ValueError as exc:
                raise GuestError("bad_request", str(exc)) from None
            self.config.disks[index].size = int(new_size)
            if self.workload is not None:
                areas = workload_areas(
                    [d.size for d in self.disks], self.app_area, self.ledger_area
                )
                with self.workload._io_lock:
                    self.workload.generator.set_areas(areas)
        log.info("disk %d grew to %d bytes", index, new_size)

    def check_app(self) -> dict:
        """The application's consistency check, run by the guest through its own disks."""
        if self.app is None or self.app_area is None:
            return {"ok": False, "errors": ["no journaled application in this guest"]}
        with self.app._txn_lock:
            return journal.check(self.disks[self.app_area.disk], self.app_area.offset).to_dict()

    def status(self) -> dict:
        reg = self.registry
        return {
            "state": self.state,
            "vm_id": self.config.vm_id,
            "hostname": reg.hostname if reg else self.config.hostname,
            "ip_addresses": list(self.config.ip_addresses),
            "network": dict(self.config.network),
            "os_family": self.config.os_family,
            "heartbeat": self.clock.time(),
            "boot_count": reg.boot_count if reg else 0,
            "previous_shutdown_clean": self.previous_shutdown_clean,
            "drivers": list(reg.drivers) if reg else [],
            "services": list(self.services),
            "disks": [
                {"label": d.label, "size": d.size, "drivers": list(d.drivers)} for d in self.disks
            ],
            "load_errors": list(self.load_errors),
            "app": self.app.status() if self.app else None,
            "ledger": self.ledger.status() if self.ledger else None,
            "workload": self.workload.status() if self.workload else None,
            "quiesced": self._quiesce_token is not None,
        }

    # -- guest operations ---------------------------------------------------------------------
    def login(self, user, password) -> str:
        return check_login(self.config.accounts, self.config.os_family, user, password)

    def start_program(self, user, password, path, arguments="", env=None, cwd=None) -> int:
        owner = self.login(user, password)
        if self.state != "running":
            raise GuestError("not_running", "the guest is not running")
        return self.programs.start(owner, path, arguments or "", env, cwd)

    def list_processes(self, user, password, pids=None) -> list[dict]:
        self.login(user, password)
        return self.processes.list(pids)

    def put_file(self, user, password, guest_path, data: bytes, overwrite: bool) -> None:
        self.login(user, password)
        self.fs.put(guest_path, data, bool(overwrite))

    def get_file(self, user, password, guest_path) -> bytes:
        self.login(user, password)
        return self.fs.get(guest_path)

    def make_directory(self, user, password, guest_path, parents=False) -> None:
        self.login(user, password)
        self.fs.mkdir(guest_path, bool(parents))

    def _program_api(self, owner: str, environment: dict, cwd: str | None) -> GuestAPI:
        return GuestAPI(self, owner, environment, cwd)


def ring_slots(area: Area) -> int:
    return (area.length - journal.AREA_HEADER) // journal.RECORD_SIZE


def _never_formatted(device, offset: int) -> bool:
    return device.read(offset, journal.AREA_HEADER).count(0) == journal.AREA_HEADER


class _Quiesce(contextlib.AbstractContextManager):
    def __init__(self, guest: GuestOS, timeout: float):
        self.guest, self.timeout, self.token = guest, timeout, None

    def __enter__(self):
        self.token = self.guest.quiesce_begin(self.timeout)
        return self

    def __exit__(self, exc_type, exc, tb):
        expired = self.guest.quiesce_end(self.token)
        if expired and exc_type is None:
            raise GuestError(
                "timeout", f"writes were held longer than {self.timeout:g} s and released early"
            )
        return False
