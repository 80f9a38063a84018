"""replicationProtectedItems: VMs replicated to Azure (InMageAzureV2), their lifecycle and JSON.

- create = enable replication (`InMageAzureV2EnableProtectionInput`), the "Enable protection"
  job: Prerequisites check (vault) -> Installing Mobility Service and Enabling replication (the
  configuration server, one work item: push install through the chosen process server,
  register the agent, pair it) -> Starting initial replication (vault). The item then waits
  in `InitialReplicationPending` until the Site Recovery worker reports data
  (`replication_state`). A failed or cancelled enable removes the item again.
- remove = disable protection (the configuration server stops replication first);
- DELETE = purge: the vault forgets the item at once, the configuration server is told.

The item's `protectionState` decides its `allowedOperations` (the table `STATES`); the worker
may only write states of that table. Replication details (RPO, disks, progress, heartbeat of
the agent, process server) are filled from the lab's state: the worker's updates, the
configuration server's heartbeats, the protectable item's current inventory.

Failover and commit are `failover.py` and `failover_jobs.py`; resync (repairReplication) and
resolveHealthErrors are `resync.py`. Not emulated yet: reprotect, update (PATCH), disks
add/remove, mobility service update, switch provider (all answer 501, named).
"""

from __future__ import annotations

import json
import re

from .. import ids
from ..errors import (
    Conflict,
    FabricNotRegistered,
    InvalidInput,
    NotFound,
    OperationNotAllowed,
    ProtectionAlreadyEnabled,
    ProviderNotEmulated,
    SiteRecoveryError,
)
from .common import compact
from .fabrics import master_targets, process_servers
from .filters import FilterSpec, apply_filter
from .jobs import JobKind, TaskSpec
from .mappings import mapped_policies
from .policies import policy_from_id

# protectionState -> (description, allowedOperations)
STATES: dict[str, tuple[str, list[str]]] = {
    "EnablingProtection": ("Enabling protection", []),
    "InitialReplicationPending": (
        "Waiting for initial replication to start",
        ["DisableProtection"],
    ),
    "InitialReplicationInProgress": ("Initial replication in progress", ["DisableProtection"]),
    "Protected": ("Protected", ["UnplannedFailover", "DisableProtection", "TestFailover"]),
    "DisablingProtection": ("Disabling protection", []),
}
PROTECTION_STAGES = (
    "EnablingProtection",
    "InitialReplicationPending",
    "Resync",
    "Protected",
    "DisablingProtection",
)
HEALTH = ("None", "Normal", "Warning", "Critical")
DISK_TYPES = (
    "Standard_LRS",
    "Premium_LRS",
    "StandardSSD_LRS",
    "PremiumV2_LRS",
    "UltraSSD_LRS",
    "StandardSSD_ZRS",
    "Premium_ZRS",
)
_STORAGE_ID = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.storage/storageaccounts/[^/]+$",
    re.I,
)
_GROUP_ID = re.compile(r"^/subscriptions/[^/]+/resourcegroups/[^/]+$", re.I)
_VNET_ID = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.network/virtualnetworks/[^/]+$",
    re.I,
)

FILTER = FilterSpec(
    {
        "ProtectionState": "protectionState",
        "FriendlyName": "friendlyName",
        "ReplicationHealth": "replicationHealth",
        "FabricName": "fabric",
        "PolicyName": "policy",
    }
)


# -- enable -----------------------------------------------------------------------------------
def _check_id(
    value, pattern: re.Pattern, field: str, what: str, required: bool = False
) -> str | None:
    if value is None:
        if required:
            raise InvalidInput(f"'{field}' is required: {what}.")
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidInput(f"'{field}' must be {what}, not '{value}'.")
    return value


