"""A small lab for the Site Recovery worker: Entra, ARM, both Azurites, Service Bus, mail and
the worker (no vCenter, no on-premises roles). An in-test configuration server registers and
enables protection through the provider channel; the tests upload what a process server
would (plans, sealed logs, manifests) and watch the worker through the SDK and its routes."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from azure.mgmt.recoveryservicessiterecovery import SiteRecoveryManagementClient
from azure.mgmt.recoveryservicessiterecovery import models as m
from azure.storage.blob import BlobServiceClient

from lab import launcher
from lab.kit import wire
from lab.kit.vaultkeys import replication_data_key
from lab.topology import TOPOLOGY_DIR
from tests.helpers import wait_for
from tests.integration.siterecovery.cs_client import ConfigurationServer, vm
from tests.unit.siterecovery_worker.source import SourceVm, blob_name

MiB = 2**20
CACHE = "asr-cache"


def worker_topology(directory: Path) -> Path:
    default = yaml.safe_load((TOPOLOGY_DIR / "default.yaml").read_text())
    keep = ("clock", "entra", "azure", "storage", "servicebus", "mail")
    data = {k: default[k] for k in keep if k in default}
    data["name"] = "sr-worker-test"
    path = directory / "sr-worker-test.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class WorkerLab:
    """A running lab and what the tests do with it."""

    def __init__(self, state_dir: Path, info: dict):
        self.state_dir = state_dir
        self.info = info
        self.topology = json.loads((state_dir / "topology.json").read_text())
        self.session = requests.Session()
        self.session.verify = info["ca_cert"]
        self.cs: ConfigurationServer | None = None
        self.policy = None

    # -- endpoints ------------------------------------------------------------------------------
    @property
    def ca(self) -> str:
        return self.info["ca_cert"]

    def url(self, service: str) -> str:
        return self.info["services"][service]["url"]

    def credential(self, principal: str = "operator"):
        from azure.identity import ClientSecretCredential

        cred = self.info["credentials"][principal]
        return ClientSecretCredential(
            self.info["tenant_id"],
            cred["client_id"],
            cred["client_secret"],
            authority=self.url("entra"),
            disable_instance_discovery=True,
            connection_verify=self.ca,
        )

    @property
    def vault(self) -> tuple[str, str]:
        return self.info["resource_group"], self.info["vault"]

    def sdk(self) -> SiteRecoveryManagementClient:
        return SiteRecoveryManagementClient(
            self.credential(),
            self.info["subscription_id"],
            base_url=self.url("arm"),
            connection_verify=self.ca,
        )

    def account(self, role: str) -> dict:
        return next(a for a in self.topology["storage"]["accounts"] if a["role"] == role)

    def blobs(self, role: str) -> BlobServiceClient:
        account = self.account(role)
        service = "azurite" if role == "cache" else "azurite-disks"
        return BlobServiceClient(
            f"{self.url(service)}/{account['name']}",
            credential={"account_name": account["name"], "account_key": account["key"]},
            connection_verify=self.ca,
        )

    def cache(self):
        container = self.blobs("cache").get_container_client(CACHE)
        with contextlib.suppress(Exception):
            container.create_container()
        return container

    @property
    def key(self) -> bytes:
        credentials = self.state_dir / "services" / "arm" / "vault.credentials"
        return replication_data_key(json.loads(credentials.read_text())["registrationKey"])

    def worker(self, method: str, path: str, **kw) -> requests.Response:
        return self.session.request(
            method, f"{self.url('sr-worker')}{path}", timeout=60, verify=self.ca, **kw
        )

    def state(self) -> dict:
        return self.worker("GET", "/_lab/state").json()

    def vm_state(self, vm_id: str) -> dict | None:
        return next((v for v in self.state()["vms"] if v["vm_id"] == vm_id), None)

    # -- monitoring -----------------------------------------------------------------------------
    def receive(self, entity: str, timeout: int = 1) -> list[tuple[str, dict]]:
        """Every message waiting in a queue or subscription (peek-lock, then complete)."""
        from lab.kit.monitoring import sas_token

        rule = self.topology["servicebus"]["sas_rules"][0]
        bus = self.url("servicebus")
        auth = {"Authorization": sas_token(bus, rule["name"], rule["key"])}
        out = []
        while True:
            got = self.session.post(
                f"{bus}/{entity}/messages/head?timeout={timeout}",
                headers=auth,
                timeout=30,
                verify=self.ca,
            )
            if got.status_code == 204:
                return out
            assert got.status_code == 201, got.text
            label = json.loads(got.headers["BrokerProperties"]).get("Label")
            out.append((label, json.loads(got.content)))
            self.session.delete(got.headers["Location"], headers=auth, timeout=30, verify=self.ca)
            timeout = 0

    def mails(self, words: str) -> list[dict]:
        listed = self.session.get(f"{self.url('mail')}/messages", timeout=10, verify=self.ca)
        listed = listed.json()
        return [m for m in listed if words in m["subject"]]

    # -- the vault side -------------------------------------------------------------------------
    def site(self):
        """A registered configuration server, a vCenter and a policy mapped (once per lab)."""
        if self.cs is not None:
            return self.cs
        cs = ConfigurationServer(
            self.url("arm"),
            self.ca,
            self.credential("configuration-server"),
            self.state_dir / "services" / "arm" / "vault.credentials",
        )
        cs.register()
        cs.heartbeat()
        cs.serve()
        sdk = self.sdk()
        rg, vault = self.vault
        container = next(
            iter(
                sdk.replication_protection_containers.list_by_replication_fabrics(
                    rg, vault, cs.fabric
                )
            )
        ).name
        policy = sdk.replication_policies.begin_create(
            rg,
            vault,
            "worker-policy",
            m.CreatePolicyInput(
                properties=m.CreatePolicyInputProperties(
                    provider_specific_input=m.InMageAzureV2PolicyInput(
                        recovery_point_history=24 * 60,
                        app_consistent_frequency_in_minutes=60,
                        crash_consistent_frequency_in_minutes=5,
                        recovery_point_threshold_in_minutes=15,
                        multi_vm_sync_status="Enable",
                    )
                )
            ),
        ).result()
        sdk.replication_protection_container_mappings.begin_create(
            rg,
            vault,
            cs.fabric,
            container,
            "worker-mapping",
            m.CreateProtectionContainerMappingInput(
                properties=m.CreateProtectionContainerMappingInputProperties(
                    target_protection_container_id="Microsoft Azure", policy_id=policy.id
                )
            ),
        ).result()
        sdk.replicationv_centers.begin_create(
            rg,
            vault,
            cs.fabric,
            "vcenter-01",
            m.AddVCenterRequest(
                properties=m.AddVCenterRequestProperties(
                    friendly_name="vcenter-01",
                    ip_address="127.0.0.1",
                    process_server_id=cs.ps_id,
                    port="443",
                    run_as_account_id="1",
                )
            ),
        ).result()
        cs.container = container
        self.cs, self.policy, self.inventory = cs, policy, []
        return cs

    def protect(self, name: str, disk_mib: tuple[int, ...]) -> dict:
        """A discovered VM with small disks, protected; returns its protectable item data."""
        cs = self.site()
        discovered = vm(name)
        for d, size in zip(discovered["disks"], disk_mib, strict=True):
            d["capacityInBytes"] = size * MiB
        self.inventory.append(discovered)
        assert cs.push_inventory("vcenter-01", self.inventory).status_code == 200
        sdk = self.sdk()
        rg, vault = self.vault
        sub = self.info["subscription_id"]
        item = sdk.replication_protectable_items.get(
            rg, vault, cs.fabric, cs.container, discovered["instanceUuid"]
        )
        sdk.replication_protected_items.begin_create(
            rg,
            vault,
            cs.fabric,
            cs.container,
            item.name,
            m.EnableProtectionInput(
                properties=m.EnableProtectionInputProperties(
                    policy_id=self.policy.id,
                    protectable_item_id=item.id,
                    provider_specific_details=m.InMageAzureV2EnableProtectionInput(
                        process_server_id=cs.ps_id,
                        master_target_id=cs.mt_id,
                        run_as_account_id="2",
                        log_storage_account_id=f"/subscriptions/{sub}/resourceGroups/{rg}/"
                        "providers/Microsoft.Storage/storageAccounts/drlabcache",
                        target_azure_v2_resource_group_id=f"/subscriptions/{sub}/"
                        "resourceGroups/dr-target",
                        target_azure_network_id=f"/subscriptions/{sub}/resourceGroups/dr-target/"
                        "providers/Microsoft.Network/virtualNetworks/dr-vnet",
                        target_azure_subnet_id="default",
                        target_azure_vm_name=name,
                    ),
                )
            ),
        ).result()
        return discovered

    def protected_item(self, vm_id: str):
        rg, vault = self.vault
        return self.sdk().replication_protected_items.get(
            rg, vault, self.cs.fabric, self.cs.container, vm_id
        )

    def recovery_points(self, vm_id: str) -> list:
        rg, vault = self.vault
        return list(
            self.sdk().recovery_points.list_by_replication_protected_items(
                rg, vault, self.cs.fabric, self.cs.container, vm_id
            )
        )

    def disable(self, vm_id: str) -> None:
        rg, vault = self.vault
        self.sdk().replication_protected_items.begin_delete(
            rg,
            vault,
            self.cs.fabric,
            self.cs.container,
            vm_id,
            m.DisableProtectionInput(
                properties=m.DisableProtectionInputProperties(
                    replication_provider_input=m.InMageDisableProtectionProviderSpecificInput()
                )
            ),
        ).result()

    # -- the process server side ----------------------------------------------------------------
    def source(self, name: str, disk_mib: tuple[int, ...] = (4, 8), epoch: str | None = None):
        discovered = self.protect(name, disk_mib)
        return self.source_for(discovered, epoch)

    def source_for(self, discovered: dict, epoch: str | None = None) -> SourceVm:
        from lab.kit.clock import LabClock

        clock = LabClock(self.state_dir / "clock.json")
        return SourceVm(
            discovered["instanceUuid"],
            epoch or f"e{uuid.uuid4().hex[:6]}",
            discovered["instanceUuid"],
            [d["capacityInBytes"] for d in discovered["disks"]],
            [d["id"] for d in discovered["disks"]],
            clock=clock.time,
        )

    def upload_plan(self, source: SourceVm, allocated=None) -> None:
        name = f"manifests/{source.vm_id}/ir-plan-{source.epoch}.json"
        self.cache().upload_blob(name, json.dumps(source.plan(allocated)), overwrite=True)

    def upload(self, messages: list[wire.Message]) -> list[str]:
        container = self.cache()
        names = []
        for message in messages:
            name = blob_name(message)
            container.upload_blob(name, wire.seal(message, self.key), overwrite=True)
            names.append(name)
        return names

    def upload_manifests(self, source: SourceVm) -> None:
        container = self.cache()
        for tag, manifest in source.manifests.items():
            container.upload_blob(
                f"manifests/{source.vm_id}/{tag}.json", json.dumps(manifest), overwrite=True
            )

    def seed_bytes(self, blob: str, snapshot: str | None = None) -> bytes:
        if snapshot is None:  # the worker sends changes in batches: ask for them now
            requests.post(
                f"{self.url('sr-worker')}/_lab/flush", verify=self.ca, timeout=60
            ).raise_for_status()
        client = self.blobs("disks").get_blob_client("asr-seed-disks", blob, snapshot=snapshot)
        return client.download_blob().readall()

    def wait_applied(self, source: SourceVm, timeout: float = 60) -> dict:
        """Until every disk's journal stream has applied what the source journaled."""

        def applied():
            state = self.vm_state(source.vm_id)
            if not state:
                return None
            journal = {s["disk_index"]: s["applied"] for s in state["streams"] if not s["initial"]}
            done = all(journal.get(i) == source.seq[i] for i in range(len(source.disks)))
            return state if done else None

        return wait_for(applied, timeout=timeout, message=f"{source.vm_id} fully applied")


def start(tmp_path_factory, name: str = "sr-worker") -> WorkerLab:
    base = tmp_path_factory.mktemp(name)
    info = launcher.up(str(worker_topology(base)), base / "state")
    return WorkerLab(base / "state", info)


@pytest.fixture(scope="module")
def worker_lab(tmp_path_factory):
    lab = start(tmp_path_factory)
    try:
        yield lab
    finally:
        if lab.cs is not None:
            lab.cs.stop()
        with contextlib.suppress(launcher.LabError):
            launcher.down(lab.state_dir)


def settle(seconds: float) -> None:
    """Let lab time pass (the clock runs at lab speed); used only where time is the input."""
    time.sleep(seconds)
