"""replicationProtectedItems: enable (create), get, list, disable (remove), purge (DELETE)."""

from __future__ import annotations

from fakes.azure.arm.paging import paged_query

from ..models import protected_items as items
from ..models.protected_item_json import RenderContext, protected_item_json
from . import operation
from .common import accepted_job, ok, paged, require_container


def _key(d: dict):
    return (d["fabric"].lower(), d["container"].lower(), d["name"].lower())


@operation("ReplicationProtectedItems_Get")
def get_item(service, req):
    vault = service.vault
    p = req.params
    require_container(vault, p["fabricName"], p["protectionContainerName"])
    doc = items.require_item(
        vault, p["fabricName"], p["protectionContainerName"], p["replicatedProtectedItemName"]
    )
    return ok(protected_item_json(vault, doc))


def _list(service, req, fabric: str | None = None, container: str | None = None):
    vault = service.vault
    ctx = RenderContext(vault)
    render = lambda d: protected_item_json(vault, d, ctx)  # noqa: E731
    if req.query.get("$filter"):
        docs = items.list_items(vault, fabric, container, req.query["$filter"])
        return paged(req, docs, key=_key, render=render)
    fetch = lambda after, limit: items.page_of_items(vault, after, limit, fabric, container)  # noqa: E731
    return paged_query(req, fetch, key=_key, render=render)


@operation("ReplicationProtectedItems_ListByReplicationProtectionContainers")
def list_items_of_container(service, req):
    p = req.params
    require_container(service.vault, p["fabricName"], p["protectionContainerName"])
    return _list(service, req, p["fabricName"], p["protectionContainerName"])


@operation("ReplicationProtectedItems_List")
def list_items(service, req):
    return _list(service, req)


@operation("ReplicationProtectedItems_Create")
def enable_protection(service, req):
    vault = service.vault
    p = req.params
    container = require_container(vault, p["fabricName"], p["protectionContainerName"])
    fabric = vault.store.get("fabrics", p["fabricName"])
    inp = items.check_enable(vault, fabric, container, p["replicatedProtectedItemName"], req.json())
    path = vault.scope.protected_item(inp["fabric"], inp["container"], inp["item"])
    job = vault.jobs.start(
        "EnableProtection",
        input=inp,
        target_id=inp["protectableItem"],
        target_name=inp["vmName"],
        result_path=path,
        fabric=inp["fabric"],
        affected={
            "PrimaryFabricProviderId": "VMware",
            "RecoveryFabricProviderId": "Azure",
            "ProcessServerId": inp["enableInput"]["processServerId"],
        },
    )
    return accepted_job(service, req, job)


@operation("ReplicationProtectedItems_Delete")
def disable_protection(service, req):
    vault = service.vault
    p = req.params
    require_container(vault, p["fabricName"], p["protectionContainerName"])
    doc = items.require_item(
        vault, p["fabricName"], p["protectionContainerName"], p["replicatedProtectedItemName"]
    )
    inp = items.check_disable(vault, doc, req.json(required=False))
    job = vault.jobs.start(
        "DisableProtection",
        input=inp,
        target_id=doc["protectableItemName"],
        target_name=doc["friendlyName"],
        fabric=doc["fabric"],
    )
    return accepted_job(service, req, job)


@operation("ReplicationProtectedItems_Purge")
def purge(service, req):
    vault = service.vault
    p = req.params
    require_container(vault, p["fabricName"], p["protectionContainerName"])
    doc = items.require_item(
        vault, p["fabricName"], p["protectionContainerName"], p["replicatedProtectedItemName"]
    )
    job = vault.jobs.start(
        "PurgeProtection",
        input={"fabric": doc["fabric"], "container": doc["container"], "item": doc["name"]},
        target_id=doc["protectableItemName"],
        target_name=doc["friendlyName"],
        fabric=doc["fabric"],
    )
    return accepted_job(service, req, job)
