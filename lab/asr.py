"""Site Recovery operations written on the public SDK, as a user's script would be.

Used by `drlab up` (the default setup: vCenter, policy, mapping), by `drlab replicate`,
`drlab jobs` and `drlab events`, and by tests and drills. Nothing here reaches into a fake:
it is azure-identity and azure-mgmt-recoveryservicessiterecovery against the lab's endpoints.
"""

from __future__ import annotations

__all__ = ["Asr", "AsrError", "Site", "connect"]

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.recoveryservicessiterecovery import SiteRecoveryManagementClient
from azure.mgmt.recoveryservicessiterecovery import models as m

from .errors import AsrError
from .kit.labinfo import read_lab, read_topology
from .kit.lro import QuickPolling


@dataclass
class Site:
    fabric: str
    container: str


class Asr:
    def __init__(self, state_dir: str | Path, principal: str = "operator"):
        self.state_dir = Path(state_dir)
        self.lab = read_lab(self.state_dir)
        self.topology = read_topology(self.state_dir)
        env = self.lab["env"]
        creds = self.lab["credentials"][principal]
        self.credential = ClientSecretCredential(
            self.lab["tenant_id"],
            creds["client_id"],
            creds["client_secret"],
            authority=env["AZURE_AUTHORITY_HOST"],
            disable_instance_discovery=True,
            connection_verify=self.lab["ca_cert"],
        )
        self.client = SiteRecoveryManagementClient(
            self.credential,
            env["AZURE_SUBSCRIPTION_ID"],
            base_url=env["DRLAB_ARM_URL"],
            connection_verify=self.lab["ca_cert"],
        )
        self.rg = env["DRLAB_RESOURCE_GROUP"]
        self.vault = env["DRLAB_VAULT"]
        self.subscription = env["AZURE_SUBSCRIPTION_ID"]
        self._site: Site | None = None
        self._compute = None
        self._network = None

    def close(self) -> None:
        self.client.close()
        for client in (self._compute, self._network):
            if client is not None:
                client.close()
        self.credential.close()

    @property
    def compute(self):
        """azure-mgmt-compute on the lab's ARM (failed-over VMs and their disks)."""
        if self._compute is None:
            from azure.mgmt.compute import ComputeManagementClient

            self._compute = ComputeManagementClient(
                self.credential,
                self.subscription,
                base_url=self.lab["env"]["DRLAB_ARM_URL"],
                connection_verify=self.lab["ca_cert"],
            )
        return self._compute

    @property
    def network(self):
        """azure-mgmt-network on the lab's ARM (the failover networks, failed-over NICs)."""
        if self._network is None:
            from azure.mgmt.network import NetworkManagementClient

            self._network = NetworkManagementClient(
                self.credential,
                self.subscription,
                base_url=self.lab["env"]["DRLAB_ARM_URL"],
                connection_verify=self.lab["ca_cert"],
            )
        return self._network

    def __enter__(self) -> Asr:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def settings(self) -> dict:
        return self.topology.get("replication") or {}

    # -- the on-premises site as the vault knows it ---------------------------------------
    def site(self) -> Site:
        if self._site is None:
            fabrics = [
                f
                for f in self.client.replication_fabrics.list(self.rg, self.vault)
                if f.properties.custom_details.instance_type == "VMware"
            ]
            if not fabrics:
                raise AsrError("no configuration server is registered with the vault")
            fabric = fabrics[0].name
            containers = list(
                self.client.replication_protection_containers.list_by_replication_fabrics(
                    self.rg, self.vault, fabric
                )
            )
            self._site = Site(fabric, containers[0].name)
        return self._site

    def fabric_details(self):
        return self.client.replication_fabrics.get(
            self.rg, self.vault, self.site().fabric
        ).properties.custom_details

    def _arm_id(self, provider_path: str) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{provider_path}"

    # -- the default setup ------------------------------------------------------------------
    def add_vcenter(self, name: str, port: int, user_account: str = "1", **poll):
        site = self.site()
        details = self.fabric_details()
        request = m.AddVCenterRequest(
            properties=m.AddVCenterRequestProperties(
                friendly_name=name,
                ip_address="127.0.0.1",
                port=str(port),
                process_server_id=details.process_servers[0].id,
                run_as_account_id=user_account,
            )
        )
        return self.client.replicationv_centers.begin_create(
            self.rg, self.vault, site.fabric, name, request, **poll
        )

    def create_policy(self, spec: dict, **poll):
        policy = m.InMageAzureV2PolicyInput(
            recovery_point_threshold_in_minutes=spec["rpo_threshold_minutes"],
            recovery_point_history=spec["retention_hours"] * 60,
            app_consistent_frequency_in_minutes=spec["app_consistent_hours"] * 60,
            crash_consistent_frequency_in_minutes=spec["crash_consistent_minutes"],
            multi_vm_sync_status="Enable" if spec["multi_vm_sync"] else "Disable",
        )
        return self.client.replication_policies.begin_create(
            self.rg,
            self.vault,
            spec["name"],
            m.CreatePolicyInput(
                properties=m.CreatePolicyInputProperties(provider_specific_input=policy)
            ),
            **poll,
        )

    def map_policy(self, policy_id: str, mapping: str, **poll):
        site = self.site()
        return self.client.replication_protection_container_mappings.begin_create(
            self.rg,
            self.vault,
            site.fabric,
            site.container,
            mapping,
            m.CreateProtectionContainerMappingInput(
                properties=m.CreateProtectionContainerMappingInputProperties(
                    target_protection_container_id="Microsoft Azure", policy_id=policy_id
                )
            ),
            **poll,
        )

    def wait_for_process_server(self, timeout: float = 60.0):
        """The site's process servers, once the configuration server has reported one."""
        deadline = time.monotonic() + timeout
        while True:
            details = self.fabric_details()
            if details.process_servers:
                return details.process_servers
            if time.monotonic() > deadline:
                raise AsrError("the configuration server reports no process server")
            time.sleep(0.2)  # the next heartbeat carries it; bounded by the deadline

    def setup_default(self) -> None:
        """Add the vCenter, create the default policy and map it (idempotent)."""
        settings = self.settings
        vcenter_port = self.lab["services"]["vcenter"]["port"]
        site = self.site()
        self.wait_for_process_server()
        pollers = []
        try:
            self.client.replicationv_centers.get(
                self.rg, self.vault, site.fabric, settings["vcenter_name"]
            )
        except ResourceNotFoundError:
            pollers.append(
                self.add_vcenter(settings["vcenter_name"], vcenter_port, polling=QuickPolling())
            )
        spec = settings["policy"]
        try:
            policy = self.client.replication_policies.get(self.rg, self.vault, spec["name"])
        except ResourceNotFoundError:
            policy = self.create_policy(spec, polling=QuickPolling()).result()
        mapping = f"{spec['name']}-mapping"
        try:
            self.client.replication_protection_container_mappings.get(
                self.rg, self.vault, site.fabric, site.container, mapping
            )
        except ResourceNotFoundError:
            pollers.append(self.map_policy(policy.id, mapping, polling=QuickPolling()))
        for poller in pollers:
            poller.result()

    # -- protected items ----------------------------------------------------------------------
    def protectable(self, vm_name: str):
        site = self.site()
        for (
            item
        ) in self.client.replication_protectable_items.list_by_replication_protection_containers(  # noqa: E501
            self.rg, self.vault, site.fabric, site.container
        ):
            if item.properties.friendly_name == vm_name:
                return item
        raise AsrError(f"no VM named {vm_name!r} is discovered by the configuration server")

    def protected(self, vm_name: str):
        site = self.site()
        for (
            item
        ) in self.client.replication_protected_items.list_by_replication_protection_containers(  # noqa: E501
            self.rg, self.vault, site.fabric, site.container
        ):
            if item.properties.friendly_name == vm_name:
                return item
        raise AsrError(f"{vm_name} is not protected")

    def protected_items(self) -> list:
        return list(self.client.replication_protected_items.list(self.rg, self.vault))

    def enable(
        self,
        vm_name: str,
        policy: str | None = None,
        process_server: str | None = None,
        group: str | None = None,
    ):
        """Enable replication of one VM (in the multi-VM consistency `group`, if given);
        returns the poller (`.result()` waits for the job)."""
        settings = self.settings
        site = self.site()
        item = self.protectable(vm_name)
        policy = self.client.replication_policies.get(
            self.rg, self.vault, policy or settings["policy"]["name"]
        )
        details = self.fabric_details()
        servers = details.process_servers
        if process_server:
            servers = [p for p in servers if process_server in (p.friendly_name, p.id)]
            if not servers:
                raise AsrError(f"no process server {process_server!r} in the site")
        mt = details.master_target_servers[0].id if details.master_target_servers else None
        rg = settings["target_resource_group"]
        network = self._arm_id(
            f"{rg}/providers/Microsoft.Network/virtualNetworks/{settings['target_network']}"
        )
        cache = next(a for a in self.topology["storage"]["accounts"] if a["role"] == "cache")
        log_account = self._arm_id(
            f"{self.rg}/providers/Microsoft.Storage/storageAccounts/{cache['name']}"
        )
        provider = m.InMageAzureV2EnableProtectionInput(
            process_server_id=servers[0].id,
            master_target_id=mt,
            log_storage_account_id=log_account,
            target_azure_v2_resource_group_id=self._arm_id(rg),
            target_azure_network_id=network,
            target_azure_subnet_id=settings["target_subnet"],
            target_azure_vm_name=vm_name,
            disk_type="Standard_LRS",
            multi_vm_group_name=group,
        )
        return self.client.replication_protected_items.begin_create(
            self.rg,
            self.vault,
            site.fabric,
            site.container,
            item.name,
            m.EnableProtectionInput(
                properties=m.EnableProtectionInputProperties(
                    policy_id=policy.id,
                    protectable_item_id=item.id,
                    provider_specific_details=provider,
                )
            ),
        )

    def disable(self, vm_name: str):
        site = self.site()
        item = self.protected(vm_name)
        return self.client.replication_protected_items.begin_delete(
            self.rg,
            self.vault,
            site.fabric,
            site.container,
            item.name,
            m.DisableProtectionInput(
                properties=m.DisableProtectionInputProperties(
                    replication_provider_input=m.InMageDisableProtectionProviderSpecificInput()
                )
            ),
        )

    def resync(self, vm_name: str):
        """Resynchronize a protected VM (repairReplication); returns (poller, job name)."""
        site = self.site()
        item = self.protected(vm_name)
        poller = self.client.replication_protected_items.begin_repair_replication(
            self.rg, self.vault, site.fabric, site.container, item.name
        )
        return poller, self.resync_job_name(vm_name)

    def resync_job_name(self, vm_name: str) -> str:
        """The VM's resync job: the item's current scenario while it runs, else its newest."""
        current = self.protected(vm_name).properties.current_scenario
        if current is not None and current.scenario_name == "RepairReplication":
            return current.job_id.rsplit("/", 1)[-1]
        jobs = self.client.replication_jobs.list(
            self.rg,
            self.vault,
            filter=f"JobName eq 'RepairReplication' and TargetObjectName eq '{vm_name}'",
        )
        for job in jobs:  # newest first
            return job.name
        raise AsrError(f"{vm_name} has no resync job")

    def job(self, name: str):
        return self.client.replication_jobs.get(self.rg, self.vault, name)

    def jobs(self) -> list:
        return list(self.client.replication_jobs.list(self.rg, self.vault))

    def events(self) -> list:
        return list(self.client.replication_events.list(self.rg, self.vault))


@contextlib.contextmanager
def connect(state_dir, principal: str = "operator"):
    asr = Asr(state_dir, principal)
    try:
        yield asr
    finally:
        asr.close()
