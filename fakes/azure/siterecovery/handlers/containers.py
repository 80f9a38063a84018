"""replicationProtectionContainers: read-only here (they follow the fabrics)."""

from __future__ import annotations

from ..models.containers import container_json
from . import operation
from .common import ok, paged, require_container, require_fabric


@operation("ReplicationProtectionContainers_Get")
def get_container(service, req):
    doc = require_container(
        service.vault, req.params["fabricName"], req.params["protectionContainerName"]
    )
    return ok(container_json(service.vault, doc))


@operation("ReplicationProtectionContainers_ListByReplicationFabrics")
def list_containers_of_fabric(service, req):
    require_fabric(service.vault, req.params["fabricName"])
    docs = service.vault.store.docs("containers", "fabric = ?", (req.params["fabricName"],), "name")
    return paged(
        req,
        docs,
        key=lambda d: d["name"].lower(),
        render=lambda d: container_json(service.vault, d),
    )


@operation("ReplicationProtectionContainers_List")
def list_containers(service, req):
    docs = service.vault.store.docs("containers", order="fabric, name")
    return paged(
        req,
        docs,
        key=lambda d: (d["fabric"].lower(), d["name"].lower()),
        render=lambda d: container_json(service.vault, d),
    )
