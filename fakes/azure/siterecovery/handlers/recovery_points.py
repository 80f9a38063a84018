"""recoveryPoints of a protected item (written by the Site Recovery worker)."""

from __future__ import annotations

from ..models import protected_items, recovery_points
from . import operation
from .common import ok, paged, require_container


def _item(service, req) -> dict:
    p = req.params
    require_container(service.vault, p["fabricName"], p["protectionContainerName"])
    return protected_items.require_item(
        service.vault,
        p["fabricName"],
        p["protectionContainerName"],
        p["replicatedProtectedItemName"],
    )


@operation("RecoveryPoints_ListByReplicationProtectedItems")
def list_points(service, req):
    item = _item(service, req)
    docs = recovery_points.list_points(
        service.vault, item["fabric"], item["container"], item["name"]
    )
    return paged(
        req,
        docs,
        key=lambda d: (-d["time"], d["name"].lower()),
        render=lambda d: recovery_points.recovery_point_json(service.vault, d),
    )


@operation("RecoveryPoints_Get")
def get_point(service, req):
    item = _item(service, req)
    doc = recovery_points.require_point(
        service.vault,
        item["fabric"],
        item["container"],
        item["name"],
        req.params["recoveryPointName"],
    )
    return ok(recovery_points.recovery_point_json(service.vault, doc))
