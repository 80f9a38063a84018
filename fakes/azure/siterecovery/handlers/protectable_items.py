"""replicationProtectableItems: the discovered VMs of a configuration server's container."""

from __future__ import annotations

from .. import ids
from ..errors import NotFound
from ..models import protectable_items
from . import operation
from .common import ok, paged, require_container


@operation("ReplicationProtectableItems_ListByReplicationProtectionContainers")
def list_protectable(service, req):
    vault = service.vault
    fabric, container = req.params["fabricName"], req.params["protectionContainerName"]
    require_container(vault, fabric, container)
    rows = protectable_items.list_items(vault, fabric, container, req.query.get("$filter"))
    return paged(
        req,
        rows,
        key=lambda r: r[0]["name"].lower(),
        render=lambda r: protectable_items.protectable_item_json(vault, r[0], r[1], r[2]),
    )


@operation("ReplicationProtectableItems_Get")
def get_protectable(service, req):
    vault = service.vault
    fabric, container = req.params["fabricName"], req.params["protectionContainerName"]
    require_container(vault, fabric, container)
    name = req.params["protectableItemName"]
    for doc, rpi, agent in protectable_items.list_items(vault, fabric, container, None):
        if doc["name"].lower() == name.lower():
            return ok(protectable_items.protectable_item_json(vault, doc, rpi, agent))
    raise NotFound(ids.T_PROTECTABLE, name, vault.scope.resource_group)
