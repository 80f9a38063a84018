"""replicationFabrics and their Recovery Services providers (the configuration servers)."""

from __future__ import annotations

from .. import ids
from ..errors import NotFound
from ..models import fabrics
from . import operation
from .common import accepted_job, ok, paged, require_fabric


def _sorted_fabrics(service) -> list[dict]:
    return service.vault.store.docs("fabrics", order="name")


@operation("ReplicationFabrics_Get")
def get_fabric(service, req):
    doc = require_fabric(service.vault, req.params["fabricName"])
    return ok(fabrics.fabric_json(service.vault, doc))


@operation("ReplicationFabrics_List")
def list_fabrics(service, req):
    return paged(
        req,
        _sorted_fabrics(service),
        key=lambda d: d["name"].lower(),
        render=lambda d: fabrics.fabric_json(service.vault, d),
    )


@operation("ReplicationFabrics_Create")
def create_fabric(service, req):
    """A configuration server registers (customDetails instanceType VMware + registration key)."""
    vault = service.vault
    name = req.params["fabricName"]
    inp = fabrics.check_registration(vault, name, req.json())
    inp["registeredBy"] = req.principal_app_id
    job = vault.jobs.start(
        "RegisterConfigurationServer",
        input=inp,
        target_id=fabrics.provider_id_of(name),
        target_name=inp["hostName"],
        result_path=vault.scope.fabric(name),
        fabric=name,
        affected={"PrimaryFabricProviderId": "VMware", "RecoveryFabricProviderId": "Azure"},
    )
    return accepted_job(service, req, job)


def _providers(service, fabric: str | None = None) -> list[dict]:
    where, args = ("kind = 'VMware'", ())
    if fabric is not None:
        where, args = "kind = 'VMware' AND name = ?", (fabric,)
    return service.vault.store.docs("fabrics", where, args, "name")


@operation("ReplicationRecoveryServicesProviders_Get")
def get_provider(service, req):
    doc = require_fabric(service.vault, req.params["fabricName"])
    if doc["kind"] != "VMware" or doc["providerId"].lower() != req.params["providerName"].lower():
        raise NotFound(ids.T_PROVIDER, req.params["providerName"])
    return ok(fabrics.provider_json(service.vault, doc))


@operation("ReplicationRecoveryServicesProviders_ListByReplicationFabrics")
def list_providers_of_fabric(service, req):
    require_fabric(service.vault, req.params["fabricName"])
    docs = _providers(service, req.params["fabricName"])
    return paged(
        req,
        docs,
        key=lambda d: d["providerId"],
        render=lambda d: fabrics.provider_json(service.vault, d),
    )


@operation("ReplicationRecoveryServicesProviders_List")
def list_providers(service, req):
    docs = sorted(_providers(service), key=lambda d: d["providerId"])
    return paged(
        req,
        docs,
        key=lambda d: d["providerId"],
        render=lambda d: fabrics.provider_json(service.vault, d),
    )
