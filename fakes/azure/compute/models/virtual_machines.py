"""Virtual machines (`Microsoft.Compute/virtualMachines`): the record, its rules, its JSON.

A VM attaches existing managed disks (`createOption: Attach`: an OS disk and data disks at
LUNs) and existing NICs; creating one takes them (disks' `managedBy`, NICs' `virtualMachine`)
in the same transaction that writes the VM, so two VMs never share one. Deleting it gives
them back, or deletes them where their `deleteOption` says `Delete`.

Power follows a table (`plan`), free of I/O: each action names the power state shown while
it runs, the state it ends in, and what happens to the guest (boot, clean shutdown, hard
power-off, reboot). One operation at a time per VM: another is refused (409) until it ends.

| action | from | while | to | guest |
|---|---|---|---|---|
| start | stopped, deallocated | starting | running | boot |
| powerOff | running, starting | stopping | stopped | clean shutdown (hard with skipShutdown) |
| deallocate | running, starting, stopped | deallocating | deallocated | clean shutdown if running |
| restart | running | running | running | reboot |

An action already satisfied (start a running VM, deallocate a deallocated one) succeeds and
changes nothing; restart of a VM that is not running is refused (409 OperationNotAllowed).

Not emulated (501): images (`FromImage`, `imageReference`), `osProfile`, empty data disks
made with the VM, availability sets and zones, extensions, boot diagnostics, spot/priority,
changing the disks or NICs of an existing VM (attach disks when creating it).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from fakes.azure.arm import resource_ids
from fakes.azure.arm.resource_ids import ResourceScope

from ..errors import (
    InvalidParameter,
    NotEmulated,
    NotFound,
    OperationNotAllowed,
    check_location,
)
from ..ids import T_VM, vm_id
from . import check_tags, iso

POWER_STATES = ("starting", "running", "stopping", "stopped", "deallocating", "deallocated")
POWER_DISPLAY = {
    "starting": "VM starting",
    "running": "VM running",
    "stopping": "VM stopping",
    "stopped": "VM stopped",
    "deallocating": "VM deallocating",
    "deallocated": "VM deallocated",
}
ACTIONS = ("start", "powerOff", "deallocate", "restart")
VM_SIZE = re.compile(r"^(Standard|Basic)_[A-Za-z0-9_]+$")
MAX_LUN = 63


# -- the power table (pure) -------------------------------------------------------------------
@dataclass(frozen=True)
class Transition:
    action: str
    interim: str  # the power state shown while the operation runs
    final: str
    guest: str  # "boot" | "shutdown" | "power_off" | "reboot" | "none"


def plan(action: str, power_state: str, skip_shutdown: bool = False) -> Transition | None:
    """The transition for `action` from `power_state`; None when there is nothing to do.
    Raises OperationNotAllowed where the action is not allowed."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if power_state in ("stopping", "deallocating"):
        raise OperationNotAllowed(
            f"Operation '{action}' is not allowed since the VM is {power_state}."
        )
    running = power_state in ("running", "starting")
    if action == "start":
        if running:
            return None
        return Transition(action, "starting", "running", "boot")
    if action == "powerOff":
        if not running:
            return None
        return Transition(
            action, "stopping", "stopped", "power_off" if skip_shutdown else "shutdown"
        )
    if action == "deallocate":
        if power_state == "deallocated":
            return None
        return Transition(action, "deallocating", "deallocated", "shutdown" if running else "none")
    # restart
    if not running:
        raise OperationNotAllowed(
            f"Operation 'restart' is not allowed on the VM since it is {power_state}."
        )
    return Transition(action, power_state, "running", "reboot")


# -- input ------------------------------------------------------------------------------------
@dataclass
class DiskAttachment:
    disk_id: str
    lun: int | None = None  # None for the OS disk
    delete_option: str = "Detach"
    caching: str | None = None


@dataclass
class NicAttachment:
    nic_id: str
    primary: bool = False
    delete_option: str = "Detach"


