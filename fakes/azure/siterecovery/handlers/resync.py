"""repairReplication (resync) and resolveHealthErrors of a protected item (long-running, each a
job; see models/resync.py)."""

from __future__ import annotations

from ..models import protected_items as items
from ..models import resync
from . import operation
from .common import accepted_job, require_container


def _item(service, req) -> dict:
    p = req.params
    require_container(service.vault, p["fabricName"], p["protectionContainerName"])
    return items.require_item(
        service.vault,
        p["fabricName"],
        p["protectionContainerName"],
        p["replicatedProtectedItemName"],
    )


@operation("ReplicationProtectedItems_RepairReplication")
def repair_replication(service, req):
    doc = _item(service, req)
    resync.check_repair(service.vault, doc)  # the job's creation checks again, atomically
    return accepted_job(service, req, resync.start_repair(service.vault, doc))


@operation("ReplicationProtectedItems_ResolveHealthErrors")
def resolve_health_errors(service, req):
    doc = _item(service, req)
    error_ids = resync.check_resolve(doc, req.json())
    return accepted_job(service, req, resync.start_resolve(service.vault, doc, error_ids))