def check_enable(vault, fabric: dict, container: dict, name: str, body) -> dict:
    """The enable input, checked against the vault's state; errors change nothing."""
    if fabric["kind"] != "VMware":
        raise FabricNotRegistered("Replication is enabled in a configuration server's container.")
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise InvalidInput(
            'The request body must be {"properties": {"policyId", "protectableItemId", '
            '"providerSpecificDetails"}}.'
        )
    details = props.get("providerSpecificDetails")
    kind = details.get("instanceType") if isinstance(details, dict) else None
    if kind != "InMageAzureV2":
        if kind is None:
            raise InvalidInput(
                "'properties.providerSpecificDetails.instanceType' is required (InMageAzureV2)."
            )
        raise ProviderNotEmulated(
            f"The operation 'ReplicationProtectedItems_Create' with instanceType '{kind}' is not "
            "emulated by drlab (only InMageAzureV2, VMware to Azure).",
            target="ReplicationProtectedItems_Create",
        )
    if vault.store.get("protected_items", fabric["name"], container["name"], name) is not None:
        raise Conflict(f"The replication protected item '{name}' already exists.")
    policy = policy_from_id(vault, props.get("policyId"))
    if policy is None or policy["instanceType"] != "InMageAzureV2":
        raise InvalidInput(
            f"'properties.policyId' '{props.get('policyId')}' is not an InMageAzureV2 "
            "replication policy of this vault."
        )
    if policy["name"].lower() not in mapped_policies(vault, fabric["name"], container["name"]):
        raise InvalidInput(
            f"The policy '{policy['name']}' is not associated with the configuration server "
            f"'{fabric.get('hostName')}': create a protection container mapping first."
        )
    parts = vault.scope.parse(props.get("protectableItemId") or "")
    if (
        not parts
        or "protectable_item" not in parts
        or parts.get("fabric", "").lower() != fabric["name"].lower()
        or parts.get("container", "").lower() != container["name"].lower()
    ):
        raise InvalidInput(
            f"'properties.protectableItemId' must be a protectable item of this container, not "
            f"'{props.get('protectableItemId')}'."
        )
    item = vault.store.get(
        "protectable_items", fabric["name"], container["name"], parts["protectable_item"]
    )
    if item is None:
        raise NotFound(ids.T_PROTECTABLE, parts["protectable_item"], vault.scope.resource_group)
    for other in vault.store.docs(
        "protected_items", "fabric = ? AND container = ?", (fabric["name"], container["name"])
    ):
        if (other.get("protectableItemName") or "").lower() == item["name"].lower():
            raise ProtectionAlreadyEnabled(
                f"Protection is already enabled for the virtual machine '{item['friendlyName']}' "
                f"(protected item '{other['name']}')."
            )
    pss = process_servers(fabric)
    ps = details.get("processServerId")
    if not isinstance(ps, str) or ps.lower() not in pss:
        raise InvalidInput(
            "'providerSpecificDetails.processServerId' must be a process server of the "
            "configuration server "
            f"(known: {', '.join(p['id'] for p in pss.values()) or 'none reported yet'})."
        )
    mts = master_targets(fabric)
    mt = details.get("masterTargetId")
    if mt is not None and mt.lower() not in mts:
        raise InvalidInput(
            f"'providerSpecificDetails.masterTargetId' '{mt}' is not a master target of the "
            "configuration server."
        )
    accounts = {a["accountId"] for a in (fabric.get("heartbeat") or {}).get("runAsAccounts", [])}
    run_as = details.get("runAsAccountId")
    if run_as is not None and accounts and run_as not in accounts:
        raise InvalidInput(
            f"'providerSpecificDetails.runAsAccountId' '{run_as}' is not an account of the "
            "configuration server."
        )
    log_account = _check_id(
        details.get("logStorageAccountId"),
        _STORAGE_ID,
        "providerSpecificDetails.logStorageAccountId",
        "a storage account id",
    )
    vm_disks = {d["id"].lower(): d for d in item["vm"]["disks"]}
    disks_in = details.get("disksToInclude")
    if disks_in is None:
        disks_in = [{"diskId": d["id"]} for d in item["vm"]["disks"]]
    if not isinstance(disks_in, list) or not disks_in:
        raise InvalidInput("'providerSpecificDetails.disksToInclude' must list at least one disk.")
    disks = []
    for i, d in enumerate(disks_in):
        if (
            not isinstance(d, dict)
            or not isinstance(d.get("diskId"), str)
            or d["diskId"].lower() not in vm_disks
        ):
            raise InvalidInput(
                f"'disksToInclude[{i}].diskId' must be a disk of the VM "
                f"(disks: {', '.join(x['id'] for x in item['vm']['disks'])})."
            )
        account = (
            _check_id(
                d.get("logStorageAccountId"),
                _STORAGE_ID,
                f"disksToInclude[{i}].logStorageAccountId",
                "a storage account id",
            )
            or log_account
        )
        if account is None:
            raise InvalidInput(
                "'providerSpecificDetails.logStorageAccountId' (the cache storage account) "
                "is required, "
                "or a logStorageAccountId on every disk."
            )
        disk_type = d.get("diskType") or details.get("diskType") or "Standard_LRS"
        if disk_type not in DISK_TYPES:
            raise InvalidInput(
                f"'disksToInclude[{i}].diskType' must be one of {', '.join(DISK_TYPES)}."
            )
        disks.append(
            {
                "diskId": vm_disks[d["diskId"].lower()]["id"],
                "logStorageAccountId": account,
                "diskType": disk_type,
            }
        )
    if len({d["diskId"] for d in disks}) != len(disks):
        raise InvalidInput("'disksToInclude' names a disk twice.")
    if not any(d["diskId"] == item["vm"]["disks"][0]["id"] for d in disks):
        raise InvalidInput("'disksToInclude' must include the OS disk (the VM's first disk).")
    _check_id(
        details.get("targetAzureV2ResourceGroupId"),
        _GROUP_ID,
        "providerSpecificDetails.targetAzureV2ResourceGroupId",
        "the id of the target resource group",
        required=True,
    )
    network = _check_id(
        details.get("targetAzureNetworkId"),
        _VNET_ID,
        "providerSpecificDetails.targetAzureNetworkId",
        "a virtual network id",
    )
    subnet = details.get("targetAzureSubnetId")
    if subnet is not None and (not isinstance(subnet, str) or network is None):
        raise InvalidInput(
            "'providerSpecificDetails.targetAzureSubnetId' is a subnet name of "
            "'targetAzureNetworkId'."
        )
    provider_input = {k: v for k, v in details.items() if k != "instanceType"}
    provider_input.update(
        disksToInclude=disks,
        logStorageAccountId=log_account or disks[0]["logStorageAccountId"],
        targetAzureVmName=details.get("targetAzureVmName") or item["friendlyName"],
        masterTargetId=mt or (next(iter(mts.values()))["id"] if mts else None),
    )
    return {
        "fabric": fabric["name"],
        "container": container["name"],
        "item": name,
        "protectableItem": item["name"],
        "policy": policy["name"],
        "vmName": item["friendlyName"],
        "enableInput": {k: v for k, v in provider_input.items() if v is not None},
    }


