"""Failover of a VM through the public SDK, as a user's script would write it: recovery points,
test failover and its cleanup, unplanned and planned failover, commit, cancel, and a change of
recovery point before commit. Used by `drlab failover`, `drlab recovery-points`, the failover
scenarios and the tests. Recovery plans are in `lab/plans.py`.

A point is chosen by id (a name or an ARM id) or by kind: `latest-processed` (the newest point
Azure has: what the service uses without a recovery point), `latest-app`, `latest-crash`. For
a single VM `latest` is `latest-processed`; a plan's `Latest` also processes what the service
has received first (see the plan's recovery point type).
"""

from __future__ import annotations

from azure.mgmt.recoveryservicessiterecovery import models as m

from .asr import Asr
from .errors import AsrError

POINT_KINDS = {
    "latest": None,
    "latest-processed": None,
    "latest-app": "AppConsistent",
    "latest-crash": "CrashConsistent",
}


def recovery_points(asr: Asr, vm: str) -> list:
    """The VM's recovery points, newest first (`RecoveryPoint` models)."""
    site = asr.site()
    item = asr.protected(vm)
    found = list(
        asr.client.recovery_points.list_by_replication_protected_items(
            asr.rg, asr.vault, site.fabric, site.container, item.name
        )
    )
    return sorted(found, key=lambda p: p.properties.recovery_point_time, reverse=True)


def point_id(asr: Asr, vm: str, point: str | None) -> str | None:
    """The recovery point id a `--point` names (None: the service's default, latest processed)."""
    if point is None or point.lower() in ("latest", "latest-processed"):
        return None
    kind = POINT_KINDS.get(point.lower())
    if kind is None and point.lower() not in POINT_KINDS:
        if point.startswith("/subscriptions/"):
            return point
        for p in recovery_points(asr, vm):
            if p.name.lower() == point.lower():
                return p.id
        raise AsrError(f"{vm} has no recovery point {point!r} (see drlab recovery-points {vm})")
    for p in recovery_points(asr, vm):
        if p.properties.recovery_point_type == kind:
            return p.id
    raise AsrError(f"{vm} has no {kind} recovery point yet")


def _item(asr: Asr, vm: str):
    site = asr.site()
    return site, asr.protected(vm)


def test_network_id(asr: Asr) -> str:
    settings = asr.settings
    group = settings.get("target_resource_group", "drlab-target")
    network = settings.get("test_network", "vnet-test")
    return (
        f"/subscriptions/{asr.subscription}/resourceGroups/{group}"
        f"/providers/Microsoft.Network/virtualNetworks/{network}"
    )


def test_failover(asr: Asr, vm: str, point: str | None = None, network_id: str | None = None):
    """Start a test failover into the isolated test network; the poller's result is the item."""
    site, item = _item(asr, vm)
    return asr.client.replication_protected_items.begin_test_failover(
        asr.rg,
        asr.vault,
        site.fabric,
        site.container,
        item.name,
        m.TestFailoverInput(
            properties=m.TestFailoverInputProperties(
                failover_direction="PrimaryToRecovery",
                network_type="VmNetworkAsInput",
                network_id=network_id or test_network_id(asr),
                provider_specific_details=m.InMageAzureV2TestFailoverInput(
                    recovery_point_id=point_id(asr, vm, point)
                ),
            )
        ),
    )


def test_failover_cleanup(asr: Asr, vm: str, comments: str | None = None):
    site, item = _item(asr, vm)
    return asr.client.replication_protected_items.begin_test_failover_cleanup(
        asr.rg,
        asr.vault,
        site.fabric,
        site.container,
        item.name,
        m.TestFailoverCleanupInput(
            properties=m.TestFailoverCleanupInputProperties(comments=comments)
        ),
    )


def unplanned_failover(asr: Asr, vm: str, point: str | None = None):
    site, item = _item(asr, vm)
    return asr.client.replication_protected_items.begin_unplanned_failover(
        asr.rg,
        asr.vault,
        site.fabric,
        site.container,
        item.name,
        m.UnplannedFailoverInput(
            properties=m.UnplannedFailoverInputProperties(
                failover_direction="PrimaryToRecovery",
                source_site_operations="NotRequired",
                provider_specific_details=m.InMageAzureV2UnplannedFailoverInput(
                    recovery_point_id=point_id(asr, vm, point)
                ),
            )
        ),
    )


def planned_failover(asr: Asr, vm: str):
    """Shut the source down, send its last changes, fail over to that point: no data lost."""
    site, item = _item(asr, vm)
    return asr.client.replication_protected_items.begin_planned_failover(
        asr.rg,
        asr.vault,
        site.fabric,
        site.container,
        item.name,
        m.PlannedFailoverInput(
            properties=m.PlannedFailoverInputProperties(failover_direction="PrimaryToRecovery")
        ),
    )


def commit(asr: Asr, vm: str):
    site, item = _item(asr, vm)
    return asr.client.replication_protected_items.begin_failover_commit(
        asr.rg, asr.vault, site.fabric, site.container, item.name
    )


def cancel(asr: Asr, vm: str):
    site, item = _item(asr, vm)
    return asr.client.replication_protected_items.begin_failover_cancel(
        asr.rg, asr.vault, site.fabric, site.container, item.name
    )


def apply_point(asr: Asr, vm: str, point: str):
    """Change the recovery point of a failed-over VM before commit."""
    site, item = _item(asr, vm)
    chosen = point_id(asr, vm, point) or recovery_points(asr, vm)[0].id
    return asr.client.replication_protected_items.begin_apply_recovery_point(
        asr.rg,
        asr.vault,
        site.fabric,
        site.container,
        item.name,
        m.ApplyRecoveryPointInput(
            properties=m.ApplyRecoveryPointInputProperties(
                recovery_point_id=chosen,
                provider_specific_details=m.InMageAzureV2ApplyRecoveryPointInput(),
            )
        ),
    )
