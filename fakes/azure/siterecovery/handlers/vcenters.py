"""replicationvCenters: list, get, and add (a job whose discovery the configuration server does)."""

from __future__ import annotations

from .. import ids
from ..errors import NotFound
from ..models import vcenters
from . import operation
from .common import accepted_job, ok, paged, require_fabric


@operation("ReplicationvCenters_Get")
def get_vcenter(service, req):
    require_fabric(service.vault, req.params["fabricName"])
    doc = service.vault.store.get("vcenters", req.params["fabricName"], req.params["vcenterName"])
    if doc is None:
        raise NotFound(ids.T_VCENTER, req.params["vcenterName"], service.vault.scope.resource_group)
    return ok(vcenters.vcenter_json(service.vault, doc))


@operation("ReplicationvCenters_ListByReplicationFabrics")
def list_vcenters_of_fabric(service, req):
    require_fabric(service.vault, req.params["fabricName"])
    docs = service.vault.store.docs("vcenters", "fabric = ?", (req.params["fabricName"],), "name")
    return paged(
        req,
        docs,
        key=lambda d: d["name"].lower(),
        render=lambda d: vcenters.vcenter_json(service.vault, d),
    )


@operation("ReplicationvCenters_List")
def list_vcenters(service, req):
    docs = service.vault.store.docs("vcenters", order="fabric, name")
    return paged(
        req,
        docs,
        key=lambda d: (d["fabric"].lower(), d["name"].lower()),
        render=lambda d: vcenters.vcenter_json(service.vault, d),
    )


@operation("ReplicationvCenters_Create")
def add_vcenter(service, req):
    vault = service.vault
    fabric = require_fabric(vault, req.params["fabricName"])
    inp = vcenters.check_add(vault, fabric, req.params["vcenterName"], req.json())
    job = vault.jobs.start(
        "AddVCenter",
        input=inp,
        target_id=vault.scope.vcenter(fabric["name"], inp["vcenter"]),
        target_name=inp["friendlyName"],
        result_path=vault.scope.vcenter(fabric["name"], inp["vcenter"]),
        fabric=fabric["name"],
        affected={"ConfigurationServer": fabric.get("hostName"), "VCenter": inp["ipAddress"]},
    )
    return accepted_job(service, req, job)