def _new_item(vault, job) -> dict:
    inp = job["input"]
    item = vault.store.get(
        "protectable_items", inp["fabric"], inp["container"], inp["protectableItem"]
    )
    return {
        "name": inp["item"],
        "fabric": inp["fabric"],
        "container": inp["container"],
        "friendlyName": inp["vmName"],
        "protectableItemName": inp["protectableItem"],
        "policy": inp["policy"],
        "protectionState": "EnablingProtection",
        "protectionStage": "EnablingProtection",
        "replicationHealth": "Normal",
        "healthErrors": [],
        "activeLocation": "Primary",
        "testFailoverState": "None",
        "currentJob": None,
        "enableInput": inp["enableInput"],
        "vm": item["vm"] if item else {},
        "replication": {"disks": {}},
        "created": vault.clock.time(),
    }


def _on_create_enable(vault, job, db) -> None:
    inp = job["input"]
    if vault.store.get("protected_items", inp["fabric"], inp["container"], inp["item"]) is not None:
        raise Conflict(f"The replication protected item '{inp['item']}' already exists.")
    doc = _new_item(vault, job)
    doc["currentJob"] = {
        "scenarioName": job["scenarioName"],
        "name": job["name"],
        "start": job["start"],
    }
    vault.store.put(db, "protected_items", (inp["fabric"], inp["container"], inp["item"]), doc)


