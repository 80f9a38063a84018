"""replicationProtectableItems: the VMs a configuration server discovered, kept current.

The configuration server pushes the full inventory of one vCenter each time
(`PUT .../drlabProvider/inventory/{vcenter}`); `sync_inventory` adds new VMs, updates changed
ones and removes the ones that are gone (a protected VM stays, marked as missing, so its
protected item keeps its source). Items are named by the VM's instance UUID. A VM whose
instance UUID another vCenter of the same configuration server already reports is skipped and
named in the answer (the real service's duplicate-UUID problem).

Protectable items exist only under a registered configuration server's container: there is no
other way to make a VM protectable.
"""

from __future__ import annotations

import json

from .. import ids
from ..errors import InvalidInput, NotFound
from .common import compact, health_error
from .fabrics import container_name_of
from .filters import FilterSpec, apply_filter

OS_TYPES = ("Windows", "Linux")
POWER_STATES = ("poweredOn", "poweredOff", "suspended")

FILTER = FilterSpec(
    {"FriendlyName": "friendlyName", "ProtectionStatus": "protectionStatus", "OsType": "vm.osType"}
)


def _check_vm(vm, i: int) -> dict:
    where = f"virtualMachines[{i}]"
    if not isinstance(vm, dict):
        raise InvalidInput(f"'{where}' must be an object.")
    for field in ("instanceUuid", "name"):
        if not isinstance(vm.get(field), str) or not vm[field]:
            raise InvalidInput(f"'{where}.{field}' is required.")
    if vm.get("osType") not in OS_TYPES:
        raise InvalidInput(f"'{where}.osType' must be one of {', '.join(OS_TYPES)}.")
    if vm.get("powerState", "poweredOn") not in POWER_STATES:
        raise InvalidInput(f"'{where}.powerState' must be one of {', '.join(POWER_STATES)}.")
    disks = vm.get("disks")
    if not isinstance(disks, list) or not disks:
        raise InvalidInput(f"'{where}.disks' must list the VM's disks (id, name, capacityInBytes).")
    seen = set()
    for j, d in enumerate(disks):
        if (
            not isinstance(d, dict)
            or not d.get("id")
            or not isinstance(d.get("capacityInBytes"), int)
        ):
            raise InvalidInput(f"'{where}.disks[{j}]' needs 'id' and an integer 'capacityInBytes'.")
        if d["id"] in seen:
            raise InvalidInput(f"'{where}.disks[{j}].id' '{d['id']}' appears twice.")
        seen.add(d["id"])
    for field in ("ipAddresses", "nics"):
        if not isinstance(vm.get(field, []), list):
            raise InvalidInput(f"'{where}.{field}' must be a list.")
    return {
        "instanceUuid": vm["instanceUuid"],
        "name": vm["name"],
        "osType": vm["osType"],
        "guestId": vm.get("guestId"),
        "powerState": vm.get("powerState", "poweredOn"),
        "ipAddresses": list(vm.get("ipAddresses", [])),
        "cpuCount": vm.get("cpuCount"),
        "memoryMB": vm.get("memoryMB"),
        "disks": [
            {"id": d["id"], "name": d.get("name", d["id"]), "capacityInBytes": d["capacityInBytes"]}
            for d in disks
        ],
        "nics": list(vm.get("nics", [])),
        "datastores": list(vm.get("datastores", [])),
    }


def check_inventory(body) -> list[dict]:
    if not isinstance(body, dict) or not isinstance(body.get("virtualMachines"), list):
        raise InvalidInput('The inventory is {"virtualMachines": [...]}, the full list each time.')
    vms = [_check_vm(vm, i) for i, vm in enumerate(body["virtualMachines"])]
    seen = set()
    for vm in vms:
        if vm["instanceUuid"].lower() in seen:
            raise InvalidInput(
                f"The instance UUID '{vm['instanceUuid']}' appears twice in the inventory."
            )
        seen.add(vm["instanceUuid"].lower())
    return vms


