"""JSON of replicationProtectedItems: `ReplicationProtectedItem` with
`InMageAzureV2ReplicationDetails`, filled from the lab's state.

The protected item's own document (enable input, protection state, what the Site Recovery
worker wrote), the configuration server's heartbeats (process server, the mobility agent's
version and heartbeat) and the protectable item's current inventory (IP address, CPUs,
memory). `RenderContext` loads what a list of many items shares once per request.
"""

from __future__ import annotations

from .. import ids
from . import failover
from .common import AZURE_FRIENDLY_NAME, IDLE_SCENARIO_TIME, compact, iso, parse_iso
from .fabrics import azure_container_name, azure_fabric_name, process_servers
from .protected_items import STATES


class RenderContext:
    """What rendering many protected items needs, loaded once per request."""

    def __init__(self, vault):
        self.vault = vault
        self._fabrics: dict = {}
        self._containers: dict = {}
        self._agents: dict = {}
        self._protectables: dict = {}
        self._policies: dict = {}
        self._vcenters: dict = {}

    def fabric(self, name: str) -> dict:
        if name.lower() not in self._fabrics:
            self._fabrics[name.lower()] = self.vault.store.get("fabrics", name) or {}
        return self._fabrics[name.lower()]

    def container(self, fabric: str, name: str) -> dict:
        key = (fabric.lower(), name.lower())
        if key not in self._containers:
            self._containers[key] = self.vault.store.get("containers", fabric, name) or {}
        return self._containers[key]

    def agent(self, fabric: str, vm: str) -> dict:
        if fabric.lower() not in self._agents:
            self._agents[fabric.lower()] = {
                d["vmId"].lower(): d
                for d in self.vault.store.docs("mobility_agents", "fabric = ?", (fabric,))
            }
        return self._agents[fabric.lower()].get((vm or "").lower(), {})

    def protectable(self, fabric: str, container: str, name: str) -> dict:
        # One keyed read per item: a page renders 100 of maybe thousands of discovered VMs.
        key = (fabric.lower(), container.lower(), (name or "").lower())
        if key not in self._protectables:
            self._protectables[key] = (
                self.vault.store.get("protectable_items", fabric, container, name or "") or {}
            )
        return self._protectables[key]

    def policy(self, name: str) -> dict:
        if name.lower() not in self._policies:
            self._policies[name.lower()] = self.vault.store.get("policies", name) or {}
        return self._policies[name.lower()]

    def vcenter(self, fabric: str, name: str | None) -> dict:
        if not name:
            return {}
        key = (fabric.lower(), name.lower())
        if key not in self._vcenters:
            self._vcenters[key] = self.vault.store.get("vcenters", fabric, name) or {}
        return self._vcenters[key]


def _agent_heartbeat(agent: dict) -> str | None:
    """The agent's last heartbeat as the configuration server reported it, else when the
    report arrived."""
    if not agent:
        return None
    if isinstance(agent.get("lastHeartbeat"), str):
        try:
            return iso(parse_iso(agent["lastHeartbeat"]))
        except ValueError:
            pass
    return iso(agent.get("receivedAt"))


def _disk_json(disk_id: str, state: dict) -> dict:
    times = ("lastRpoCalculatedTime", "resyncLastDataTransferTimeUTC", "resyncStartTime")
    out = {"diskId": disk_id}
    for k, v in state.items():
        out[k] = iso(v) if k in times and isinstance(v, int | float) else v
    out.setdefault("diskResized", "False")
    return compact(out)


TEST_FAILOVER_DESCRIPTIONS = {
    "None": "None",
    "WaitingForCompletion": "Waiting for user input",
    "MarkedForDeletion": "Cleaning up test environment",
}