def _item_of(vault, job) -> dict:
    inp = job["input"]
    doc = vault.store.get("protected_items", inp["fabric"], inp["container"], inp["item"])
    if doc is None:
        raise SiteRecoveryError(
            f"The replication protected item '{inp['item']}' no longer exists (it was purged).",
            code="ProtectedItemNotFound",
        )
    return doc


def _save(vault, db, doc: dict) -> None:
    vault.store.put(db, "protected_items", (doc["fabric"], doc["container"], doc["name"]), doc)


def _prerequisites_enable(vault, job, db) -> None:
    inp = job["input"]
    _item_of(vault, job)
    item = vault.store.get(
        "protectable_items", inp["fabric"], inp["container"], inp["protectableItem"]
    )
    if item is None or item.get("missing"):
        raise SiteRecoveryError(
            f"The virtual machine '{inp['vmName']}' is no longer in the configuration "
            "server's inventory.",
            code="VmNotFoundInInventory",
            recommendedAction="Check the vCenter server, wait for the next discovery, retry.",
        )
    if item["vm"]["powerState"] != "poweredOn":
        raise SiteRecoveryError(
            f"The virtual machine '{inp['vmName']}' is not running: the Mobility service can "
            "only be "
            "push-installed on a running machine.",
            code="VmNotRunning",
            possibleCauses="The virtual machine is powered off.",
            recommendedAction="Power on the virtual machine and restart the job.",
        )
    fabric = vault.store.get("fabrics", inp["fabric"])
    if fabric is None or inp["enableInput"]["processServerId"].lower() not in process_servers(
        fabric
    ):
        raise SiteRecoveryError(
            f"The process server '{inp['enableInput']['processServerId']}' is no longer "
            "reported by the configuration server.",
            code="ProcessServerNotFound",
        )


def _start_initial_replication(vault, job, db) -> None:
    doc = _item_of(vault, job)
    disks = {d["diskId"]: d for d in doc["enableInput"]["disksToInclude"]}
    capacity = {d["id"]: d for d in doc["vm"].get("disks", [])}
    doc["protectionState"] = "InitialReplicationPending"
    doc["protectionStage"] = "InitialReplicationPending"
    doc["replication"].setdefault("disks", {})
    for disk_id in disks:
        doc["replication"]["disks"].setdefault(
            disk_id,
            {
                "protectionStage": "InitialReplicationPending",
                "resyncRequired": "False",
                "resyncProgressPercentage": 0,
                "diskCapacityInBytes": capacity.get(disk_id, {}).get("capacityInBytes"),
                "diskName": capacity.get(disk_id, {}).get("name", disk_id),
            },
        )
    doc["replication"]["resyncProgressPercentage"] = 0
    doc["currentJob"] = None
    _save(vault, db, doc)


def _enable_payload(vault, job, kind) -> dict:
    inp = job["input"]
    doc = vault.store.get("protected_items", inp["fabric"], inp["container"], inp["item"]) or {}
    vm = doc.get("vm") or {}
    policy = vault.store.get("policies", inp["policy"]) or {"settings": {}}
    return {
        "protectedItemName": inp["item"],
        "protectedItemId": vault.scope.protected_item(inp["fabric"], inp["container"], inp["item"]),
        "vm": {
            "instanceUuid": inp["protectableItem"],
            "name": inp["vmName"],
            "osType": vm.get("osType"),
            "ipAddresses": vm.get("ipAddresses", []),
            "vCenter": (
                vault.store.get(
                    "protectable_items", inp["fabric"], inp["container"], inp["protectableItem"]
                )
                or {}
            ).get("vcenter"),
        },
        "policy": {
            "name": policy.get("name"),
            "id": vault.scope.policy(inp["policy"]),
            **policy["settings"],
        },
        **inp["enableInput"],
    }


def _on_enabled_by_server(vault, job, item, result, db) -> None:
    inp = job["input"]
    agent = {k: v for k, v in result.items() if k in ("agentVersion", "agentId", "processServerId")}
    if agent:
        current = vault.store.get("mobility_agents", inp["fabric"], inp["protectableItem"]) or {
            "vmId": inp["protectableItem"]
        }
        current.update(agent, registered=True, receivedAt=vault.clock.time())
        vault.store.put(db, "mobility_agents", (inp["fabric"], inp["protectableItem"]), current)


