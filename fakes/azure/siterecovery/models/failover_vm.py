"""The Azure work of a failover: managed disks copied from a recovery point's snapshots, and a
VM that boots the same guest runtime on them (Compute and Network, in this process).

These are `azure` tasks of the failover jobs: `run(vault, job) -> output`, outside the
database transaction, each safe to run again (names are fixed by the item and the job, an
existing VM or disk of that name is replaced).

Names: a test failover makes `<target vm>-test` with disks `<target vm>-test-disk<i>`; a
failover makes `<target vm>` with disks `<target vm>-disk<i>-<point prefix>`, in the target
resource group of the enable input, on the target (or test) network and subnet.
"""

from __future__ import annotations

import time

from ..errors import InvalidInput, SiteRecoveryError
from . import failover
from . import recovery_points as points

DEFAULT_SIZE = "Standard_D2s_v3"
FINAL_SYNC_TIMEOUT = 300.0  # wall seconds for the shutdown's final point to arrive
DRAIN_TIMEOUT = 120.0


def _item(vault, job) -> dict:
    inp = job["input"]
    doc = vault.store.get("protected_items", inp["fabric"], inp["container"], inp["item"])
    if doc is None:
        raise SiteRecoveryError(
            f"The protected item '{inp['item']}' no longer exists.", code="ProtectedItemNotFound"
        )
    return doc


def _compute(vault):
    compute = getattr(vault, "compute", None)
    if compute is None:
        raise SiteRecoveryError("Compute is not available in this lab.", code="InternalError")
    return compute


def _last(arm_id: str | None) -> str | None:
    return arm_id.rstrip("/").rsplit("/", 1)[-1] if arm_id else None


def _target(doc: dict) -> dict:
    enable = doc.get("enableInput") or {}
    return {
        "group": _last(enable.get("targetAzureV2ResourceGroupId")),
        "vm": enable.get("targetAzureVmName") or doc["friendlyName"],
        "vnet": _last(enable.get("targetAzureNetworkId")),
        "subnet": enable.get("targetAzureSubnetId") or "default",
        "size": enable.get("targetVmSize") or DEFAULT_SIZE,
        "disks": [d["diskId"] for d in enable.get("disksToInclude") or []],
    }


def _drain(vault, doc: dict) -> None:
    """Before a "Latest" failover: let the service process what it has received."""
    pending = getattr(vault, "pending_logs", None)
    if pending is None:
        return
    deadline = time.monotonic() + DRAIN_TIMEOUT
    vm_id = doc.get("protectableItemName")
    while pending(vm_id) and time.monotonic() < deadline:
        time.sleep(0.2)  # the worker applies; bounded by the deadline


def _point(vault, job, doc: dict) -> dict:
    # A planned failover's final sync names its point; otherwise the caller's choice.
    choice = (job.get("output") or {}).get("final_point") or job["input"].get("point")
    if choice == failover.LATEST:
        _drain(vault, doc)
    return failover.choose_point(vault, doc, choice)


def _make_vm(
    vault, job, doc: dict, point: dict, name: str, disk_prefix: str, vnet: str, subnet: str
) -> dict:
    from fakes.azure.compute.compute import GuestSpec, NicSpec

    compute = _compute(vault)
    target = _target(doc)
    if not target["group"] or not vnet:
        raise InvalidInput("The protected item has no target resource group or network.")
    snapshots = (point.get("details") or {}).get("snapshots") or {}
    order = target["disks"] or list(snapshots)
    missing = [d for d in order if d not in snapshots]
    if missing:
        raise SiteRecoveryError(
            f"The recovery point {point['name']} has no snapshot of disk(s) {missing}.",
            code="RecoveryPointIncomplete",
        )
    vm = doc.get("vm") or {}
    os_type = vm.get("osType") or "Linux"
    compute.delete_vm(target["group"], name, delete_disks=True, delete_nics=True)
    disks = []
    for index, disk_id in enumerate(order):
        disk = compute.create_disk_from_snapshot(
            target["group"],
            f"{disk_prefix}{index}",
            snapshots[disk_id],
            tags={},
            os_type=os_type if index == 0 else None,
        )
        disks.append(disk["id"])
    # The disks as made from the point, before the guest writes to them: what `drlab verify
    # VM --failover` checks against the source at the point's tag.
    restored = {
        disk_id: compute.snapshot_disk(target["group"], _last(disks[index]))
        for index, disk_id in enumerate(order)
    }
    view = compute.create_vm(
        target["group"],
        name,
        size=target["size"],
        os_disk=disks[0],
        data_disks=disks[1:],
        nics=[NicSpec(vnet=vnet, subnet=subnet)],
        tags={"drlab-failover-of": doc["friendlyName"], "drlab-recovery-point": point["name"]},
        boot=True,
        guest=GuestSpec(os_family=os_type.lower(), hostname=vm.get("name") or doc["friendlyName"]),
    )
    return {
        "vm": name,
        "source_vm": doc["friendlyName"],
        "group": target["group"],
        "disks": [_last(d) for d in disks],
        "point": point["name"],
        "point_time": point["time"],
        "point_type": point["type"],
        "tag_id": (point.get("details") or {}).get("tag_id"),
        "restored": restored,
        "boot": _boot(view),
    }


