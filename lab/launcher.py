"""Start and stop a lab: one OS process per service, bound to 127.0.0.1 on ports chosen at start.

`up` prepares the state directory (topology, PKI, clock), chooses every port first (binding
the sockets it hands over), writes lab.json, starts all services at once, and waits for each
one's readiness probe with a deadline. If a service fails, or the user presses Ctrl-C, every
process already started is stopped before `up` returns. `down` stops them gracefully, then by
force, and never leaves one behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import LabError, ServiceFailed
from .kit.clock import CLOCK_FILE, LabClock
from .kit.labinfo import LAB_FILE, TOPOLOGY_FILE, read_lab, write_json_atomic, write_lab
from .kit.procs import ProcRef, registered, stop_all
from .services import ServiceDef, definition, enabled_services, known_names

if TYPE_CHECKING:
    from .topology import Topology

__all__ = ["LabError", "ServiceFailed", "up", "down", "status", "restart_service"]

READY_TIMEOUT = 60.0
LOG_TAIL_LINES = 25


def default_state_dir() -> Path:
    env = os.environ.get("DRLAB_STATE_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / ".lab"


def find_node_modules() -> Path:
    env = os.environ.get("DRLAB_NODE_MODULES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "node_modules"


class Progress:
    """What `up` reports while it works; the CLI renders it."""

    def step(self, message: str) -> None: ...
    def started(self, service: str, pid: int) -> None: ...
    def ready(self, service: str, seconds: float) -> None: ...


@dataclass
class _Running:
    svc: ServiceDef
    proc: subprocess.Popen
    ref: ProcRef
    log: Path
    log_offset: int


@contextlib.contextmanager
def _state_lock(state_dir: Path):
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LabError(
                f"another drlab command is starting or stopping the lab in {state_dir}"
            ) from None
        yield


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM to `drlab up` stops what it started, as Ctrl-C does."""

    def _raise(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread (e.g. called from a test's worker thread)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _deferred_interrupts():
    """Hold SIGINT/SIGTERM until the block ends, then raise KeyboardInterrupt.

    A handler, not a blocked signal mask: children inherit a mask across exec, and a service
    with SIGTERM blocked could not be stopped gracefully.
    """
    caught = []

    def _note(signum, frame):
        caught.append(signum)

    try:
        previous = {sig: signal.signal(sig, _note) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt


def running_refs(lab: dict) -> list[ProcRef]:
    refs = []
    for name, info in lab.get("services", {}).items():
        if info.get("pid"):
            refs.append(ProcRef(info["pid"], info["started"], name))
    return refs


def lab_is_running(state_dir: Path) -> list[str]:
    """Names of the services of this state directory's lab that are still alive."""
    try:
        lab = read_lab(state_dir)
    except Exception:
        return []
    return [r.name for r in running_refs(lab) if r.alive()]


# -- up ---------------------------------------------------------------------------------------
def up(
    topology_name: str = "default",
    state_dir: str | os.PathLike | None = None,
    clock_speed: float | None = None,
    progress: Progress | None = None,
    ready_timeout: float = READY_TIMEOUT,
) -> dict:
    from .topology import load_topology  # pydantic: only `up` needs it

    progress = progress or Progress()
    state = Path(state_dir or default_state_dir()).resolve()
    topology = load_topology(topology_name, known_services=known_names)
    with _state_lock(state), _terminate_as_interrupt():
        alive = lab_is_running(state)
        if alive:
            raise LabError(
                f"a lab is already running in {state} (services: {', '.join(alive)}); "
                f"stop it with `drlab down --state-dir {state}` or choose another --state-dir"
            )
        _sweep_leftovers(state)
        return _up(topology, state, clock_speed, progress, ready_timeout)


def _up(topology: Topology, state: Path, clock_speed, progress: Progress, ready_timeout):
    from .environment import lab_environment
    from .kit.pki import LabPKI
    from .topology import to_json

    services = enabled_services(topology)
    node_modules = _check_prerequisites(services)
    for sub in ("logs", "services", "run"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    write_json_atomic(state / TOPOLOGY_FILE, to_json(topology))

    progress.step("certificates")
    pki = LabPKI(state / "pki")
    pki.ensure_ca()
    for svc in services:
        pki.service_cert(svc.name)
    pki.signing_key()

    speed = clock_speed if clock_speed is not None else topology.clock.speed
    LabClock.start(state / CLOCK_FILE, speed)

    sockets = _choose_ports(topology, services)
    urls = {s.name: f"https://127.0.0.1:{port}" for s, (port, _, _) in zip(services, sockets)}
    lab = {
        "version": 1,
        "name": topology.name,
        "status": "starting",
        "state_dir": str(state),
        "topology": topology.name,
        "ca_cert": str(pki.ca_cert_path),
        "ca_bundle": str(pki.bundle_path),
        "clock_file": str(state / CLOCK_FILE),
        "node_modules": str(node_modules) if node_modules else None,
        "tenant_id": topology.entra.tenant_id,
        "subscription_id": topology.azure.subscription_id,
        "resource_group": topology.azure.resource_group,
        "vault": topology.azure.vault,
        "credentials": {
            p.name: {"client_id": p.client_id, "client_secret": p.secret}
            for p in topology.entra.principals
        },
        "services": {
            s.name: {
                "role": s.role,
                "module": s.module,
                "url": urls[s.name],
                "port": port,
                "log": str(state / "logs" / f"{s.name}.log"),
                "ports": {name: extra[0] for name, extra in extras.items()},
                "pid": None,
                "started": None,
            }
            for s, (port, _, extras) in zip(services, sockets)
        },
        "env": lab_environment(
            topology,
            str(state),
            str(pki.bundle_path),
            urls,
            # Extra ports (e.g. the mail sink's SMTP) by service: known now, bound above.
            {s.name: {n: e[0] for n, e in x.items()} for s, (_, _, x) in zip(services, sockets)},
        ),
    }
    write_lab(state, lab)

    running: list[_Running] = []
    try:
        progress.step("starting services")
        # Ctrl-C is held back while processes are spawned and recorded, so that none is
        # started without being known; it is raised (and handled below) right after.
        with _deferred_interrupts():
            for svc, (_port, sock, extras) in zip(services, sockets):
                item = _spawn(svc, sock, extras, state)
                running.append(item)
                lab["services"][svc.name].update(pid=item.ref.pid, started=item.ref.started)
                progress.started(svc.name, item.ref.pid)
            # Recorded at once, so `drlab down` can clean up even if this process dies now.
            write_lab(state, lab)
        _close_sockets(sockets)  # the services hold their own copies now
        _wait_ready(
            running,
            lab,
            pki.ca_cert_path,
            progress,
            ready_timeout,
            _vault_setup_step(topology, services, state, progress),
        )
    except BaseException:
        _close_sockets(sockets)
        _stop(running_refs(lab), lab)
        lab["status"] = "stopped"
        for info in lab["services"].values():
            info.update(pid=None, started=None)
        write_lab(state, lab)
        raise
    lab["status"] = "running"
    lab["clock"] = LabClock(state / CLOCK_FILE).describe()
    write_lab(state, lab)
    return lab


# The vault setup needs these roles ready; it overlaps with the rest (Azurite is slowest).
_SETUP_ROLES = {"entra", "arm", "vcenter", "config-server", "process-server"}


def _vault_setup_step(topology, services, state: Path, progress: Progress):
    """Add the vCenter, create the default policy and map it, once the site is registered."""
    if topology.replication is None or topology.onprem is None or topology.vcenter is None:
        return None

    def run():
        progress.step("setting up the vault: vCenter, replication policy and its mapping")
        # Through the public SDK, as a user would after installing the site.
        from .asr import Asr

        try:
            with Asr(state) as asr:
                asr.setup_default()
        except Exception as exc:
            raise LabError(f"setting up the vault failed: {exc}") from exc

    return _EarlyStep({s.name for s in services if s.role in _SETUP_ROLES}, run)


def _check_prerequisites(services: list[ServiceDef]) -> Path | None:
    needs = [s.node_package for s in services if s.node_package]
    if not needs:
        return None
    node_modules = find_node_modules()
    for package in needs:
        if not (node_modules / package / "package.json").exists():
            raise LabError(
                f"{package} is not installed: {node_modules / package} is missing. "
                "Run `make install` (it runs `npm ci`) in the drlab checkout."
            )
    if shutil.which("node") is None:
        raise LabError("node is not on PATH: Azurite needs Node.js 20 or newer")
    return node_modules


def _bind(port: int, service: str, wait: float = 0.0) -> socket.socket:
    """Bind 127.0.0.1:port; `wait` covers a process that is still exiting (its other threads
    hold the socket for a moment after it shows as a zombie)."""
    deadline = time.monotonic() + wait
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return sock
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise
            if time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            raise LabError(
                f"port {port} for service {service} is already in use on 127.0.0.1; "
                f"free it or set services.{service}.port to 0 in the topology"
            ) from None


def _choose_ports(topology: Topology, services: list[ServiceDef]):
    """(port, socket or None, {extra name: (port, socket)}) per service, all bound now."""
    chosen = []
    try:
        for svc in services:
            wanted = topology.services.get(svc.name)
            sock = _bind(wanted.port if wanted else 0, svc.name)
            port = sock.getsockname()[1]
            extras = {}
            chosen.append((port, None, extras))
            for extra in svc.extra_ports:
                extra_sock = _bind(0, f"{svc.name} ({extra})")
                extra_sock.listen(128)
                extra_sock.set_inheritable(True)
                extras[extra] = (extra_sock.getsockname()[1], extra_sock)
            if svc.handoff_socket:
                sock.listen(128)
                sock.set_inheritable(True)
                chosen[-1] = (port, sock, extras)
            else:
                # The service binds the port itself a moment from now.
                sock.close()
    except BaseException:
        _close_sockets(chosen)
        raise
    return chosen


def _close_sockets(chosen) -> None:
    for _port, sock, extras in chosen:
        for s in [sock, *(e[1] for e in extras.values())]:
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()


def _spawn(svc: ServiceDef, sock: socket.socket | None, extras: dict, state: Path) -> _Running:
    log_path = state / "logs" / f"{svc.name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRLAB_LISTEN_FD")}
    env.update(DRLAB_STATE_DIR=str(state), DRLAB_SERVICE=svc.name)
    pass_fds = []
    if sock is not None:
        env["DRLAB_LISTEN_FD"] = str(sock.fileno())
        pass_fds.append(sock.fileno())
    for name, (_port, extra) in extras.items():
        env[f"DRLAB_LISTEN_FD_{name.upper()}"] = str(extra.fileno())
        pass_fds.append(extra.fileno())
    with open(log_path, "ab") as log:
        offset = log.tell()
        log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {svc.name}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", svc.module],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=tuple(pass_fds),
            # Its own session: a Ctrl-C at the terminal reaches the launcher, which stops the
            # lab in order, and the lab outlives the `drlab up` that started it.
            start_new_session=True,
            close_fds=True,
        )
    return _Running(svc, proc, ProcRef.of(proc.pid, svc.name), log_path, offset)


def _probe(url: str, path: str, ctx: ssl.SSLContext, any_status: bool) -> bool:
    host, port = url.removeprefix("https://").split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=2)
    try:
        conn.request("GET", path)
        status = conn.getresponse().status
        return any_status or status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class _Prober(threading.Thread):
    """Polls one service's readiness probe, on one kept-alive connection, until it answers.

    One thread per service: a service's socket is bound before it runs, so a connection is
    accepted by the kernel at once and the TLS handshake waits until the service serves; a
    single prober looping over every service would wait on each in turn.
    """

    INTERVAL = 0.025

    def __init__(self, item: _Running, url: str, ctx: ssl.SSLContext, stop: threading.Event):
        super().__init__(name=f"probe-{item.svc.name}", daemon=True)
        self.item = item
        self.host, port = url.removeprefix("https://").split(":")
        self.port = int(port)
        self.ctx = ctx
        self.stop = stop
        self.ready = threading.Event()

    def run(self) -> None:
        conn = None
        svc = self.item.svc
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection(
                        self.host, self.port, context=self.ctx, timeout=5
                    )
                conn.request("GET", svc.probe_path)
                resp = conn.getresponse()
                resp.read()
                if svc.probe_any_status or resp.status == 200:
                    self.ready.set()
                    break
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            self.stop.wait(self.INTERVAL)
        if conn is not None:
            conn.close()


