"""recoveryPoints of a protected item: written by the Site Recovery worker
(`replication_state.ReplicationState.add_recovery_point`), listed and read here.

Each point is a lab time, a type (CrashConsistent / AppConsistent, as the real service shows
them) and whether it is a multi-VM sync point; the worker may keep its own details (snapshot
names of the seed disks) in `details`, which the API does not show.
"""

from __future__ import annotations

from .. import ids
from ..errors import NotFound
from .common import iso

TYPES = ("CrashConsistent", "AppConsistent")


def recovery_point_json(vault, doc: dict) -> dict:
    return {
        "id": vault.scope.recovery_point(doc["fabric"], doc["container"], doc["item"], doc["name"]),
        "name": doc["name"],
        "type": ids.T_RECOVERY_POINT,
        "location": vault.scope.location,
        "properties": {
            "recoveryPointTime": iso(doc["time"]),
            "recoveryPointType": doc["type"],
            "providerSpecificDetails": {
                "instanceType": "InMageAzureV2",
                "isMultiVmSyncPoint": "True" if doc.get("multiVmSyncPoint") else "False",
            },
        },
    }


def list_points(vault, fabric: str, container: str, item: str) -> list[dict]:
    """Newest first, as the portal and PowerShell show them."""
    return vault.store.docs(
        "recovery_points",
        "fabric = ? AND container = ? AND item = ?",
        (fabric, container, item),
        "time DESC, name",
    )


def require_point(vault, fabric: str, container: str, item: str, name: str) -> dict:
    doc = vault.store.get("recovery_points", fabric, container, item, name)
    if doc is None:
        raise NotFound(
            ids.T_RECOVERY_POINT, f"{fabric}/{container}/{item}/{name}", vault.scope.resource_group
        )
    return doc
