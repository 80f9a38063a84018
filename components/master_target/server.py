"""The master target's registration and health reports."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

from components.http_client import JsonClient, ServerError
from lab.kit.units import parse_size

log = logging.getLogger(__name__)


class MasterTarget:
    def __init__(self, ctx):
        self.ctx = ctx
        self.name = ctx.name
        onprem = ctx.topology["onprem"]
        self.spec = next(m for m in onprem["master_targets"] if m["name"] == ctx.name)
        cs = onprem["configuration_server"]
        self.cs_name = cs["name"]
        self.heartbeat_seconds = float(cs["heartbeat_interval_seconds"])
        self.cs = JsonClient(ctx.url(self.cs_name), ctx.ca_cert)
        self.retention_dir = ctx.data_dir / "retention"
        self.retention_dir.mkdir(exist_ok=True)
        self.retention_capacity = parse_size(self.spec["retention_capacity"])
        self.server_id: str | None = None
        self.registered = threading.Event()
        self.stop_event = ctx.stop_event

    def start(self) -> MasterTarget:
        threading.Thread(target=self._loop, name="health", daemon=True).start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.cs.close()

    def ready(self) -> tuple[bool, str]:
        if not self.registered.is_set():
            return False, f"not yet registered with configuration server {self.cs_name}"
        return True, "registered"

    def health(self) -> dict:
        used = sum(p.stat().st_size for p in self.retention_dir.rglob("*") if p.is_file())
        volume = "R:" if self.spec["os_family"] == "windows" else "/mnt/retention"
        datastores = []
        vcenter = self.ctx.topology.get("vcenter") or {}
        for dc in vcenter.get("datacenters", []):
            for ds in dc["datastores"]:
                capacity = parse_size(ds["capacity"])
                root = Path(self.ctx.state_dir) / "datastores" / ds["name"]
                allocated = 0
                if root.exists():
                    allocated = sum(
                        p.stat().st_blocks * 512 for p in root.rglob("*") if p.is_file()
                    )
                datastores.append(
                    {
                        "symbolicName": ds["name"],
                        "uuid": ds["name"],
                        "capacity": str(capacity),
                        "freeSpace": str(max(capacity - allocated, 0)),
                        "type": "VMFS",
                    }
                )
        free_disk = shutil.disk_usage(self.retention_dir).free
        return {
            "retention_volumes": [
                {
                    "volumeName": volume,
                    "capacityInBytes": self.retention_capacity,
                    "freeSpaceInBytes": max(min(self.retention_capacity - used, free_disk), 0),
                    "thresholdPercentage": 80,
                }
            ],
            "datastores": datastores,
            "disk_count": 1,
        }

    def _passphrase(self) -> str:
        path = Path(self.ctx.state_dir) / "services" / self.cs_name / "passphrase"
        return path.read_text().strip()

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                if not self.registered.is_set():
                    reply = self.cs.call(
                        "POST",
                        "/v1/master-targets/register",
                        {
                            "name": self.name,
                            "url": self.ctx.url(self.name),
                            "ip": self.spec["ip"],
                            "os_family": self.spec["os_family"],
                            "passphrase": self._passphrase(),
                        },
                    )
                    self.server_id = reply["id"]
                    self.cs.authorization = f"Server {reply['id']}:{reply['key']}"
                    self.registered.set()
                    log.info("registered with configuration server %s", self.cs_name)
                self.cs.call("POST", f"/v1/master-targets/{self.server_id}/health", self.health())
                wait = self.heartbeat_seconds
            except FileNotFoundError:
                wait = 0.2  # the configuration server is not installed yet
            except ServerError as exc:
                log.warning("configuration server: %s", exc)
                if exc.status == 401:
                    self.registered.clear()
                wait = 0.5 if not self.registered.is_set() else self.heartbeat_seconds
            self.stop_event.wait(wait)