@dataclass
class _EarlyStep:
    """Work to start as soon as some services are ready, while the others still start."""

    needs: set[str]
    run: Callable[[], None]
    thread: threading.Thread | None = None
    error: BaseException | None = None

    def start(self) -> None:
        def target():
            try:
                self.run()
            except BaseException as exc:  # reported by _wait_ready
                self.error = exc

        self.thread = threading.Thread(target=target, name="early-step", daemon=True)
        self.thread.start()


def _wait_ready(
    running, lab, ca: Path, progress: Progress, timeout: float, early: _EarlyStep | None = None
) -> None:
    ctx = ssl.create_default_context(cafile=str(ca))
    t0 = time.monotonic()
    deadline = t0 + timeout
    stop = threading.Event()
    probers = [_Prober(item, lab["services"][item.svc.name]["url"], ctx, stop) for item in running]
    for prober in probers:
        prober.start()
    pending = list(probers)
    ready: set[str] = set()
    try:
        while pending or (early is not None and early.thread and early.thread.is_alive()):
            for prober in list(pending):
                item = prober.item
                if prober.ready.is_set():
                    pending.remove(prober)
                    ready.add(item.svc.name)
                    progress.ready(item.svc.name, time.monotonic() - t0)
                    continue
                code = item.proc.poll()
                if code is not None:
                    raise ServiceFailed(
                        item.svc.name, f"exited with status {code} while starting", _tail(item)
                    )
            if early is not None:
                if early.thread is None and early.needs <= ready:
                    early.start()
                if early.error is not None:
                    raise early.error
            if time.monotonic() > deadline:
                if pending:
                    item = pending[0].item
                    raise ServiceFailed(
                        item.svc.name, f"was not ready within {timeout:.0f} s", _tail(item)
                    )
                raise LabError(f"setting up the lab took longer than {timeout:.0f} s")
            time.sleep(0.01)
        if early is not None:
            if early.thread is None:
                early.start()
                early.thread.join()
            if early.error is not None:
                raise early.error
    finally:
        stop.set()


