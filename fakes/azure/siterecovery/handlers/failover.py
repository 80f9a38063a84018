"""Failover actions on a protected item: test failover and cleanup, unplanned and planned
failover, commit, cancel, apply recovery point (all long-running, each a job)."""

from __future__ import annotations

from ..errors import InvalidInput, ProviderNotEmulated
from ..models import failover
from ..models import protected_items as items
from ..models.failover_jobs import JOB_OF_ACTION
from . import operation
from .common import accepted_job, require_container


# -- the inputs that item and plan failovers share (handlers/plans.py uses them too) ------
def properties(req, required: bool = True) -> dict:
    body = req.json(required=required)
    if body is None:
        return {}
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise InvalidInput('The request body must be {"properties": {...}}.')
    return body["properties"]


def check_direction(props: dict, default: str | None = "PrimaryToRecovery") -> None:
    """Only PrimaryToRecovery is emulated (a plan's input must name it; an item's may not)."""
    direction = props.get("failoverDirection", default)
    if direction == "RecoveryToPrimary":
        raise ProviderNotEmulated(
            "Failover from Azure back to the on-premises site (failback) is not emulated."
        )
    if direction != "PrimaryToRecovery":
        raise InvalidInput("'failoverDirection' must be PrimaryToRecovery or RecoveryToPrimary.")


def comments_of(props: dict) -> str | None:
    comments = props.get("comments")
    if comments is not None and (not isinstance(comments, str) or len(comments) > 1024):
        raise InvalidInput("'comments' is text of at most 1024 characters.")
    return comments


def source_site_operations(props: dict) -> str:
    source = props.get("sourceSiteOperations", "NotRequired")
    if source not in ("Required", "NotRequired"):
        raise InvalidInput("'sourceSiteOperations' must be Required or NotRequired.")
    return source


def test_network(props: dict, network_types=("VmNetworkAsInput",)) -> str:
    """The test network's ARM id (a test failover is always into a network given here)."""
    if props.get("networkType", "VmNetworkAsInput") not in network_types:
        raise InvalidInput("'networkType' must be VmNetworkAsInput (the isolated test network).")
    if not props.get("networkId"):
        raise InvalidInput("A test failover needs 'networkId': the isolated test network.")
    return props["networkId"]


def _provider_point(props: dict, key: str = "providerSpecificDetails") -> str | None:
    details = props.get(key)
    if details is None:
        return None
    if not isinstance(details, dict) or details.get("instanceType") != "InMageAzureV2":
        kind = details.get("instanceType") if isinstance(details, dict) else details
        raise ProviderNotEmulated(f"The replication provider input '{kind}' is not emulated.")
    return details.get("recoveryPointId")


def _start(service, req, action: str, **inp):
    vault = service.vault
    p = req.params
    require_container(vault, p["fabricName"], p["protectionContainerName"])
    doc = items.require_item(
        vault, p["fabricName"], p["protectionContainerName"], p["replicatedProtectedItemName"]
    )
    job = vault.jobs.start(
        JOB_OF_ACTION[action],
        input={
            "fabric": doc["fabric"],
            "container": doc["container"],
            "item": doc["name"],
            "action": action,
            **inp,
        },
        target_id=vault.scope.protected_item(doc["fabric"], doc["container"], doc["name"]),
        target_name=doc["friendlyName"],
        result_path=vault.scope.protected_item(doc["fabric"], doc["container"], doc["name"]),
        fabric=doc["fabric"],
        affected={"PrimaryFabricProviderId": "VMware", "RecoveryFabricProviderId": "Azure"},
    )
    return accepted_job(service, req, job)


@operation("ReplicationProtectedItems_TestFailover")
def test_failover(service, req):
    props = properties(req)
    check_direction(props)
    network = test_network(props, ("VmNetworkAsInput", "NoNetworkAttachAsInput"))
    return _start(service, req, "testFailover", networkId=network, point=_provider_point(props))


@operation("ReplicationProtectedItems_TestFailoverCleanup")
def test_failover_cleanup(service, req):
    return _start(service, req, "testFailoverCleanup", comments=comments_of(properties(req)))


@operation("ReplicationProtectedItems_UnplannedFailover")
def unplanned_failover(service, req):
    props = properties(req)
    check_direction(props)
    return _start(
        service,
        req,
        "unplannedFailover",
        point=_provider_point(props),
        sourceSiteOperations=source_site_operations(props),
    )


@operation("ReplicationProtectedItems_PlannedFailover")
def planned_failover(service, req):
    props = properties(req, required=False)
    check_direction(props)
    if props.get("providerSpecificDetails") not in (None, {}):
        _provider_point(props)
    return _start(service, req, "plannedFailover")


@operation("ReplicationProtectedItems_FailoverCommit")
def failover_commit(service, req):
    return _start(service, req, "failoverCommit")


@operation("ReplicationProtectedItems_FailoverCancel")
def failover_cancel(service, req):
    return _start(service, req, "failoverCancel")


@operation("ReplicationProtectedItems_ApplyRecoveryPoint")
def apply_recovery_point(service, req):
    props = properties(req)
    point = props.get("recoveryPointId")
    if not point:
        raise InvalidInput("'recoveryPointId' is required.")
    _provider_point(props)
    if failover.point_name(point) is None:
        raise InvalidInput("'recoveryPointId' names no recovery point.")
    return _start(service, req, "applyRecoveryPoint", point=point)