def _remove_item(vault, db, fabric: str, container: str, name: str) -> None:
    vault.store.delete(db, "protected_items", fabric, container, name)
    vault.store.delete(db, "recovery_points", fabric, container, name)


def _on_enable_failed(vault, job, db) -> None:
    inp = job["input"]
    doc = vault.store.get("protected_items", inp["fabric"], inp["container"], inp["item"])
    if (
        doc is not None
        and doc.get("currentJob", {})
        and doc["currentJob"].get("name") == job["name"]
    ):
        _remove_item(vault, db, inp["fabric"], inp["container"], inp["item"])


ENABLE = JobKind(
    name="EnableProtection",
    scenario="EnableDr",
    friendly_name="Enable protection",
    target_type="ProtectionEntity",
    tasks=(
        TaskSpec("PrerequisitesCheckTask", "Prerequisites check", run=_prerequisites_enable),
        TaskSpec(
            "InstallMobilityServiceTask",
            "Installing Mobility Service",
            runner="provider",
            work_item="EnableProtection",
        ),
        TaskSpec(
            "EnableReplicationTask",
            "Enabling replication",
            runner="provider",
            work_item="EnableProtection",
        ),
        TaskSpec(
            "StartInitialReplicationTask",
            "Starting initial replication",
            run=_start_initial_replication,
        ),
    ),
    on_create=_on_create_enable,
    on_failed=_on_enable_failed,
    work_item_payload=_enable_payload,
    on_work_item_succeeded=_on_enabled_by_server,
    cancellable=True,
    provider="InMageAzureV2",
)


# -- disable and purge ------------------------------------------------------------------------
def check_disable(vault, doc: dict, body) -> dict:
    if "DisableProtection" not in STATES.get(doc["protectionState"], ("", []))[1]:
        raise OperationNotAllowed(
            f"Protection can't be disabled for '{doc['friendlyName']}' while it is "
            f"{doc['protectionState']}; wait for the running job to finish."
        )
    props = (body or {}).get("properties") if isinstance(body, dict) else None
    if body is not None and not isinstance(props, dict):
        raise InvalidInput(
            'The request body must be {"properties": {...}} (DisableProtectionInput).'
        )
    props = props or {}
    reason = props.get("disableProtectionReason", "NotSpecified")
    if reason not in ("NotSpecified", "MigrationComplete"):
        raise InvalidInput("'disableProtectionReason' must be NotSpecified or MigrationComplete.")
    provider = props.get("replicationProviderInput")
    if provider is not None and (
        not isinstance(provider, dict) or provider.get("instanceType") != "InMage"
    ):
        raise InvalidInput(
            "'replicationProviderInput' must be an InMage input (replicaVmDeletionStatus)."
        )
    return {
        "fabric": doc["fabric"],
        "container": doc["container"],
        "item": doc["name"],
        "reason": reason,
        "replicaVmDeletionStatus": (provider or {}).get("replicaVmDeletionStatus"),
        "previousState": doc["protectionState"],
    }


def _on_create_disable(vault, job, db) -> None:
    doc = _item_of(vault, job)
    doc["protectionState"] = "DisablingProtection"
    doc["currentJob"] = {
        "scenarioName": job["scenarioName"],
        "name": job["name"],
        "start": job["start"],
    }
    _save(vault, db, doc)


def _prerequisites_disable(vault, job, db) -> None:
    _item_of(vault, job)


def _disable_payload(vault, job, kind) -> dict:
    inp = job["input"]
    doc = vault.store.get("protected_items", inp["fabric"], inp["container"], inp["item"]) or {}
    return compact(
        {
            "protectedItemName": inp["item"],
            "protectedItemId": vault.scope.protected_item(
                inp["fabric"], inp["container"], inp["item"]
            ),
            "vmId": doc.get("protectableItemName"),
            "vmName": doc.get("friendlyName"),
            "processServerId": (doc.get("enableInput") or {}).get("processServerId"),
            "reason": inp["reason"],
            "replicaVmDeletionStatus": inp.get("replicaVmDeletionStatus"),
        }
    )