def _tail(item: _Running) -> str:
    try:
        with open(item.log, "rb") as f:
            f.seek(item.log_offset)
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty log)"


# -- down -------------------------------------------------------------------------------------
def down(state_dir: str | os.PathLike | None = None) -> list[str]:
    """Stop the lab in `state_dir`; returns the names of the services that were running."""
    state = Path(state_dir or default_state_dir()).resolve()
    if not (state / LAB_FILE).exists():
        raise LabError(f"no lab in {state} (no {LAB_FILE})")
    with _state_lock(state):
        lab = read_lab(state)
        refs = running_refs(lab)
        names = [r.name for r in refs if r.alive()]
        _stop(refs, lab)
        _sweep_leftovers(state)
        lab["status"] = "stopped"
        if "clock_file" in lab and Path(lab["clock_file"]).exists():
            lab["clock"] = LabClock(lab["clock_file"]).describe()
        for info in lab["services"].values():
            info.update(pid=None, started=None)
        write_lab(state, lab)
        return names


def _stop(refs: list[ProcRef], lab: dict, children: bool = True) -> None:
    """Stop services gracefully, then by force. With `children`, the processes the services
    started (guests) go first: they write to what the services serve. Restarting one
    service leaves them running, as VMs keep running when vCenter or storage restarts."""
    state = Path(lab["state_dir"])
    if children:
        stop_all(registered(state), grace=2.0)
        for path in (state / "run" / "procs").glob("*.json"):
            path.unlink(missing_ok=True)
    markers = {}
    for name, info in lab["services"].items():
        svc = definition(info.get("role", name))
        if svc is not None and svc.stopped_marker is not None:
            markers[name] = svc.stopped_marker
    offsets = {}
    for ref in refs:
        if ref.name in markers:
            log = Path(lab["services"][ref.name]["log"])
            offsets[ref.name] = log.stat().st_size if log.exists() else 0

    def finished(ref: ProcRef) -> bool:
        marker = markers.get(ref.name)
        if marker is None:
            return False
        with open(lab["services"][ref.name]["log"], "rb") as f:
            f.seek(offsets[ref.name])
            return marker.encode() in f.read()

    stop_all(list(reversed(refs)), grace=5.0, done=finished)