@dataclass
class VmInput:
    location: str
    tags: dict
    size: str
    os_disk: DiskAttachment
    os_type: str | None = None
    data_disks: list[DiskAttachment] | None = None
    nics: list[NicAttachment] | None = None


def _delete_option(value, target: str) -> str:
    value = value or "Detach"
    if value not in ("Detach", "Delete"):
        raise InvalidParameter(f"deleteOption '{value}' is not valid.", target=target)
    return value


def check_size(size) -> str:
    if not size:
        raise InvalidParameter(
            "Required parameter 'hardwareProfile.vmSize' is missing (null).", target="vmSize"
        )
    if not isinstance(size, str) or not VM_SIZE.match(size):
        raise InvalidParameter(
            f"The value {size} provided for the VM size is not valid.", target="vmSize"
        )
    return size


def parse_vm_body(body) -> VmInput:
    if not isinstance(body, dict):
        raise InvalidParameter("The request body must be a JSON object.")
    props = body.get("properties") or {}
    if props.get("osProfile"):
        raise InvalidParameter(
            "Parameter 'osProfile' is not allowed: the OS disk is attached.", target="osProfile"
        )
    storage = props.get("storageProfile") or {}
    if storage.get("imageReference"):
        raise NotEmulated("Creating a VM from an image", "Attach a managed disk as the OS disk.")
    os_disk = storage.get("osDisk")
    if not os_disk:
        raise InvalidParameter(
            "Required parameter 'storageProfile.osDisk' is missing (null).", target="osDisk"
        )
    if os_disk.get("createOption") != "Attach":
        raise NotEmulated(
            f"osDisk createOption '{os_disk.get('createOption')}'",
            "Attach a managed disk (createOption Attach).",
        )
    managed = (os_disk.get("managedDisk") or {}).get("id")
    if not managed:
        raise InvalidParameter(
            "Required parameter 'osDisk.managedDisk.id' is missing (null).",
            target="osDisk.managedDisk.id",
        )
    os_type = os_disk.get("osType")
    if os_type is not None and os_type not in ("Windows", "Linux"):
        raise InvalidParameter(f"The value '{os_type}' of osType is not valid.", target="osType")
    data = []
    for item in storage.get("dataDisks") or []:
        if item.get("createOption") != "Attach":
            raise NotEmulated(
                f"dataDisk createOption '{item.get('createOption')}'",
                "Create the managed disk first and attach it.",
            )
        lun = item.get("lun")
        if not isinstance(lun, int) or not 0 <= lun <= MAX_LUN:
            raise InvalidParameter(f"A data disk needs a lun 0-{MAX_LUN}.", target="lun")
        did = (item.get("managedDisk") or {}).get("id")
        if not did:
            raise InvalidParameter("A data disk needs managedDisk.id.", target="managedDisk.id")
        data.append(
            DiskAttachment(
                did,
                lun,
                _delete_option(item.get("deleteOption"), "deleteOption"),
                item.get("caching"),
            )
        )
    luns = [d.lun for d in data]
    if len(set(luns)) != len(luns):
        raise InvalidParameter("Two data disks have the same lun.", target="lun")
    nics = []
    for item in (props.get("networkProfile") or {}).get("networkInterfaces") or []:
        if not item.get("id"):
            raise InvalidParameter("A network interface reference needs an id.")
        p = item.get("properties") or {}
        nics.append(
            NicAttachment(
                item["id"], bool(p.get("primary")), _delete_option(p.get("deleteOption"), "nic")
            )
        )
    if (props.get("networkProfile") or {}).get("networkInterfaceConfigurations"):
        raise NotEmulated(
            "networkInterfaceConfigurations", "Create the NIC first and reference it by id."
        )
    if not nics:
        raise InvalidParameter(
            "A virtual machine needs at least one network interface.",
            target="networkProfile.networkInterfaces",
        )
    if len(nics) > 1 and sum(n.primary for n in nics) != 1:
        raise InvalidParameter(
            "Exactly one network interface of a VM with several is primary.",
            target="networkProfile.networkInterfaces",
        )
    if len(nics) == 1:
        nics[0].primary = True
    return VmInput(
        location=body.get("location") or "",
        tags=check_tags(body.get("tags")),
        size=check_size((props.get("hardwareProfile") or {}).get("vmSize")),
        os_disk=DiskAttachment(
            managed,
            None,
            _delete_option(os_disk.get("deleteOption"), "osDisk.deleteOption"),
            os_disk.get("caching"),
        ),
        os_type=os_type,
        data_disks=data,
        nics=nics,
    )


