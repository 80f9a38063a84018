"""Failover actions on a protected item: test failover and cleanup, unplanned and planned
failover, commit, cancel, apply recovery point (all long-running, each a job)."""

from __future__ import annotations

from ..errors import InvalidInput, ProviderNotEmulated
from ..models import failover
from ..models import protected_items as items
from ..models.failover_jobs import JOB_OF_ACTION
from . import operation
from .common import accepted_job, require_container


def _props(req, required: bool = True) -> dict:
    body = req.json(required=required)
    if body is None:
        return {}
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise InvalidInput('The request body must be {"properties": {...}}.')
    return body["properties"]


def _direction(props: dict) -> None:
    direction = props.get("failoverDirection", "PrimaryToRecovery")
    if direction == "RecoveryToPrimary":
        raise ProviderNotEmulated(
            "Failover from Azure back to the on-premises site (failback) is not emulated."
        )
    if direction != "PrimaryToRecovery":
        raise InvalidInput("'failoverDirection' must be PrimaryToRecovery or RecoveryToPrimary.")


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
    props = _props(req)
    _direction(props)
    network_type = props.get("networkType", "VmNetworkAsInput")
    if network_type not in ("VmNetworkAsInput", "NoNetworkAttachAsInput"):
        raise InvalidInput("'networkType' must be VmNetworkAsInput.")
    if not props.get("networkId"):
        raise InvalidInput("A test failover needs 'networkId': the isolated test network.")
    return _start(
        service, req, "testFailover", networkId=props["networkId"], point=_provider_point(props)
    )


@operation("ReplicationProtectedItems_TestFailoverCleanup")
def test_failover_cleanup(service, req):
    props = _props(req)
    comments = props.get("comments")
    if comments is not None and (not isinstance(comments, str) or len(comments) > 1024):
        raise InvalidInput("'comments' is text of at most 1024 characters.")
    return _start(service, req, "testFailoverCleanup", comments=comments)


@operation("ReplicationProtectedItems_UnplannedFailover")
def unplanned_failover(service, req):
    props = _props(req)
    _direction(props)
    source = props.get("sourceSiteOperations", "NotRequired")
    if source not in ("Required", "NotRequired"):
        raise InvalidInput("'sourceSiteOperations' must be Required or NotRequired.")
    return _start(
        service, req, "unplannedFailover", point=_provider_point(props), sourceSiteOperations=source
    )


@operation("ReplicationProtectedItems_PlannedFailover")
def planned_failover(service, req):
    props = _props(req, required=False)
    _direction(props)
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
    props = _props(req)
    point = props.get("recoveryPointId")
    if not point:
        raise InvalidInput("'recoveryPointId' is required.")
    _provider_point(props)
    if failover.point_name(point) is None:
        raise InvalidInput("'recoveryPointId' names no recovery point.")
    return _start(service, req, "applyRecoveryPoint", point=point)