def _boot(view: dict) -> dict:
    return {
        "power_state": view.get("power_state"),
        "guest_running": view.get("guest_running"),
        "application_check": view.get("application_check"),
        "ip": view.get("ip"),
    }


# -- the tasks ------------------------------------------------------------------------------
def create_test_vm(vault, job) -> dict:
    doc = _item(vault, job)
    point = _point(vault, job, doc)
    name = f"{_target(doc)['vm']}-test"
    vnet = _last(job["input"].get("networkId"))
    if not vnet:
        raise InvalidInput("A test failover needs 'networkId' (the isolated test network).")
    return _make_vm(vault, job, doc, point, name, f"{name}-disk", vnet, "default")


def create_failover_vm(vault, job) -> dict:
    doc = _item(vault, job)
    point = _point(vault, job, doc)
    target = _target(doc)
    return _make_vm(
        vault,
        job,
        doc,
        point,
        target["vm"],
        f"{target['vm']}-disk",
        target["vnet"],
        target["subnet"],
    )


def check_booted(vault, job) -> dict:
    out = job.get("output") or {}
    view = _compute(vault).vm_view(out["group"], out["vm"])
    if not view.get("guest_running"):
        raise SiteRecoveryError(
            f"The virtual machine {out['vm']} did not start.", code="VmStartFailed"
        )
    return {"boot": _boot(view)}


def _delete(vault, made: dict | None) -> dict:
    if made:
        _compute(vault).delete_vm(made["group"], made["vm"], delete_disks=True, delete_nics=True)
    return {}


def delete_test_vm(vault, job) -> dict:
    return _delete(vault, _item(vault, job).get("testFailover"))


def delete_failover_vm(vault, job) -> dict:
    return _delete(vault, _item(vault, job).get("failover"))


def change_point(vault, job) -> dict:
    doc = _item(vault, job)
    made = doc.get("failover") or {}
    point = _point(vault, job, doc)
    target = _target(doc)
    return _make_vm(
        vault,
        job,
        doc,
        point,
        made.get("vm") or target["vm"],
        f"{target['vm']}-disk",
        target["vnet"],
        target["subnet"],
    )


def wait_final_sync(vault, job) -> dict:
    """Planned failover: the source shut down cleanly, its agent sent everything up to a
    final tag; wait for that recovery point (no data is lost)."""
    doc = _item(vault, job)
    started = job["start"]
    deadline = time.monotonic() + FINAL_SYNC_TIMEOUT
    while time.monotonic() < deadline:
        for p in points.list_points(vault, doc["fabric"], doc["container"], doc["name"]):
            tag = (p.get("details") or {}).get("tag_id") or ""
            if tag.startswith("shutdown-") and p["time"] >= started - 1:
                return {"final_point": p["name"]}  # the failover uses exactly this point
        time.sleep(0.2)  # the worker applies the last logs; bounded by the deadline
    raise SiteRecoveryError(
        "The final changes did not reach Azure in time after the VM was shut down.",
        code="FinalSyncTimedOut",
    )


def shutdown_payload(vault, job, kind) -> dict:
    doc = _item(vault, job)
    return {
        "protectedItemName": doc["name"],
        "vmId": doc.get("protectableItemName"),
        "vmName": doc["friendlyName"],
    }