def _sweep_leftovers(state: Path) -> None:
    """Stop guests a crashed service left registered."""
    left = registered(state)
    if left:
        stop_all(left, grace=1.0)
        for path in (state / "run" / "procs").glob("*.json"):
            path.unlink(missing_ok=True)


def restart_service(
    state_dir: str | os.PathLike, name: str, *, kill: bool = False, timeout: float = READY_TIMEOUT
) -> dict:
    """Stop one service of a running lab (SIGTERM, or SIGKILL with `kill=True` to emulate a
    crash) and start it again on the same port; returns its new lab.json entry."""
    state = Path(state_dir).resolve()
    with _state_lock(state):
        lab = read_lab(state)
        if name not in lab["services"]:
            raise LabError(f"no service named {name!r} in the lab in {state}")
        info = lab["services"][name]
        svc = definition(info.get("role", name))
        if svc is None:
            raise LabError(f"service {name} has no definition in this drlab version")
        svc = replace(svc, name=name)
        ref = ProcRef(info["pid"], info["started"], name) if info.get("pid") else None
        if ref is not None and ref.alive():
            if kill:
                stop_all([ref], grace=0.0)
            else:
                _stop([ref], lab, children=False)
        sock = _bind(info["port"], name, wait=5.0)
        if not svc.handoff_socket:  # it binds the port itself; it only had to be free
            sock.close()
            sock = None
        extras = {}
        try:
            if sock is not None:
                sock.listen(128)
                sock.set_inheritable(True)
            for extra, port in info.get("ports", {}).items():
                extra_sock = _bind(port, f"{name} ({extra})", wait=5.0)
                extra_sock.listen(128)
                extra_sock.set_inheritable(True)
                extras[extra] = (port, extra_sock)
            with _deferred_interrupts():
                item = _spawn(svc, sock, extras, state)
                info.update(pid=item.ref.pid, started=item.ref.started)
                write_lab(state, lab)
        finally:
            _close_sockets([(info["port"], sock, extras)])
        try:
            _wait_ready([item], lab, Path(lab["ca_cert"]), Progress(), timeout)
        except BaseException:
            stop_all([item.ref], grace=2.0)
            info.update(pid=None, started=None)
            write_lab(state, lab)
            raise
        return info


def status(state_dir: str | os.PathLike | None = None, timeout: float = 2.0) -> dict:
    state = Path(state_dir or default_state_dir()).resolve()
    lab = read_lab(state)
    ctx = ssl.create_default_context(cafile=lab["ca_cert"])
    rows = {}
    for name, info in lab["services"].items():
        alive = bool(info.get("pid")) and ProcRef(info["pid"], info["started"], name).alive()
        svc = definition(info.get("role", name))
        healthy = False
        if alive and svc is not None:
            path = "/_lab/health" if svc.handoff_socket else svc.probe_path
            healthy = _probe(info["url"], path, ctx, svc.probe_any_status)
        rows[name] = {
            "pid": info.get("pid") if alive else None,
            "url": info["url"],
            "running": alive,
            "healthy": healthy,
        }
    return {
        "state_dir": str(state),
        "status": lab.get("status"),
        "all_healthy": bool(rows) and all(r["healthy"] for r in rows.values()),
        "services": rows,
    }
