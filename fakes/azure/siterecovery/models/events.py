"""replicationEvents: what the vault records as notable (job failures, server and VM health).

Written by the ARM process (job outcomes, configuration/process server health changes from
heartbeats) and by the Site Recovery worker (VM health, RPO) through
`replication_state.ReplicationState.add_event`. Event names follow the real shape
`<Kind>MonitoringEvent;<ticks>_<guid>`.
"""

from __future__ import annotations

import sqlite3
import uuid

from .. import ids
from ..store import Store
from .common import compact, iso
from .filters import FilterSpec, apply_filter

EVENT_TYPES = {
    "JobStatus": "JobStatusMonitoringEvent",
    "VmHealth": "VmMonitoringEvent",
    "ServerHealth": "ServerMonitoringEvent",
    "AgentHealth": "AgentMonitoringEvent",
}
SEVERITIES = ("OK", "Info", "Warning", "Error", "Critical")

FILTER = FilterSpec(
    {
        "EventType": "eventType",
        "Severity": "severity",
        "AffectedObjectFriendlyName": "affectedObjectFriendlyName",
        "AffectedObjectCorrelationId": "affectedObjectCorrelationId",
        "FabricId": "fabricId",
        "EventCode": "eventCode",
    },
    times={"TimeOfOccurrence": "time"},
)


def add_event(
    store: Store,
    db: sqlite3.Connection,
    scope: ids.VaultScope,
    *,
    time: float,
    event_type: str,
    severity: str,
    description: str,
    affected_object: str | None = None,
    correlation_id: str | None = None,
    fabric: str | None = None,
    provider: str | None = None,
    provider_details: dict | None = None,
    job: dict | None = None,
    health_errors: list[dict] | None = None,
    event_code: str | None = None,
) -> str:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"event_type must be one of {', '.join(EVENT_TYPES)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
    # .NET ticks, as the real names carry them.
    ticks = int(time * 10_000_000) + 621_355_968_000_000_000
    name = f"{EVENT_TYPES[event_type]};{ticks}_{uuid.uuid4()}"
    doc = compact(
        {
            "name": name,
            "time": time,
            "eventCode": event_code
            or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{event_type}:{description}")),
            "description": description,
            "eventType": event_type,
            "affectedObjectFriendlyName": affected_object,
            "affectedObjectCorrelationId": correlation_id,
            "severity": severity,
            "fabricId": scope.fabric(fabric) if fabric else None,
            "provider": provider,
            "providerDetails": provider_details,
            "job": job,
            "healthErrors": health_errors or [],
        }
    )
    store.put(db, "events", (name,), doc, time=time)
    return name


def event_json(scope: ids.VaultScope, doc: dict) -> dict:
    provider = doc.get("provider")
    props = compact(
        {
            "eventCode": doc.get("eventCode"),
            "description": doc.get("description"),
            "eventType": doc.get("eventType"),
            "affectedObjectFriendlyName": doc.get("affectedObjectFriendlyName"),
            "affectedObjectCorrelationId": doc.get("affectedObjectCorrelationId"),
            "severity": doc.get("severity"),
            "timeOfOccurrence": iso(doc["time"]),
            "fabricId": doc.get("fabricId"),
            "providerSpecificDetails": (
                {"instanceType": provider, **(doc.get("providerDetails") or {})}
                if provider
                else None
            ),
            "eventSpecificDetails": (
                {"instanceType": "JobStatus", **doc["job"]} if doc.get("job") else None
            ),
            "healthErrors": doc.get("healthErrors", []),
        }
    )
    return {
        "id": scope.event(doc["name"]),
        "name": doc["name"],
        "type": ids.T_EVENT,
        "properties": props,
    }


def list_events(store: Store, filter_text: str | None) -> list[dict]:
    docs = store.docs("events", order="time DESC, name")
    return apply_filter(FILTER, filter_text, docs)
