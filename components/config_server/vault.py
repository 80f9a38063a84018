"""The configuration server's side of the vault: registration and the provider channel.

It uses the Site Recovery SDK (its pipeline: bearer tokens from the lab's Entra for the
configuration server's own principal, retries, LRO polling) for everything, and the SDK's
`send_request` for the lab's provider-channel routes, which the SDK has no methods for.
See docs/site-recovery.md, "The provider channel".
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from azure.core.rest import HttpRequest
from azure.mgmt.recoveryservicessiterecovery import SiteRecoveryManagementClient

from lab.kit.lro import QuickPolling

log = logging.getLogger(__name__)

API_VERSION = "2025-08-01"


class VaultError(Exception):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class VaultCredentials:
    """The vault credentials file an admin downloads from the portal."""

    def __init__(self, path: Path):
        data = json.loads(path.read_text())
        self.vault = data["vaultName"]
        self.subscription_id = data["subscriptionId"]
        self.resource_group = data["resourceGroup"]
        self.registration_key = data["registrationKey"]
        self.arm_url = data["armUrl"]
        self.vault_id = data["vaultId"]


class VaultClient:
    def __init__(self, creds: VaultCredentials, credential, ca_file: str, fabric: str):
        self.creds = creds
        self.fabric = fabric
        self.sdk = SiteRecoveryManagementClient(
            credential, creds.subscription_id, base_url=creds.arm_url, connection_verify=ca_file
        )
        self._vault_path = (
            f"/subscriptions/{creds.subscription_id}/resourceGroups/{creds.resource_group}"
            f"/providers/Microsoft.RecoveryServices/vaults/{creds.vault}"
        )
        self._channel = f"{self._vault_path}/replicationFabrics/{fabric}/drlabProvider"

    def close(self) -> None:
        self.sdk.close()

    # -- registration -------------------------------------------------------------------------
    def register(self, host_name: str, ip_address: str, agent_version: str) -> dict:
        body = {
            "properties": {
                "customDetails": {
                    "instanceType": "VMware",
                    "registrationKey": self.creds.registration_key,
                    "hostName": host_name,
                    "ipAddress": ip_address,
                    "agentVersion": agent_version,
                }
            }
        }
        poller = self.sdk.replication_fabrics.begin_create(
            self.creds.resource_group, self.creds.vault, self.fabric, body, polling=QuickPolling()
        )
        return poller.result().as_dict()

    # -- the provider channel ---------------------------------------------------------------
    def _call(self, method: str, path: str, body=None, timeout: float = 30.0):
        request = HttpRequest(
            method,
            f"{self._channel}{path}",
            params={"api-version": API_VERSION},
            json=body,
        )
        try:
            response = self.sdk.send_request(request, connection_timeout=10, read_timeout=timeout)
        except Exception as exc:  # transport errors: the caller retries
            raise VaultError(f"{method} {path}: {exc}") from exc
        if response.status_code >= 400:
            try:
                err = response.json()["error"]
                message = f"{err.get('code')}: {err.get('message')}"
            except (ValueError, KeyError, TypeError):
                message = response.text()[:300]
            raise VaultError(
                f"{method} {path}: {response.status_code} {message}", response.status_code
            )
        return response.json() if response.content else {}

    def heartbeat(self, body: dict) -> dict:
        return self._call("POST", "/heartbeat", body)

    def put_inventory(self, vcenter: str, vms: list[dict]) -> dict:
        return self._call("PUT", f"/inventory/{vcenter}", {"virtualMachines": vms})

    def work_items(self, wait_seconds: int) -> list[dict]:
        reply = self._call(
            "GET", f"/workItems?waitSeconds={wait_seconds}", timeout=wait_seconds + 30
        )
        return reply.get("value", [])

    def work_item(self, item_id: str) -> dict:
        return self._call("GET", f"/workItems/{item_id}")

    def report(self, item_id: str, report: dict) -> dict:
        return self._call("POST", f"/workItems/{item_id}", report)
