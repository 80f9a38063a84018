"""The process server's life: registration with the configuration server, health reports,
the work it is given (push installs), and the uploader.

It registers with the configuration-server passphrase (read from the configuration server's
data directory, as an admin types it at install), and gets back its key, the key that agent
tokens are signed with, and the vault's replication key. Until then it is not ready.
"""

from __future__ import annotations

import base64
import logging
import threading
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from components.http_client import JsonClient, ServerError
from lab.kit import links
from lab.kit.units import parse_size

from . import push_install
from .cache import DurableCache
from .health import assess
from .uploader import CACHE_CONTAINER, Uploader

log = logging.getLogger(__name__)


class ProcessServer:
    def __init__(self, ctx):
        self.ctx = ctx
        self.name = ctx.name
        onprem = ctx.topology["onprem"]
        self.spec = next(p for p in onprem["process_servers"] if p["name"] == ctx.name)
        cs = onprem["configuration_server"]
        self.cs_name = cs["name"]
        self.heartbeat_seconds = float(cs["heartbeat_interval_seconds"])
        self.cache = DurableCache(ctx.data_dir / "cache", parse_size(self.spec["cache_capacity"]))
        self.cs = JsonClient(ctx.url(self.cs_name), ctx.ca_cert)
        self.server_id: str | None = None
        self.agent_token_key: bytes | None = None
        self.replication_key: bytes | None = None
        self.vms_seen: set[str] = set()
        self.push_installs = {"succeeded": 0, "failed": 0}
        account = next(a for a in ctx.topology["storage"]["accounts"] if a["role"] == "cache")
        # Uploads cross the process server -> Azure link (a proxy, when the lab has links).
        blobs = BlobServiceClient(
            f"{links.route(ctx.lab, ctx.name, 'azurite', ctx.topology)}/{account['name']}",
            credential=ctx.credential("process-server"),
            connection_verify=ctx.ca_cert,
        )
        self.uploader = Uploader(
            self.cache,
            blobs.get_container_client(CACHE_CONTAINER),
            lambda: self.replication_key,
            threads=int(self.spec["upload_threads"]),
        )
        self.stop_event = ctx.stop_event
        self.registered = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ProcessServer:
        self.uploader.start()
        for target, name in ((self._health_loop, "health"), (self._work_loop, "work")):
            threading.Thread(target=target, name=name, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.uploader.stop()
        self.cs.close()

    def ready(self) -> tuple[bool, str]:
        if not self.registered.is_set():
            return False, f"not yet registered with configuration server {self.cs_name}"
        return True, "registered"

    # -- registration and health ------------------------------------------------------------
    def _passphrase(self) -> str:
        path = Path(self.ctx.state_dir) / "services" / self.cs_name / "passphrase"
        return path.read_text().strip()

    def _register(self) -> None:
        reply = self.cs.call(
            "POST",
            "/v1/process-servers/register",
            {
                "name": self.name,
                # What agents are told to use: the agent -> process server link if there is one.
                "url": links.route(self.ctx.lab, "agent", self.name, self.ctx.topology),
                "ip": self.spec["ip"],
                "passphrase": self._passphrase(),
            },
        )
        self.server_id = reply["id"]
        self.cs.authorization = f"Server {reply['id']}:{reply['key']}"
        self.agent_token_key = base64.b64decode(reply["agent_token_key"])
        if reply.get("replication_data_key"):
            self.replication_key = base64.b64decode(reply["replication_data_key"])
        self.registered.set()
        self.uploader.notify()
        log.info("registered with configuration server %s as %s", self.cs_name, self.server_id)

    def health(self) -> dict:
        throughput = self.uploader.throughput.rate()
        report = assess(
            self.cache.capacity, self.cache.free_bytes, self.uploader.backlog_bytes, throughput
        )
        return {
            "cache_capacity": self.cache.capacity,
            "cache_used": self.cache.used_bytes,
            "cache_free": self.cache.free_bytes,
            "backlog_bytes": self.uploader.backlog_bytes,
            "throughput_bps": throughput,
            "uploaded_bytes": self.uploader.uploaded_bytes,
            "status": report.status,
            "alerts": list(report.alerts),
            "upload_error": self.uploader.last_error,
            "replicating_vms": len(self.vms_seen),
            "push_installs": dict(self.push_installs),
        }

    def _health_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                if not self.registered.is_set() or (
                    self.replication_key is None and self.server_id is not None
                ):
                    self._register()
                self.cs.call("POST", f"/v1/process-servers/{self.server_id}/health", self.health())
                wait = self.heartbeat_seconds
            except FileNotFoundError:
                log.info("waiting for configuration server %s to be installed", self.cs_name)
                wait = 0.2
            except ServerError as exc:
                log.warning("configuration server: %s", exc)
                if exc.status == 401:
                    self.registered.clear()
                wait = 0.5 if not self.registered.is_set() else self.heartbeat_seconds
            self.stop_event.wait(wait)

    # -- work from the configuration server -------------------------------------------------
    def _work_loop(self) -> None:
        while not self.stop_event.is_set():
            if not self.registered.wait(0.5):
                continue
            try:
                reply = self.cs.call("GET", f"/v1/process-servers/{self.server_id}/work?wait=10")
            except ServerError as exc:
                log.warning("work poll: %s", exc)
                self.stop_event.wait(1.0)
                continue
            for item in reply.get("items", []):
                threading.Thread(target=self._do, args=(item,), daemon=True).start()

    def _do(self, item: dict) -> None:
        def report(step: str, state: str, error: str | None = None) -> None:
            try:
                self.cs.call(
                    "POST",
                    f"/v1/process-servers/{self.server_id}/work/{item['id']}",
                    {"step": step, "state": state, "error": error},
                )
            except ServerError as exc:
                log.warning("could not report %s of %s: %s", step, item["id"], exc)

        if item.get("kind") != "push-install":
            report("Unknown work", "Failed", f"a process server does not do {item.get('kind')!r}")
            return
        mobility = self.ctx.topology["onprem"].get("mobility") or {}
        limit = parse_size(mobility.get("journal_limit", "512MiB"))
        item = {**item, "journal_limit_mb": max(1, limit >> 20)}
        try:
            push_install.push_install(item, self.ctx.ca_cert, report)
            self.push_installs["succeeded"] += 1
            report("Push install", "Succeeded")
        except push_install.PushInstallFailed as exc:
            self.push_installs["failed"] += 1
            log.warning("push install into %s failed: %s", item.get("vm_name"), exc)
            report(exc.step, "Failed", str(exc))
        except Exception as exc:  # report anything else too: the job must not hang
            self.push_installs["failed"] += 1
            log.exception("push install into %s failed", item.get("vm_name"))
            report("Push install", "Failed", f"{type(exc).__name__}: {exc}")
