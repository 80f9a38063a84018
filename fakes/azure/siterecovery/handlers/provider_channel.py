"""The provider channel: how a registered configuration server talks to the vault (lab routes).

Every route is under `{vault}/replicationFabrics/{fabricName}/drlabProvider/` and answers
only the principal that registered the fabric (403 otherwise), with the same bearer tokens
and api-version as the rest of ARM. See docs/site-recovery.md for the bodies.
"""

from __future__ import annotations

from .. import ids
from ..errors import FabricNotRegistered, InvalidInput, NotFound, NotTheRegisteredServer
from ..models import fabrics, protectable_items
from ..models.work_items import work_item_json
from . import operation
from .common import ok, require_fabric


def registered_fabric(service, req) -> dict:
    fabric = require_fabric(service.vault, req.params["fabricName"])
    if fabric["kind"] != "VMware":
        raise FabricNotRegistered(
            f"The fabric '{fabric['name']}' is not a registered configuration server."
        )
    caller = (req.principal_app_id or "").lower()
    if caller != (fabric.get("registeredBy") or "").lower():
        raise NotTheRegisteredServer(
            f"The client '{req.principal_app_id}' is not the configuration server registered as "
            f"fabric '{fabric['name']}': only the principal that registered it may use its "
            "provider channel."
        )
    return fabric


@operation("DrlabProvider_Heartbeat")
def heartbeat(service, req):
    fabric = registered_fabric(service, req)
    body = fabrics.check_heartbeat(req.json())
    return ok(fabrics.apply_heartbeat(service.vault, fabric, body))


@operation("DrlabProvider_PutInventory")
def put_inventory(service, req):
    fabric = registered_fabric(service, req)
    vms = protectable_items.check_inventory(req.json())
    return ok(
        protectable_items.sync_inventory(service.vault, fabric, req.params["vcenterName"], vms)
    )


@operation("DrlabProvider_ListWorkItems")
def list_work_items(service, req):
    fabric = registered_fabric(service, req)
    try:
        wait = float(req.query.get("waitSeconds", "0"))
    except ValueError:
        raise InvalidInput("'waitSeconds' must be a number of seconds (0-60).") from None
    if not 0 <= wait <= 60:
        raise InvalidInput("'waitSeconds' must be between 0 and 60.")
    items = service.vault.work_items.claim(fabric["name"], wait, service.stop_event)
    return ok({"value": [work_item_json(i) for i in items]})


def _item(service, fabric, item_id) -> dict:
    item = service.vault.work_items.get(item_id)
    if item is None or item["fabric"].lower() != fabric["name"].lower():
        raise NotFound(f"{ids.T_FABRIC}/drlabProvider/workItems", item_id)
    return item


@operation("DrlabProvider_GetWorkItem")
def get_work_item(service, req):
    fabric = registered_fabric(service, req)
    return ok(work_item_json(_item(service, fabric, req.params["workItemId"])))


@operation("DrlabProvider_UpdateWorkItem")
def update_work_item(service, req):
    fabric = registered_fabric(service, req)
    item = service.vault.jobs.report(req.params["workItemId"], fabric["name"], req.json())
    return ok(work_item_json(item))