def sync_inventory(vault, fabric: dict, vcenter: str, vms: list[dict]) -> dict:
    name = fabric["name"]
    container = container_name_of(name)
    now = vault.clock.time()
    added = updated = removed = unchanged = 0
    conflicts = []
    with vault.store.transaction() as db:
        vdoc = vault.store.get("vcenters", name, vcenter)
        if vdoc is None:
            raise NotFound(ids.T_VCENTER, f"{name}/{vcenter}", vault.scope.resource_group)
        current = {
            r["name"].lower(): r
            for r in vault.store.select(
                "protectable_items", "fabric = ? AND container = ?", (name, container)
            )
        }
        protected = {
            (d.get("protectableItemName") or "").lower()
            for d in vault.store.docs(
                "protected_items", "fabric = ? AND container = ?", (name, container)
            )
        }
        pushed = set()
        for vm in vms:
            key = vm["instanceUuid"].lower()
            row = current.get(key)
            if row is not None and row["vcenter"].lower() != vcenter.lower():
                conflicts.append(
                    {
                        "instanceUuid": vm["instanceUuid"],
                        "name": vm["name"],
                        "reportedBy": row["vcenter"],
                    }
                )
                continue
            pushed.add(key)
            old = json.loads(row["doc"]) if row is not None else None
            if old is not None and old["vm"] == vm and not old.get("missing"):
                unchanged += 1
                continue
            doc = {
                "name": vm["instanceUuid"],
                "fabric": name,
                "container": container,
                "vcenter": vcenter,
                "friendlyName": vm["name"],
                "vm": vm,
                "updated": now,
                "missing": False,
            }
            vault.store.put(
                db, "protectable_items", (name, container, vm["instanceUuid"]), doc, vcenter=vcenter
            )
            if old is None:
                added += 1
            else:
                updated += 1
        for key, row in current.items():
            if row["vcenter"].lower() != vcenter.lower() or key in pushed:
                continue
            if key in protected:
                doc = json.loads(row["doc"])
                if not doc.get("missing"):
                    doc["missing"] = True
                    doc["updated"] = now
                    vault.store.put(
                        db,
                        "protectable_items",
                        (name, container, row["name"]),
                        doc,
                        vcenter=row["vcenter"],
                    )
                continue
            vault.store.delete(db, "protectable_items", name, container, row["name"])
            removed += 1
        vdoc["discoveryStatus"] = "Completed"
        vdoc["lastHeartbeat"] = now
        vault.store.put(db, "vcenters", (name, vcenter), vdoc)
    return {
        "vCenter": vcenter,
        "total": len(pushed),
        "added": added,
        "updated": updated,
        "removed": removed,
        "unchanged": unchanged,
        "conflicts": conflicts,
    }


def readiness_errors(doc: dict) -> list[str]:
    errors = []
    if doc.get("missing"):
        errors.append("The virtual machine is no longer in the vCenter server's inventory.")
    return errors


def protectable_item_json(
    vault, doc: dict, protected_item_id: str | None, agent: dict | None
) -> dict:
    vm = doc["vm"]
    vcenter = vault.store.get("vcenters", doc["fabric"], doc["vcenter"]) or {}
    fabric = vault.store.get("fabrics", doc["fabric"]) or {}
    errors = [
        health_error("VmNotInInventory", e, entity_id=doc["name"]) for e in readiness_errors(doc)
    ]
    custom = compact(
        {
            "instanceType": "VMwareVirtualMachine",
            "agentGeneratedId": (agent or {}).get("agentId"),
            "agentInstalled": "True" if agent and agent.get("registered", True) else "False",
            "osType": vm["osType"],
            "agentVersion": (agent or {}).get("agentVersion"),
            "ipAddress": vm["ipAddresses"][0] if vm["ipAddresses"] else None,
            "poweredOn": "True" if vm["powerState"] == "poweredOn" else "False",
            "vCenterInfrastructureId": vcenter.get("infrastructureId") or vcenter.get("internalId"),
            "discoveryType": "vCenter",
            "diskDetails": [
                {
                    "diskId": d["id"],
                    "diskName": d["name"],
                    "diskSizeInMB": str(d["capacityInBytes"] // 2**20),
                    "diskType": "Basic",
                    "diskConfiguration": "OperatingSystem" if i == 0 else "Data",
                }
                for i, d in enumerate(vm["disks"])
            ],
            "validationErrors": errors,
        }
    )
    props = compact(
        {
            "friendlyName": doc["friendlyName"],
            "protectionStatus": "Protected" if protected_item_id else "Unprotected",
            "replicationProtectedItemId": protected_item_id,
            "recoveryServicesProviderId": vault.scope.recovery_services_provider(
                doc["fabric"], fabric.get("providerId", "")
            ),
            "protectionReadinessErrors": readiness_errors(doc),
            "supportedReplicationProviders": ["InMageAzureV2"],
            "customDetails": custom,
        }
    )
    return {
        "id": vault.scope.protectable_item(doc["fabric"], doc["container"], doc["name"]),
        "name": doc["name"],
        "type": ids.T_PROTECTABLE,
        "location": vault.scope.location,
        "properties": props,
    }


def list_items(vault, fabric: str, container: str, filter_text: str | None) -> list[dict]:
    """Protectable items of a container as (doc, protected item id, agent), sorted by name."""
    docs = vault.store.docs(
        "protectable_items", "fabric = ? AND container = ?", (fabric, container), "name"
    )
    protected = {
        (d.get("protectableItemName") or "").lower(): d["name"]
        for d in vault.store.docs(
            "protected_items", "fabric = ? AND container = ?", (fabric, container)
        )
    }
    agents = {
        d["vmId"].lower(): d for d in vault.store.docs("mobility_agents", "fabric = ?", (fabric,))
    }
    rows = []
    for doc in docs:
        rpi = protected.get(doc["name"].lower())
        doc["protectionStatus"] = "Protected" if rpi else "Unprotected"
        rows.append(
            (
                doc,
                vault.scope.protected_item(fabric, container, rpi) if rpi else None,
                agents.get(doc["name"].lower()),
            )
        )
    if filter_text:
        keep = {id(d) for d in apply_filter(FILTER, filter_text, [r[0] for r in rows])}
        rows = [r for r in rows if id(r[0]) in keep]
    return rows
