"""disks: get, list (group, subscription), create or update (answered when the copy is
done: Azurite copies within one account at once), delete, tags."""

from __future__ import annotations

from fakes.azure.arm.front import ArmResponse
from fakes.azure.arm.paging import paged

from ..errors import NotEmulated
from ..models.disks import parse_disk_body
from . import operation


def _key(doc: dict) -> tuple:
    return (doc["resourceGroup"].lower(), doc["name"].lower())


@operation("Disks_Get")
def get_disk(compute, req):
    p = req.params
    return ArmResponse(200, compute.disk(p["resourceGroupName"], p["diskName"]))


@operation("Disks_List", "Disks_ListByResourceGroup")
def list_disks(compute, req):
    docs = compute.disks.list(req.params.get("resourceGroupName"))
    return paged(req, docs, key=_key, render=compute.disks.render)


@operation("Disks_CreateOrUpdate")
def put_disk(compute, req):
    p = req.params
    doc, _created = compute.disks.create(
        p["resourceGroupName"], p["diskName"], parse_disk_body(req.json())
    )
    # Disks_CreateOrUpdate answers 200 or 202 (never 201); the copy is done: 200, Succeeded.
    return ArmResponse(200, compute.disks.render(doc))


@operation("Disks_Update")
def patch_disk(compute, req):
    p = req.params
    body = req.json()
    other = sorted(set(body) - {"tags"}) if isinstance(body, dict) else ["body"]
    if other:
        raise NotEmulated(f"Updating {', '.join(other)} of a disk with PATCH", "PATCH tags only.")
    doc = compute.disks.set_tags(p["resourceGroupName"], p["diskName"], body.get("tags"))
    return ArmResponse(200, compute.disks.render(doc))


@operation("Disks_Delete")
def delete_disk(compute, req):
    p = req.params
    compute.scope.group(p["resourceGroupName"])
    deleted = compute.delete_disk(p["resourceGroupName"], p["diskName"])
    return ArmResponse(200 if deleted else 204)