def _remove_settings(vault, job, db) -> None:
    inp = job["input"]
    _item_of(vault, job)
    _remove_item(vault, db, inp["fabric"], inp["container"], inp["item"])


def _on_disable_failed(vault, job, db) -> None:
    inp = job["input"]
    doc = vault.store.get("protected_items", inp["fabric"], inp["container"], inp["item"])
    if doc is not None:
        doc["protectionState"] = inp["previousState"]
        doc["currentJob"] = None
        _save(vault, db, doc)


DISABLE = JobKind(
    name="DisableProtection",
    scenario="DisableDr",
    friendly_name="Disable protection",
    target_type="ProtectionEntity",
    tasks=(
        TaskSpec("PrerequisitesCheckTask", "Prerequisites check", run=_prerequisites_disable),
        TaskSpec(
            "StopReplicationTask",
            "Stopping replication on the configuration server",
            runner="provider",
            work_item="DisableProtection",
        ),
        TaskSpec(
            "RemoveReplicationSettingsTask",
            "Removing the replication settings",
            run=_remove_settings,
        ),
    ),
    on_create=_on_create_disable,
    on_failed=_on_disable_failed,
    work_item_payload=_disable_payload,
    cancellable=True,
    provider="InMageAzureV2",
)


def _purge(vault, job, db) -> None:
    inp = job["input"]
    doc = vault.store.get("protected_items", inp["fabric"], inp["container"], inp["item"])
    if doc is None:
        return
    for row in vault.store.select(
        "work_items",
        "fabric = ? AND state IN ('Queued', 'Delivered', 'InProgress')",
        (inp["fabric"],),
    ):
        item = json.loads(row["doc"])
        if item["payload"].get("protectedItemName", "").lower() == inp["item"].lower():
            vault.work_items.cancel(db, item["id"])
    _remove_item(vault, db, inp["fabric"], inp["container"], inp["item"])
    fabric = vault.store.get("fabrics", inp["fabric"])
    if fabric is not None and fabric["kind"] == "VMware":
        vault.work_items.enqueue(
            db,
            fabric=inp["fabric"],
            kind="PurgeProtection",
            payload={
                "protectedItemName": inp["item"],
                "vmId": doc.get("protectableItemName"),
                "vmName": doc.get("friendlyName"),
                "processServerId": (doc.get("enableInput") or {}).get("processServerId"),
            },
        )


PURGE = JobKind(
    name="PurgeProtection",
    scenario="PurgeProtection",
    friendly_name="Purge protection",
    target_type="ProtectionEntity",
    tasks=(TaskSpec("PurgeProtectedItemTask", "Purging the protected item", run=_purge),),
    provider="InMageAzureV2",
)


def list_items(
    vault, fabric: str | None = None, container: str | None = None, filter_text: str | None = None
) -> list[dict]:
    if fabric is not None:
        docs = vault.store.docs(
            "protected_items",
            "fabric = ? AND container = ?",
            (fabric, container),
            "fabric, container, name",
        )
    else:
        docs = vault.store.docs("protected_items", order="fabric, container, name")
    return apply_filter(FILTER, filter_text, docs)


def page_of_items(
    vault, after: list | None, limit: int, fabric: str | None = None, container: str | None = None
) -> list[dict]:
    """Up to `limit` items after the key (fabric, container, name), in key order: a page read
    straight from the index, so listing many items costs one page, not all of them."""
    where, args = [], []
    if fabric is not None:
        where.append("fabric = ? AND container = ?")
        args += [fabric, container]
    if after is not None:
        where.append("(fabric, container, name) > (?, ?, ?)")
        args += list(after)
    sql = "SELECT doc FROM protected_items"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY fabric, container, name LIMIT ?"
    rows = vault.store.connection().execute(sql, (*args, limit)).fetchall()
    return [json.loads(r["doc"]) for r in rows]


def require_item(vault, fabric: str, container: str, name: str) -> dict:
    doc = vault.store.get("protected_items", fabric, container, name)
    if doc is None:
        raise NotFound(ids.T_PROTECTED, f"{fabric}/{container}/{name}", vault.scope.resource_group)
    return doc
