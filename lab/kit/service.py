"""How a lab service process starts: its context (lab, topology, clock, PKI) and HTTPS serving.

The launcher starts every service as `python -m <module>` with three environment variables:
`DRLAB_STATE_DIR`, `DRLAB_SERVICE` (its name in lab.json) and, for HTTP services,
`DRLAB_LISTEN_FD`: a socket already bound to 127.0.0.1 on the port the launcher chose, so the
port is known before the process runs and nothing races for it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from werkzeug.serving import make_server

from . import logs
from .clock import CLOCK_FILE, LabClock
from .keepalive import KeepAliveHandler
from .labinfo import read_lab, read_topology
from .pki import CertPaths, LabPKI
from .tokens import TokenValidator

log = logging.getLogger(__name__)


class ServiceContext:
    """Everything a service knows about the lab it runs in."""

    def __init__(self, state_dir: str | os.PathLike, name: str):
        self.name = name
        self.state_dir = Path(state_dir).resolve()
        self.lab = read_lab(self.state_dir)
        self.topology = read_topology(self.state_dir)
        self.clock = LabClock(self.state_dir / CLOCK_FILE)
        self.pki = LabPKI(self.state_dir / "pki")
        self.data_dir = self.state_dir / "services" / name
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stop_event = threading.Event()

    @classmethod
    def from_env(cls) -> ServiceContext:
        return cls(os.environ["DRLAB_STATE_DIR"], os.environ["DRLAB_SERVICE"])

    # -- where things are ---------------------------------------------------------------------
    @property
    def ca_cert(self) -> str:
        """The lab CA alone: what services trust when they call each other."""
        return str(self.pki.ca_cert_path)

    @property
    def cert(self) -> CertPaths:
        return CertPaths(self.pki.dir / f"{self.name}.pem", self.pki.dir / f"{self.name}.key")

    @property
    def service(self) -> dict:
        return self.lab["services"][self.name]

    def url(self, service: str) -> str:
        return self.lab["services"][service]["url"]

    @property
    def tenant_id(self) -> str:
        return self.topology["entra"]["tenant_id"]

    @property
    def authority(self) -> str:
        return self.url("entra")

    def principal(self, name: str) -> dict:
        for p in self.topology["entra"]["principals"]:
            if p["name"] == name:
                return p
        raise KeyError(f"no service principal named {name!r} in the topology")

    # -- tokens -------------------------------------------------------------------------------
    def token_validator(self, *audiences: str) -> TokenValidator:
        return TokenValidator(
            tenant_id=self.tenant_id,
            audiences=audiences,
            jwks_url=f"{self.authority}/{self.tenant_id}/discovery/v2.0/keys",
            ca_bundle=self.ca_cert,
        )

    def credential(self, principal: str):
        """An azure-identity credential for one of the topology's service principals."""
        from azure.identity import ClientSecretCredential

        p = self.principal(principal)
        return ClientSecretCredential(
            self.tenant_id,
            p["client_id"],
            p["secret"],
            authority=self.authority,
            disable_instance_discovery=True,
            connection_verify=self.ca_cert,
        )

    @cached_property
    def log(self) -> logging.Logger:
        return logging.getLogger(self.name)


def tls_context(cert: CertPaths) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert.cert), str(cert.key))
    return ctx


def listening_socket(extra: str | None = None) -> socket.socket:
    """The socket the launcher bound for this service (or one of its extra ports)."""
    var = "DRLAB_LISTEN_FD" if extra is None else f"DRLAB_LISTEN_FD_{extra.upper()}"
    return socket.socket(fileno=int(os.environ[var]))


def serve_http(ctx: ServiceContext, app, on_stop: Callable[[], None] | None = None) -> None:
    """Serve a WSGI app over HTTPS on the launcher's socket until SIGTERM or SIGINT."""
    sock = listening_socket()
    host, port = sock.getsockname()[:2]
    server = make_server(
        host,
        port,
        app,
        threaded=True,
        request_handler=KeepAliveHandler,
        ssl_context=tls_context(ctx.cert),
        fd=sock.fileno(),
    )
    sock.detach()  # the server owns the descriptor now

    def _stop(signum, frame):
        ctx.stop_event.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("%s listening on https://%s:%s", ctx.name, host, port)
    try:
        server.serve_forever(poll_interval=0.05)  # how soon a SIGTERM is noticed
    finally:
        ctx.stop_event.set()
        if on_stop:
            on_stop()
        server.server_close()
        log.info("%s stopped", ctx.name)


def run(build: Callable[[ServiceContext], tuple]) -> None:
    """Entry point of a service's `__main__`: build(ctx) -> (wsgi_app, on_stop or None)."""
    ctx = ServiceContext.from_env()
    logs.configure(ctx.name)
    try:
        app, on_stop = build(ctx)
    except Exception:
        log.exception("%s failed to start", ctx.name)
        sys.exit(1)
    serve_http(ctx, app, on_stop)