def protected_item_json(vault, doc: dict, ctx: RenderContext | None = None) -> dict:
    ctx = ctx or RenderContext(vault)
    scope = vault.scope
    fabric = ctx.fabric(doc["fabric"])
    container = ctx.container(doc["fabric"], doc["container"])
    enable = doc.get("enableInput") or {}
    rep = doc.get("replication") or {}
    protectable = ctx.protectable(doc["fabric"], doc["container"], doc.get("protectableItemName"))
    vm = protectable.get("vm") or doc.get("vm") or {}
    agent = ctx.agent(doc["fabric"], doc.get("protectableItemName"))
    pss = process_servers(fabric)
    ps_id = agent.get("processServerId") or enable.get("processServerId")
    ps = pss.get((ps_id or "").lower(), {})
    vcenter = ctx.vcenter(doc["fabric"], protectable.get("vcenter"))
    description, allowed = STATES.get(doc["protectionState"], (doc["protectionState"], []))
    # Failover states, and a test failover in progress, have their own operations.
    allowed = failover.allowed_operations(doc, list(allowed))
    description = failover.description(doc) or description
    # RepairReplication is listed when a resync is needed (a disk says so, or the agent), and
    # not while one runs (a manual one may still be asked any time the item is Protected).
    resync_needed = any(
        str(d.get("resyncRequired", "False")).lower() == "true"
        for d in rep.get("disks", {}).values()
    ) or bool((agent.get("resync") or {}).get("required"))
    if (
        doc["protectionState"] == "Protected"
        and resync_needed
        and not doc.get("resyncJob")
        and "RepairReplication" not in allowed
    ):
        allowed.append("RepairReplication")
    disks = {d["id"]: d for d in vm.get("disks", [])}
    protected_disks = [
        _disk_json(
            d["diskId"],
            {
                **{
                    "diskName": disks.get(d["diskId"], {}).get("name"),
                    "diskCapacityInBytes": disks.get(d["diskId"], {}).get("capacityInBytes"),
                },
                **rep.get("disks", {}).get(d["diskId"], {}),
            },
        )
        for d in enable.get("disksToInclude", [])
    ]
    seeds = rep.get("seedManagedDisks") or {}
    target_vm = enable.get("targetAzureVmName", doc["friendlyName"])
    managed = [
        compact(
            {
                "diskId": d["diskId"],
                "seedManagedDiskId": seeds.get(d["diskId"]),
                "replicaDiskType": d.get("diskType"),
                "diskEncryptionSetId": d.get("diskEncryptionSetId"),
                "targetDiskName": f"{target_vm}-{d['diskId']}".replace(":", "-"),
            }
        )
        for d in enable.get("disksToInclude", [])
    ]
    first_disk = vm.get("disks", [{}])[0].get("id") if vm.get("disks") else None
    details = compact(
        {
            "instanceType": "InMageAzureV2",
            "infrastructureVmId": doc.get("protectableItemName"),
            "vCenterInfrastructureId": vcenter.get("infrastructureId") or vcenter.get("internalId"),
            "protectionStage": rep.get("protectionStage", doc.get("protectionStage")),
            "vmId": doc.get("protectableItemName"),
            "vmProtectionState": doc["protectionState"],
            "vmProtectionStateDescription": description,
            "resyncProgressPercentage": rep.get("resyncProgressPercentage"),
            "rpoInSeconds": rep.get("rpoInSeconds"),
            "compressedDataRateInMB": rep.get("compressedDataRateInMB"),
            "uncompressedDataRateInMB": rep.get("uncompressedDataRateInMB"),
            "ipAddress": (vm.get("ipAddresses") or [None])[0],
            "agentVersion": agent.get("agentVersion"),
            "isAgentUpdateRequired": "False",
            "isRebootAfterUpdateRequired": "False",
            "lastHeartbeat": _agent_heartbeat(agent),
            "processServerId": ps_id,
            "processServerName": ps.get("name"),
            "multiVmGroupId": enable.get("multiVmGroupId"),
            "multiVmGroupName": enable.get("multiVmGroupName"),
            "multiVmSyncStatus": ctx.policy(doc["policy"])
            .get("settings", {})
            .get("multiVmSyncStatus"),
            "protectedDisks": protected_disks,
            "diskResized": "False",
            "masterTargetId": enable.get("masterTargetId"),
            "sourceVmCpuCount": vm.get("cpuCount"),
            "sourceVmRamSizeInMB": vm.get("memoryMB"),
            "osType": vm.get("osType"),
            "osDiskId": first_disk,
            "recoveryAzureVMName": enable.get("targetAzureVmName"),
            "recoveryAzureVMSize": enable.get("targetVmSize"),
            "recoveryAzureLogStorageAccountId": enable.get("logStorageAccountId"),
            "vmNics": [
                compact(
                    {
                        "nicId": n.get("id") or n.get("macAddress"),
                        "vMNetworkName": n.get("network"),
                        "selectionType": "SelectedByUser",
                    }
                )
                for n in vm.get("nics", [])
                if isinstance(n, dict)
            ],
            "selectedRecoveryAzureNetworkId": enable.get("targetAzureNetworkId"),
            "discoveryType": "vCenter",
            "enableRdpOnTargetOption": enable.get("enableRdpOnTargetOption"),
            "datastores": vm.get("datastores") or None,
            "recoveryAzureResourceGroupId": enable.get("targetAzureV2ResourceGroupId"),
            "targetAvailabilityZone": enable.get("targetAvailabilityZone"),
            "useManagedDisks": "True",
            "licenseType": enable.get("licenseType"),
            "sqlServerLicenseType": enable.get("sqlServerLicenseType"),
            "validationErrors": [],
            "lastRpoCalculatedTime": iso(rep.get("lastRpoCalculatedTime")),
            "lastUpdateReceivedTime": iso(rep.get("lastUpdateReceivedTime")),
            "protectedManagedDisks": managed,
            "lastRecoveryPointReceived": iso(rep.get("lastRecoveryPointReceived")),
            "totalDataTransferred": rep.get("totalDataTransferred"),
            "totalProgressHealth": rep.get("totalProgressHealth"),
            "targetVmTags": enable.get("targetVmTags"),
            "seedManagedDiskTags": enable.get("seedManagedDiskTags"),
            "targetManagedDiskTags": enable.get("targetManagedDiskTags"),
            "targetNicTags": enable.get("targetNicTags"),
        }
    )
    # A running resync is the item's scenario unless a job of its own (failover) runs.
    job = doc.get("currentJob") or (
        {"scenarioName": "RepairReplication", **doc["resyncJob"]} if doc.get("resyncJob") else None
    )
    scenario = (
        {
            "scenarioName": job["scenarioName"],
            "jobId": scope.job(job["name"]),
            "startTime": iso(job["start"]),
        }
        if job
        else {"scenarioName": "None", "jobId": scope.job("None"), "startTime": IDLE_SCENARIO_TIME}
    )
    props = compact(
        {
            "friendlyName": doc["friendlyName"],
            "protectedItemType": "VMwareVirtualMachine",
            "protectableItemId": scope.protectable_item(
                doc["fabric"], doc["container"], doc["protectableItemName"]
            ),
            "recoveryServicesProviderId": scope.recovery_services_provider(
                doc["fabric"], fabric.get("providerId", "")
            ),
            "primaryFabricFriendlyName": fabric.get("friendlyName"),
            "primaryFabricProvider": "VMware",
            "recoveryFabricFriendlyName": AZURE_FRIENDLY_NAME,
            "recoveryFabricId": AZURE_FRIENDLY_NAME,
            "primaryProtectionContainerFriendlyName": container.get("friendlyName"),
            "recoveryProtectionContainerFriendlyName": AZURE_FRIENDLY_NAME,
            "protectionState": doc["protectionState"],
            "protectionStateDescription": description,
            "activeLocation": doc.get("activeLocation", "Primary"),
            "testFailoverState": doc.get("testFailoverState", "None"),
            "testFailoverStateDescription": TEST_FAILOVER_DESCRIPTIONS.get(
                doc.get("testFailoverState", "None"), "None"
            ),
            "failoverRecoveryPointId": scope.recovery_point(
                doc["fabric"], doc["container"], doc["name"], doc["failoverRecoveryPointName"]
            )
            if doc.get("failoverRecoveryPointName")
            else None,
            "lastSuccessfulFailoverTime": iso(doc.get("lastSuccessfulFailoverTime")),
            "lastSuccessfulTestFailoverTime": iso(doc.get("lastSuccessfulTestFailoverTime")),
            "allowedOperations": allowed,
            "replicationHealth": doc.get("replicationHealth", "Normal"),
            "failoverHealth": "Normal",
            "healthErrors": doc.get("healthErrors", []),
            "policyId": scope.policy(doc["policy"]),
            "policyFriendlyName": doc["policy"],
            "currentScenario": scenario,
            "providerSpecificDetails": details,
            "recoveryContainerId": scope.container(
                azure_fabric_name(scope), azure_container_name(scope)
            ),
            "eventCorrelationId": doc.get("protectableItemName"),
        }
    )
    return {
        "id": scope.protected_item(doc["fabric"], doc["container"], doc["name"]),
        "name": doc["name"],
        "type": ids.T_PROTECTED,
        "location": scope.location,
        "properties": props,
    }
