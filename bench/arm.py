"""The Site Recovery control plane through the real SDK: get one protected item (p50, p99),
list 500 protected items, and enable replication -> `.result()` with the SDK's default
polling interval. Prints figures; asserts nothing.

    .venv/bin/python -m bench arm

A lab of its own (Entra and ARM only) in a temporary state directory. The 500 protected
items are made the real way, through the channel and the API: a configuration server (a
thread here, speaking the provider channel over HTTPS) registers, pushes an inventory of 500
VMs and answers the work items; the VMs are enabled by PUTs (the SDK's `begin_create` with
`polling=False`). The initial copy is not part of it: the items stay InitialReplicationPending.

Baseline, same run, same client stack: `GET /_lab/health` through the SDK's pipeline (TLS,
bearer token, policies), which bounds what any ARM call can cost here.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml
from azure.core.rest import HttpRequest
from azure.identity import ClientSecretCredential
from azure.mgmt.recoveryservicessiterecovery import SiteRecoveryManagementClient
from azure.mgmt.recoveryservicessiterecovery import models as m

from lab import launcher
from lab.topology import TOPOLOGY_DIR

from ._util import row

ITEMS = 500
SAMPLES = 200
API = "api-version=2025-08-01"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


class ConfigurationServer:
    """Just enough of a configuration server: registers, reports, answers work items."""

    def __init__(self, lab: dict, credentials_file: Path, credential):
        self.url = lab["services"]["arm"]["url"]
        self.ca = lab["ca_cert"]
        self.vault = json.loads(credentials_file.read_text())
        self.credential = credential
        self.fabric = "cs-bench"
        self.ps_id = "PS-BENCH"
        self.session = requests.Session()
        self._threads: list[threading.Thread] = []
        self._stops: list[threading.Event] = []
        v = self.vault
        self.vault_path = (
            f"/subscriptions/{v['subscriptionId']}/resourceGroups/{v['resourceGroup']}"
            f"/providers/Microsoft.RecoveryServices/vaults/{v['vaultName']}"
        )
        self.channel = f"{self.vault_path}/replicationFabrics/{self.fabric}/drlabProvider"

    def call(self, method: str, path: str, body=None, timeout: float = 60) -> requests.Response:
        token = self.credential.get_token("https://management.azure.com/.default").token
        sep = "&" if "?" in path else "?"
        resp = self.session.request(
            method,
            f"{self.url}{path}{sep}{API}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            verify=self.ca,
            timeout=timeout,
        )
        resp.raise_for_status()
        return resp

    def register(self) -> None:
        custom = {
            "instanceType": "VMware",
            "registrationKey": self.vault["registrationKey"],
            "hostName": "cs-bench.lab.local",
            "agentVersion": "9.60.0.0",
        }
        resp = self.call(
            "PUT",
            f"{self.vault_path}/replicationFabrics/{self.fabric}",
            {"properties": {"customDetails": custom}},
        )
        status_url = resp.headers["Azure-AsyncOperation"].replace(self.url, "").split("?")[0]
        while self.call("GET", status_url).json()["status"] == "InProgress":
            time.sleep(0.1)
        ps = {
            "id": self.ps_id,
            "name": "cs-bench (built-in)",
            "cacheTotalBytes": 2**40,
            "cacheFreeBytes": 2**39,
        }
        self.call("POST", f"{self.channel}/heartbeat", {"health": "Normal", "processServers": [ps]})

    def serve(self, full_reports: bool) -> threading.Event:
        """Answer work items in a thread until the returned event is set."""
        stop = threading.Event()

        def report(item_id: str, body: dict) -> None:
            self.call("POST", f"{self.channel}/workItems/{item_id}", body)

        def loop():
            while not stop.is_set():
                try:
                    items = self.call("GET", f"{self.channel}/workItems?waitSeconds=1").json()
                except requests.RequestException:
                    if stop.wait(0.2):
                        return
                    continue
                for item in items["value"]:
                    if full_reports:  # every task, as a real configuration server reports
                        for task in item["tasks"]:
                            report(item["id"], {"task": task["name"], "state": "Succeeded"})
                    report(item["id"], {"state": "Succeeded"})

        self._threads.append(threading.Thread(target=loop, daemon=True))
        self._threads[-1].start()
        self._stops.append(stop)
        return stop

    def stop_all(self) -> None:
        for stop in self._stops:
            stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def small_topology(directory: Path) -> Path:
    default = yaml.safe_load((TOPOLOGY_DIR / "default.yaml").read_text())
    data = {k: default[k] for k in ("clock", "entra", "azure", "storage")}
    data.update(name="bench-arm", services={"azurite": {"enabled": False}})
    path = directory / "bench-arm.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def credential(lab: dict, principal: str) -> ClientSecretCredential:
    c = lab["credentials"][principal]
    return ClientSecretCredential(
        lab["tenant_id"],
        c["client_id"],
        c["client_secret"],
        authority=lab["services"]["entra"]["url"],
        disable_instance_discovery=True,
        connection_verify=lab["ca_cert"],
    )


def vm(i: int) -> dict:
    uid = str(uuid.UUID(int=i + 1))
    return {
        "instanceUuid": uid,
        "name": f"vm-{i:03d}",
        "osType": "Linux",
        "ipAddresses": [f"10.10.{i // 250}.{i % 250 + 1}"],
        "disks": [{"id": f"{uid}:disk-0", "capacityInBytes": 4 * 2**30}],
    }


def enable_input(sub: str, policy_id: str, item_id: str, ps_id: str) -> m.EnableProtectionInput:
    account = (
        f"/subscriptions/{sub}/resourceGroups/drlab-rg/providers/Microsoft.Storage/"
        "storageAccounts/drlabcache"
    )
    return m.EnableProtectionInput(
        properties=m.EnableProtectionInputProperties(
            policy_id=policy_id,
            protectable_item_id=item_id,
            provider_specific_details=m.InMageAzureV2EnableProtectionInput(
                process_server_id=ps_id,
                log_storage_account_id=account,
                target_azure_v2_resource_group_id=f"/subscriptions/{sub}/resourceGroups/drlab-target",
            ),
        )
    )


def run(state: Path) -> None:
    lab = launcher.up(str(small_topology(state.parent)), state)
    creds_file = state / "services" / "arm" / "vault.credentials"
    client = SiteRecoveryManagementClient(
        credential(lab, "operator"),
        lab["subscription_id"],
        base_url=lab["services"]["arm"]["url"],
        connection_verify=lab["ca_cert"],
    )
    cs = ConfigurationServer(lab, creds_file, credential(lab, "configuration-server"))
    cs.register()
    try:
        measure(lab, client, cs)
    finally:
        cs.stop_all()


def measure(lab: dict, client: SiteRecoveryManagementClient, cs: ConfigurationServer) -> None:
    sub, rg, vault = lab["subscription_id"], lab["resource_group"], lab["vault"]
    quick = cs.serve(full_reports=False)  # only the outcome: the 500 enables go faster
    container = next(
        iter(
            client.replication_protection_containers.list_by_replication_fabrics(
                rg, vault, cs.fabric
            )
        )
    ).name
    policy = client.replication_policies.begin_create(
        rg,
        vault,
        "bench-policy",
        m.CreatePolicyInput(
            properties=m.CreatePolicyInputProperties(
                provider_specific_input=m.InMageAzureV2PolicyInput(multi_vm_sync_status="Disable")
            )
        ),
    ).result()
    client.replication_protection_container_mappings.begin_create(
        rg,
        vault,
        cs.fabric,
        container,
        "bench-mapping",
        m.CreateProtectionContainerMappingInput(
            properties=m.CreateProtectionContainerMappingInputProperties(
                target_protection_container_id="Microsoft Azure", policy_id=policy.id
            )
        ),
    ).result()
    client.replicationv_centers.begin_create(
        rg,
        vault,
        cs.fabric,
        "vcenter-bench",
        m.AddVCenterRequest(
            properties=m.AddVCenterRequestProperties(
                ip_address="127.0.0.1", process_server_id=cs.ps_id
            )
        ),
    ).result()
    cs.call(
        "PUT",
        f"{cs.channel}/inventory/vcenter-bench",
        {"virtualMachines": [vm(i) for i in range(ITEMS + 5)]},
    )
    items = list(
        client.replication_protectable_items.list_by_replication_protection_containers(
            rg, vault, cs.fabric, container
        )
    )

    t0 = time.perf_counter()

    def enable(item):
        client.replication_protected_items.begin_create(
            rg,
            vault,
            cs.fabric,
            container,
            item.name,
            enable_input(sub, policy.id, item.id, cs.ps_id),
            polling=False,
        )

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(enable, items[:ITEMS]))
    while any(
        True for _ in client.replication_jobs.list(rg, vault, filter="JobStatus eq 'InProgress'")
    ):
        time.sleep(0.2)
    setup = time.perf_counter() - t0

    # baseline: the same client stack, an endpoint that does nothing
    pipeline = client._client  # the SDK's own pipeline client (TLS, token, policies)
    health_url = f"{lab['services']['arm']['url']}/_lab/health"
    base = []
    for _ in range(SAMPLES):
        t = time.perf_counter()
        pipeline.send_request(HttpRequest("GET", health_url)).raise_for_status()
        base.append(time.perf_counter() - t)

    one = items[0].name
    gets = []
    for _ in range(SAMPLES):
        t = time.perf_counter()
        client.replication_protected_items.get(rg, vault, cs.fabric, container, one)
        gets.append(time.perf_counter() - t)

    lists = []
    for _ in range(5):
        t = time.perf_counter()
        count = sum(1 for _ in client.replication_protected_items.list(rg, vault))
        lists.append(time.perf_counter() - t)
    assert count == ITEMS, count

    quick.set()
    cs.serve(full_reports=True)  # the enable round trip with every task reported
    rounds = []
    for item in items[ITEMS : ITEMS + 5]:
        t = time.perf_counter()
        client.replication_protected_items.begin_create(
            rg,
            vault,
            cs.fabric,
            container,
            item.name,
            enable_input(sub, policy.id, item.id, cs.ps_id),
        ).result()
        rounds.append(time.perf_counter() - t)
    b50, b99 = statistics.median(base), percentile(base, 99)
    print(f"{ITEMS} protected items made through the channel and the API in {setup:.1f} s")
    print(
        row("baseline: GET /_lab/health, same SDK pipeline", f"p50 {ms(b50)}", "", f"p99 {ms(b99)}")
    )
    print(
        row(
            "get one protected item",
            f"p50 {ms(statistics.median(gets))}",
            "",
            f"p99 {ms(percentile(gets, 99))}",
        )
    )
    print(
        row(
            f"list {ITEMS} protected items (median of 5)",
            ms(statistics.median(lists)),
            "target <= 500 ms",
            f"{len(lists)} runs: " + ", ".join(ms(x) for x in lists),
        )
    )
    print(
        row(
            "enable -> .result() (median of 5)",
            f"{statistics.median(rounds):.2f} s",
            "target <= 3 s",
            "default polling interval; Retry-After: 1",
        )
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="drlab-bench-arm-") as tmp:
        state = Path(tmp) / "state"
        try:
            run(state)
        finally:
            if (state / "lab.json").exists():
                launcher.down(state)


if __name__ == "__main__":
    main()
