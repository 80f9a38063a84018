"""replicationProtectionContainers: one per configuration server (`cloud_<provider id>`),
created with its fabric, and the seeded "Microsoft Azure" container.

Not emulated: creating, removing or switching containers by API (they follow the fabrics),
discovering a machine by IP address (`discoverProtectableItem`).
"""

from __future__ import annotations

from .. import ids
from ..errors import NotFound


def container_json(
    vault, doc: dict, protected_count: int | None = None, paired: bool | None = None
) -> dict:
    fabric = vault.store.get("fabrics", doc["fabric"]) or {}
    if protected_count is None:
        protected_count = vault.store.count(
            "protected_items", "fabric = ? AND container = ?", (doc["fabric"], doc["name"])
        )
    if paired is None:
        paired = (
            vault.store.count(
                "mappings", "fabric = ? AND container = ?", (doc["fabric"], doc["name"])
            )
            > 0
        )
    props = {
        "fabricFriendlyName": fabric.get("friendlyName", doc["friendlyName"]),
        "friendlyName": doc["friendlyName"],
        "fabricType": doc["fabricType"],
        "protectedItemCount": protected_count,
        "pairingStatus": "Paired" if paired else "NotPaired",
        "role": doc["role"],
    }
    return {
        "id": vault.scope.container(doc["fabric"], doc["name"]),
        "name": doc["name"],
        "type": ids.T_CONTAINER,
        "location": vault.scope.location,
        "properties": props,
    }


def require_fabric(vault, fabric: str) -> dict:
    doc = vault.store.get("fabrics", fabric)
    if doc is None:
        raise NotFound(ids.T_FABRIC, fabric, vault.scope.resource_group)
    return doc


def require_container(vault, fabric: str, container: str) -> dict:
    require_fabric(vault, fabric)
    doc = vault.store.get("containers", fabric, container)
    if doc is None:
        raise NotFound(ids.T_CONTAINER, f"{fabric}/{container}", vault.scope.resource_group)
    return doc
