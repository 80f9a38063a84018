"""replicationEvents: list (with $filter) and get."""

from __future__ import annotations

from .. import ids
from ..errors import NotFound
from ..models import events
from . import operation
from .common import ok, paged


@operation("ReplicationEvents_List")
def list_events(service, req):
    docs = events.list_events(service.vault.store, req.query.get("$filter"))
    return paged(
        req,
        docs,
        key=lambda d: (-d["time"], d["name"]),
        render=lambda d: events.event_json(service.vault.scope, d),
    )


@operation("ReplicationEvents_Get")
def get_event(service, req):
    doc = service.vault.store.get("events", req.params["eventName"])
    if doc is None:
        raise NotFound(ids.T_EVENT, req.params["eventName"], service.vault.scope.resource_group)
    return ok(events.event_json(service.vault.scope, doc))
