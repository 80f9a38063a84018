"""Managed disks (`Microsoft.Compute/disks`): page blobs in the disks account, with a record.

Creation options emulated:

- `Empty` with `diskSizeGB`: a page blob of that size;
- `Copy` with `sourceResourceId` = a managed disk: a server-side copy of its blob;
- `Import` (or `Copy`, the lab's shortcut) with `sourceUri` = a blob of the disks account,
  e.g. a seed disk's snapshot `.../asr-seed-disks/<blob>?snapshot=<ts>` (or that path
  relative to the account): a server-side copy.

`diskSizeGB` larger than the source grows the copy; smaller is refused. The record is written
`Creating` before the blob work and `Succeeded` after, so a name is never made twice at once;
a failed creation removes both. A disk attached to a VM (`managedBy`) cannot be deleted;
`diskState` is `Attached`, `Reserved` when its VM is deallocated, else `Unattached`.

Not emulated (501): `FromImage`, `Upload`, `Restore`, `CopyStart`, copies from
`Microsoft.Compute/snapshots` resources, disk access (SAS grant), encryption sets, bursting,
shared disks (`maxShares`), zones.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from fakes.azure.arm import resource_ids
from fakes.azure.arm.resource_ids import ResourceScope

from ..disk_storage import CONTAINER, DiskStorage, SourceBlob
from ..errors import (
    ArmError,
    DiskStorageUnavailable,
    InvalidParameter,
    NotEmulated,
    NotFound,
    OperationNotAllowed,
    PropertyChangeNotAllowed,
    check_location,
)
from ..ids import T_DISK, T_SNAPSHOT, disk_id
from . import check_tags, iso

GiB = 1 << 30
MAX_DISK_GB = 32767
SKUS = {
    "Standard_LRS": "Standard",
    "StandardSSD_LRS": "Standard",
    "StandardSSD_ZRS": "Standard",
    "Premium_LRS": "Premium",
    "Premium_ZRS": "Premium",
    "PremiumV2_LRS": "Premium",
    "UltraSSD_LRS": "Ultra",
}
OS_TYPES = ("Windows", "Linux")


@dataclass
class DiskInput:
    location: str
    tags: dict
    create_option: str = "Empty"
    size_gb: int | None = None
    sku: str = "Standard_LRS"
    source_resource_id: str | None = None
    source_uri: str | None = None
    os_type: str | None = None
    hyper_v_generation: str = "V1"


def parse_disk_body(body) -> DiskInput:
    if not isinstance(body, dict):
        raise InvalidParameter("The request body must be a JSON object.")
    props = body.get("properties") or {}
    creation = props.get("creationData") or {}
    option = creation.get("createOption")
    if not option:
        raise InvalidParameter(
            "Required parameter 'creationData.createOption' is missing (null).",
            target="creationData.createOption",
        )
    size = props.get("diskSizeGB")
    if size is not None and (not isinstance(size, int) or not 1 <= size <= MAX_DISK_GB):
        raise InvalidParameter(
            f"The value '{size}' of diskSizeGB is not valid: 1 to {MAX_DISK_GB}.",
            target="diskSizeGB",
        )
    sku = ((body.get("sku") or {}).get("name")) or "Standard_LRS"
    if sku not in SKUS:
        raise InvalidParameter(
            f"The value '{sku}' of sku.name is not valid: one of {', '.join(SKUS)}.",
            target="sku.name",
        )
    os_type = props.get("osType")
    if os_type is not None and os_type not in OS_TYPES:
        raise InvalidParameter(f"The value '{os_type}' of osType is not valid.", target="osType")
    return DiskInput(
        location=body.get("location") or "",
        tags=check_tags(body.get("tags")),
        create_option=option,
        size_gb=size,
        sku=sku,
        source_resource_id=creation.get("sourceResourceId"),
        source_uri=creation.get("sourceUri"),
        os_type=os_type,
        hyper_v_generation=props.get("hyperVGeneration") or "V1",
    )


class ManagedDisks:
    def __init__(
        self,
        store,
        scope: ResourceScope,
        storage: DiskStorage | None,
        clock,
        power_of: Callable[[str], str | None] = lambda vm_id: None,
    ):
        self.store = store
        self.scope = scope
        self.storage = storage
        self.clock = clock
        self.power_of = power_of  # VM id -> its power state (for diskState Reserved)

    def id_of(self, doc: dict) -> str:
        return disk_id(self.scope, doc["resourceGroup"], doc["name"])

    # -- reading ------------------------------------------------------------------------------
    def find(self, group: str, name: str) -> dict | None:
        return self.store.get(T_DISK, group, name)

    def get(self, group: str, name: str) -> dict:
        doc = self.find(group, name)
        if doc is None:
            raise NotFound(T_DISK, name, self.scope.group(group))
        return doc

    def by_id(self, arm_id: str, target: str = "managedDisk.id") -> dict:
        rid = resource_ids.parse(arm_id)
        if rid is None or not rid.is_type(T_DISK):
            raise InvalidParameter(f"'{arm_id}' is not a managed disk id.", target=target)
        self.scope.check_subscription(rid.subscription_id)
        return self.get(rid.resource_group, rid.name)

    def list(self, group: str | None = None) -> list[dict]:
        return self.store.list(T_DISK, group)

    def _storage(self) -> DiskStorage:
        if self.storage is None:
            raise DiskStorageUnavailable("This lab runs no disks storage account.")
        return self.storage

    # -- creating -----------------------------------------------------------------------------
    def _source(self, inp: DiskInput) -> tuple[SourceBlob | None, dict]:
        """What to copy (None for Empty) and the creationData to record."""
        option = inp.create_option
        if option == "Empty":
            if inp.size_gb is None:
                raise InvalidParameter(
                    "Required parameter 'diskSizeGB' is missing (null).", target="diskSizeGB"
                )
            return None, {"createOption": "Empty"}
        if option == "Copy" and inp.source_resource_id:
            rid = resource_ids.parse(inp.source_resource_id)
            if rid is not None and rid.is_type(T_SNAPSHOT):
                raise NotEmulated(
                    "Copy from a Microsoft.Compute/snapshots resource",
                    "Copy a managed disk, or import a snapshot blob of the disks account "
                    "with sourceUri.",
                )
            src = self.by_id(inp.source_resource_id, target="creationData.sourceResourceId")
            if src.get("provisioningState") != "Succeeded":
                raise OperationNotAllowed(f"The source disk '{src['name']}' is being created.")
            blob = SourceBlob(CONTAINER, src["blob"], None, src["sizeBytes"])
            return blob, {"createOption": "Copy", "sourceResourceId": self.id_of(src)}
        if option in ("Copy", "Import") and inp.source_uri:
            storage = self._storage()
            blob = storage.resolve_source(inp.source_uri)
            uri = f"{storage.account_url}/{blob.ref}"
            account = resource_ids.resource_id(
                self.scope.subscription_id,
                self.scope.target_group,
                "Microsoft.Storage",
                "storageAccounts",
                storage.account_name,
            )
            return blob, {"createOption": "Import", "sourceUri": uri, "storageAccountId": account}
        if option in ("Copy", "Import"):
            raise InvalidParameter(
                f"createOption '{option}' needs creationData.sourceResourceId or sourceUri.",
                target="creationData",
            )
        raise NotEmulated(
            f"createOption '{option}'", "Use Empty, Copy (a managed disk) or Import (a blob)."
        )

    def create(self, group: str, name: str, inp: DiskInput) -> tuple[dict, bool]:
        group = self.scope.group(group)
        check_location(self.scope, inp.location, T_DISK)
        existing = self.find(group, name)
        if existing is not None:
            return self._update(existing, inp), False
        source, creation = self._source(inp)
        storage = self._storage()
        unique = str(uuid.uuid4())
        doc = {
            "name": name,
            "resourceGroup": group,
            "location": self.scope.location,
            "tags": inp.tags,
            "sku": inp.sku,
            "osType": inp.os_type,
            "hyperVGeneration": inp.hyper_v_generation,
            "creationData": creation,
            "sizeBytes": (inp.size_gb or 0) * GiB,
            "uniqueId": unique,
            "timeCreated": self.clock.time(),
            "blob": f"md-{unique}",
            "managedBy": None,
            "provisioningState": "Creating",
        }
        with self.store.transaction():
            if self.find(group, name) is not None:
                raise OperationNotAllowed(f"The disk '{name}' is being created.")
            self.store.put(T_DISK, group, name, doc)
        try:
            doc["sizeBytes"] = self._make_blob(storage, doc["blob"], source, inp.size_gb)
        except BaseException:
            storage.delete(doc["blob"])
            self.store.delete(T_DISK, group, name)
            raise
        doc["provisioningState"] = "Succeeded"
        self.store.put(T_DISK, group, name, doc)
        return doc, True

    @staticmethod
    def _make_blob(storage, blob: str, source: SourceBlob | None, size_gb: int | None) -> int:
        if source is None:
            storage.create_empty(blob, size_gb * GiB)
            return size_gb * GiB
        size = storage.copy(source, blob)
        if size_gb is not None:
            wanted = size_gb * GiB
            if wanted < size:
                raise InvalidParameter(
                    f"Disk size {size_gb} GB is smaller than the source "
                    f"({math.ceil(size / GiB)} GB). Shrinking a disk is not supported.",
                    target="diskSizeGB",
                )
            if wanted > size:
                storage.resize(blob, wanted)
                size = wanted
        return size

    def _update(self, doc: dict, inp: DiskInput) -> dict:
        """PUT on an existing disk: tags, sku, osType, a larger size; nothing else changes."""
        if doc.get("provisioningState") != "Succeeded":
            raise OperationNotAllowed(f"The disk '{doc['name']}' is being created.")
        if inp.create_option != doc["creationData"]["createOption"] and not (
            inp.create_option == "Copy" and doc["creationData"]["createOption"] == "Import"
        ):
            raise PropertyChangeNotAllowed("creationData.createOption")
        with self.store.transaction():
            if inp.size_gb is not None and inp.size_gb * GiB != doc["sizeBytes"]:
                wanted = inp.size_gb * GiB
                if wanted < doc["sizeBytes"]:
                    raise InvalidParameter(
                        "Shrinking a disk is not supported.", target="diskSizeGB"
                    )
                if doc.get("managedBy") and self.power_of(doc["managedBy"]) != "deallocated":
                    raise OperationNotAllowed(
                        f"Disk '{doc['name']}' is attached to a running VM: deallocate the VM "
                        "to resize the disk.",
                        target="diskSizeGB",
                    )
                self._storage().resize(doc["blob"], wanted)
                doc["sizeBytes"] = wanted
            doc["tags"] = inp.tags
            doc["sku"] = inp.sku
            doc["osType"] = inp.os_type or doc.get("osType")
            self.store.put(T_DISK, doc["resourceGroup"], doc["name"], doc)
        return doc

    def set_tags(self, group: str, name: str, tags) -> dict:
        with self.store.transaction():
            doc = self.get(group, name)
            doc["tags"] = check_tags(tags)
            self.store.put(T_DISK, doc["resourceGroup"], doc["name"], doc)
        return doc

    # -- deleting -----------------------------------------------------------------------------
    def delete(self, group: str, name: str) -> bool:
        with self.store.transaction():
            doc = self.find(group, name)
            if doc is None:
                return False
            if doc.get("managedBy"):
                raise OperationNotAllowed(
                    f"Disk {doc['name']} is attached to VM {doc['managedBy']}."
                )
            if doc.get("provisioningState") == "Creating":
                raise OperationNotAllowed(f"The disk '{doc['name']}' is being created.")
            self.store.delete(T_DISK, doc["resourceGroup"], doc["name"])
        if self.storage is not None:
            self.storage.delete(doc["blob"])
        return True

    # -- a VM's use of a disk (inside the VM's transaction) -----------------------------------
    def attach(self, arm_id: str, vm_id: str, target: str) -> dict:
        with self.store.transaction():
            doc = self.by_id(arm_id, target=target)
            if doc.get("provisioningState") != "Succeeded":
                raise OperationNotAllowed(f"The disk '{doc['name']}' is being created.")
            current = doc.get("managedBy")
            if current and current.lower() != vm_id.lower():
                raise OperationNotAllowed(
                    f"Disk '{doc['name']}' is already attached to VM '{current}'.", target=target
                )
            doc["managedBy"] = vm_id
            self.store.put(T_DISK, doc["resourceGroup"], doc["name"], doc)
        return doc

    def detach(self, arm_id: str, vm_id: str) -> dict | None:
        with self.store.transaction():
            try:
                doc = self.by_id(arm_id)
            except ArmError:
                return None
            if (doc.get("managedBy") or "").lower() == vm_id.lower():
                doc["managedBy"] = None
                self.store.put(T_DISK, doc["resourceGroup"], doc["name"], doc)
        return doc

    # -- ARM JSON -----------------------------------------------------------------------------
    def disk_state(self, doc: dict) -> str:
        if not doc.get("managedBy"):
            return "Unattached"
        return "Reserved" if self.power_of(doc["managedBy"]) == "deallocated" else "Attached"

    def render(self, doc: dict) -> dict:
        props = {
            "hyperVGeneration": doc["hyperVGeneration"],
            "creationData": dict(doc["creationData"]),
            "diskSizeGB": math.ceil(doc["sizeBytes"] / GiB),
            "diskSizeBytes": doc["sizeBytes"],
            "uniqueId": doc["uniqueId"],
            "provisioningState": doc["provisioningState"],
            "diskState": self.disk_state(doc),
            "timeCreated": iso(doc["timeCreated"]),
            "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
            "networkAccessPolicy": "AllowAll",
            "publicNetworkAccess": "Enabled",
        }
        if doc.get("osType"):
            props["osType"] = doc["osType"]
        body = {
            "id": self.id_of(doc),
            "name": doc["name"],
            "type": T_DISK,
            "location": doc["location"],
            "tags": dict(doc["tags"]),
            "sku": {"name": doc["sku"], "tier": SKUS[doc["sku"]]},
            "properties": props,
        }
        if doc.get("managedBy"):
            body["managedBy"] = doc["managedBy"]
        return body
