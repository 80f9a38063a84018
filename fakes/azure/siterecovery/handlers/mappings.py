"""replicationProtectionContainerMappings: associate a policy with a configuration server."""

from __future__ import annotations

from .. import ids
from ..errors import NotFound
from ..models import mappings
from . import operation
from .common import accepted_job, ok, paged, require_container


@operation("ReplicationProtectionContainerMappings_Get")
def get_mapping(service, req):
    vault = service.vault
    fabric, container = req.params["fabricName"], req.params["protectionContainerName"]
    require_container(vault, fabric, container)
    doc = vault.store.get("mappings", fabric, container, req.params["mappingName"])
    if doc is None:
        raise NotFound(ids.T_MAPPING, req.params["mappingName"], vault.scope.resource_group)
    return ok(mappings.mapping_json(vault, doc))


@operation("ReplicationProtectionContainerMappings_ListByReplicationProtectionContainers")
def list_mappings_of_container(service, req):
    vault = service.vault
    fabric, container = req.params["fabricName"], req.params["protectionContainerName"]
    require_container(vault, fabric, container)
    docs = vault.store.docs("mappings", "fabric = ? AND container = ?", (fabric, container), "name")
    return paged(
        req, docs, key=lambda d: d["name"].lower(), render=lambda d: mappings.mapping_json(vault, d)
    )


@operation("ReplicationProtectionContainerMappings_List")
def list_mappings(service, req):
    docs = service.vault.store.docs("mappings", order="fabric, container, name")
    return paged(
        req,
        docs,
        key=lambda d: (d["fabric"].lower(), d["container"].lower(), d["name"].lower()),
        render=lambda d: mappings.mapping_json(service.vault, d),
    )


@operation("ReplicationProtectionContainerMappings_Create")
def create_mapping(service, req):
    vault = service.vault
    fabric_name, container_name = req.params["fabricName"], req.params["protectionContainerName"]
    container = require_container(vault, fabric_name, container_name)
    fabric = vault.store.get("fabrics", fabric_name)
    inp = mappings.check_mapping(vault, fabric, container, req.params["mappingName"], req.json())
    job = vault.jobs.start(
        "AssociatePolicy",
        input=inp,
        target_id=vault.scope.container(fabric["name"], container["name"]),
        target_name=container["friendlyName"],
        result_path=vault.scope.mapping(fabric["name"], container["name"], inp["mapping"]),
        fabric=fabric["name"],
        affected={
            "PolicyName": inp["policy"],
            "PrimaryFabricProviderId": "VMware",
            "RecoveryFabricProviderId": "Azure",
        },
    )
    return accepted_job(service, req, job)
