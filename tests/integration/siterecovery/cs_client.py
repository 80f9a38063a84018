"""An in-test "configuration server": plain HTTPS calls on the provider channel.

It registers with the vault credentials file, sends heartbeats, pushes inventory and works
the queue of work items (in a background thread, answering each with a handler). The real
configuration server (components/config_server) does the same with real effects; this one
only says it did.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import requests

API = "api-version=2025-08-01"
ARM_SCOPE = "https://management.azure.com/.default"


def vm(
    name: str,
    *,
    os_type: str = "Linux",
    power: str = "poweredOn",
    disks=(4, 8),
    ip: str = "10.10.0.50",
) -> dict:
    """A discovered VM as the configuration server reports it."""
    uid = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.{uuid.uuid4()}"))
    return {
        "instanceUuid": uid,
        "name": name,
        "osType": os_type,
        "powerState": power,
        "ipAddresses": [ip],
        "cpuCount": 2,
        "memoryMB": 4096,
        "disks": [
            {"id": f"{uid}:disk-{i}", "name": f"{name}_{i}.vmdk", "capacityInBytes": gib * 2**30}
            for i, gib in enumerate(disks)
        ],
        "nics": [
            {
                "id": "4000",
                "macAddress": "00:50:56:aa:bb:01",
                "network": "VM Network",
                "ipAddress": ip,
            }
        ],
        "datastores": ["datastore1"],
    }


class ConfigurationServer:
    def __init__(
        self,
        arm_url: str,
        ca: str,
        credential,
        credentials_file: str | Path,
        *,
        fabric: str | None = None,
        host_name: str = "cs-01.lab.local",
        recorder: Callable | None = None,
    ):
        self.arm_url = arm_url.rstrip("/")
        self.ca = ca
        self.credential = credential
        self.vault = json.loads(Path(credentials_file).read_text())
        self.fabric = fabric or f"cs-{uuid.uuid4().hex[:12]}"
        self.host_name = host_name
        self.recorder = recorder
        self.session = requests.Session()
        self.session.verify = ca
        self.ps_id = f"PS-{uuid.uuid4().hex[:8].upper()}"
        self.mt_id = f"MT-{uuid.uuid4().hex[:8].upper()}"
        self.handled: list[dict] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def vault_path(self) -> str:
        v = self.vault
        return (
            f"/subscriptions/{v['subscriptionId']}/resourceGroups/{v['resourceGroup']}"
            f"/providers/Microsoft.RecoveryServices/vaults/{v['vaultName']}"
        )

    @property
    def channel(self) -> str:
        return f"{self.vault_path}/replicationFabrics/{self.fabric}/drlabProvider"

    def call(
        self, method: str, path: str, body=None, *, timeout: float = 30.0, token: str | None = None
    ) -> requests.Response:
        url = path if path.startswith("https://") else f"{self.arm_url}{path}"
        url += ("&" if "?" in url else "?") + API if "api-version" not in url else ""
        token = token or self.credential.get_token(ARM_SCOPE).token
        resp = self.session.request(
            method,
            url,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            verify=self.ca,
        )
        if self.recorder is not None:
            self.recorder(method, url, resp.status_code, resp.content)
        return resp

    def wait_lro(self, resp: requests.Response, timeout: float = 20.0) -> dict:
        assert resp.status_code == 202, resp.text
        status_url = resp.headers["Azure-AsyncOperation"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.call("GET", status_url).json()
            if status["status"] in ("Succeeded", "Failed", "Canceled"):
                return status
            time.sleep(float(resp.headers.get("Retry-After", "1")) / 10)
        raise AssertionError(f"operation {status_url} did not finish within {timeout} s")

    # -- the channel --------------------------------------------------------------------------
    def register(self, key: str | None = None) -> dict:
        body = {
            "properties": {
                "customDetails": {
                    "instanceType": "VMware",
                    "registrationKey": key or self.vault["registrationKey"],
                    "hostName": self.host_name,
                    "ipAddress": "10.10.0.5",
                    "agentVersion": "9.60.0.0",
                }
            }
        }
        resp = self.call("PUT", f"{self.vault_path}/replicationFabrics/{self.fabric}", body)
        if resp.status_code != 202:
            return resp
        status = self.wait_lro(resp)
        assert status["status"] == "Succeeded", status
        return status

    def heartbeat(self, **overrides) -> dict:
        body = {
            "health": "Normal",
            "hostName": self.host_name,
            "ipAddress": "10.10.0.5",
            "agentVersion": "9.60.0.0",
            "cpuLoadPercent": 12,
            "processServers": [
                {
                    "id": self.ps_id,
                    "name": f"{self.host_name} (built-in)",
                    "ipAddress": "10.10.0.5",
                    "agentVersion": "9.60.0.0",
                    "cacheTotalBytes": 600 * 2**30,
                    "cacheFreeBytes": 500 * 2**30,
                    "uploadBacklogBytes": 0,
                    "throughputBytesPerSecond": 0,
                    "health": "Normal",
                }
            ],
            "masterTargets": [
                {
                    "id": self.mt_id,
                    "name": self.host_name,
                    "ipAddress": "10.10.0.5",
                    "osType": "Windows",
                }
            ],
            "runAsAccounts": [
                {"accountId": "1", "accountName": "vcenter-admin"},
                {"accountId": "2", "accountName": "guest-admin"},
            ],
            "mobilityAgents": [],
            "vCenters": [],
        }
        body.update(overrides)
        resp = self.call("POST", f"{self.channel}/heartbeat", body)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def push_inventory(self, vcenter: str, vms: list[dict]) -> requests.Response:
        return self.call("PUT", f"{self.channel}/inventory/{vcenter}", {"virtualMachines": vms})

    def work_items(self, wait: float = 0) -> list[dict]:
        resp = self.call(
            "GET", f"{self.channel}/workItems?waitSeconds={wait}&{API}", timeout=wait + 30
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["value"]

    def report(self, item_id: str, **update) -> requests.Response:
        return self.call("POST", f"{self.channel}/workItems/{item_id}", update)

    # -- working the queue --------------------------------------------------------------------
    @staticmethod
    def succeed(cs: ConfigurationServer, item: dict) -> None:
        """Report every task of the item done, then the item."""
        for task in item["tasks"]:
            cs.report(item["id"], task=task["friendlyName"], state="InProgress", progress=50)
            cs.report(item["id"], task=task["friendlyName"], state="Succeeded")
        result = {"agentVersion": "9.60.0.0"} if item["kind"] == "EnableProtection" else {}
        cs.report(item["id"], state="Succeeded", result=result)

    def serve(
        self, handler: Callable[[ConfigurationServer, dict], None] | None = None
    ) -> ConfigurationServer:
        handler = handler or self.succeed

        def loop():
            while not self._stop.is_set():
                try:
                    items = self.work_items(wait=2)
                except (requests.RequestException, AssertionError):
                    if self._stop.wait(0.2):
                        return
                    continue
                for item in items:
                    self.handled.append(item)
                    handler(self, item)

        self._thread = threading.Thread(target=loop, name=f"cs-{self.fabric}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