# -- the records ------------------------------------------------------------------------------
class VirtualMachines:
    def __init__(self, store, scope: ResourceScope, disks, network, clock):
        self.store = store
        self.scope = scope
        self.disks = disks  # ManagedDisks
        self.network = network  # fakes.azure.network.Network
        self.clock = clock

    def id_of(self, doc: dict) -> str:
        return vm_id(self.scope, doc["resourceGroup"], doc["name"])

    def find(self, group: str, name: str) -> dict | None:
        return self.store.get(T_VM, group, name)

    def get(self, group: str, name: str) -> dict:
        doc = self.find(group, name)
        if doc is None:
            raise NotFound(T_VM, name, self.scope.group(group))
        return doc

    def list(self, group: str | None = None) -> list[dict]:
        return self.store.list(T_VM, group)

    def power_of(self, arm_id: str) -> str | None:
        rid = resource_ids.parse(arm_id)
        doc = self.find(rid.resource_group, rid.name) if rid else None
        return doc["powerState"] if doc else None

    def save(self, doc: dict) -> None:
        self.store.put(T_VM, doc["resourceGroup"], doc["name"], doc)

    def update(self, group: str, name: str, **fields) -> dict:
        """Change fields of a VM's record (in one transaction); the new record."""
        with self.store.transaction():
            doc = self.get(group, name)
            doc.update(fields)
            self.save(doc)
        return doc

    # -- creating and deleting ----------------------------------------------------------------
    def create(self, group: str, name: str, inp: VmInput, *, power_state: str) -> dict:
        """The VM's record, its disks and NICs taken, in one transaction (provisioning
        `Creating`); what boots it is the caller's."""
        group = self.scope.group(group)
        check_location(self.scope, inp.location, T_VM)
        the_id = vm_id(self.scope, group, name)
        with self.store.transaction():
            if self.find(group, name) is not None:
                raise OperationNotAllowed(f"The VM '{name}' exists.")
            os_doc = self.disks.attach(inp.os_disk.disk_id, the_id, "osDisk.managedDisk.id")
            data = []
            for d in inp.data_disks or []:
                ddoc = self.disks.attach(d.disk_id, the_id, f"dataDisks[{d.lun}].managedDisk.id")
                if ddoc["name"].lower() == os_doc["name"].lower():
                    raise InvalidParameter("The OS disk is also a data disk.", target="dataDisks")
                data.append(
                    {
                        "id": self.disks.id_of(ddoc),
                        "name": ddoc["name"],
                        "lun": d.lun,
                        "deleteOption": d.delete_option,
                        "caching": d.caching or "None",
                    }
                )
            nics = []
            for n in inp.nics or []:
                nic = self.network.network_interfaces.attach(n.nic_id, the_id)
                nics.append(
                    {
                        "id": self.network.network_interfaces.nic_id(nic),
                        "primary": n.primary,
                        "deleteOption": n.delete_option,
                    }
                )
            doc = {
                "name": name,
                "resourceGroup": group,
                "location": self.scope.location,
                "tags": inp.tags,
                "vmId": str(uuid.uuid4()),
                "size": inp.size,
                "osType": inp.os_type or os_doc.get("osType"),
                "osDisk": {
                    "id": self.disks.id_of(os_doc),
                    "name": os_doc["name"],
                    "deleteOption": inp.os_disk.delete_option,
                    "caching": inp.os_disk.caching or "ReadWrite",
                },
                "dataDisks": sorted(data, key=lambda d: d["lun"]),
                "nics": nics,
                "provisioningState": "Creating",
                "powerState": power_state,
                "operation": None,
                "timeCreated": self.clock.time(),
                "guest": {},
            }
            self.save(doc)
        return doc

    def update_settings(self, doc: dict, inp: VmInput) -> dict:
        """PUT on an existing VM: tags, and the size while it is not running."""
        same_disks = inp.os_disk.disk_id.lower() == doc["osDisk"]["id"].lower() and sorted(
            (d.lun, d.disk_id.lower()) for d in inp.data_disks or []
        ) == sorted((d["lun"], d["id"].lower()) for d in doc["dataDisks"])
        same_nics = sorted(n.nic_id.lower() for n in inp.nics or []) == sorted(
            n["id"].lower() for n in doc["nics"]
        )
        if not (same_disks and same_nics):
            raise NotEmulated(
                "Changing the disks or network interfaces of an existing VM",
                "Delete the VM (its disks and NICs stay) and create it again.",
            )
        check_location(self.scope, inp.location, T_VM)
        with self.store.transaction():
            doc = self.get(doc["resourceGroup"], doc["name"])
            if inp.size != doc["size"]:
                if doc["powerState"] not in ("stopped", "deallocated"):
                    raise OperationNotAllowed(
                        "The lab resizes a VM only while it is stopped or deallocated.",
                        target="vmSize",
                    )
                doc["size"] = inp.size
            doc["tags"] = inp.tags
            self.save(doc)
        return doc

    def remove(self, group: str, name: str) -> dict | None:
        """Delete the record; disks and NICs are given back (the caller deletes those whose
        deleteOption is Delete). Returns the record as it was."""
        with self.store.transaction():
            doc = self.find(group, name)
            if doc is None:
                return None
            the_id = self.id_of(doc)
            for d in [doc["osDisk"], *doc["dataDisks"]]:
                self.disks.detach(d["id"], the_id)
            for n in doc["nics"]:
                self.network.network_interfaces.detach(n["id"], the_id)
            self.store.delete(T_VM, doc["resourceGroup"], doc["name"])
        return doc

    # -- ARM JSON -----------------------------------------------------------------------------
    def _disk(self, ref: dict, lun: int | None) -> dict:
        rid = resource_ids.parse(ref["id"])
        found = self.disks.find(rid.resource_group, rid.name) if rid else None
        out = {
            "name": ref["name"],
            "createOption": "Attach",
            "caching": ref["caching"],
            "managedDisk": {
                "id": ref["id"],
                "storageAccountType": found["sku"] if found else "Standard_LRS",
            },
            "deleteOption": ref["deleteOption"],
        }
        if found:
            out["diskSizeGB"] = -(-found["sizeBytes"] // (1 << 30))
        if lun is not None:
            out["lun"] = lun
            out["toBeDetached"] = False
        return out

    def render(self, doc: dict, instance_view: dict | None = None) -> dict:
        os_disk = self._disk(doc["osDisk"], None)
        if doc.get("osType"):
            os_disk = {"osType": doc["osType"], **os_disk}
        props = {
            "vmId": doc["vmId"],
            "hardwareProfile": {"vmSize": doc["size"]},
            "storageProfile": {
                "osDisk": os_disk,
                "dataDisks": [self._disk(d, d["lun"]) for d in doc["dataDisks"]],
                "diskControllerType": "SCSI",
            },
            "networkProfile": {
                "networkInterfaces": [
                    {
                        "id": n["id"],
                        "properties": {"primary": n["primary"], "deleteOption": n["deleteOption"]},
                    }
                    for n in doc["nics"]
                ]
            },
            "provisioningState": doc["provisioningState"],
            "timeCreated": iso(doc["timeCreated"]),
        }
        if instance_view is not None:
            props["instanceView"] = instance_view
        return {
            "id": self.id_of(doc),
            "name": doc["name"],
            "type": T_VM,
            "location": doc["location"],
            "tags": dict(doc["tags"]),
            "properties": props,
        }
