"""`POST /_lab/verify`: which VM and recovery point, then `verify.py` on its snapshots.

The VM is named by its instance UUID, its friendly name or its protected item's name; the
point by its name (the recovery point id the API shows) or "latest". With `"snapshots":
{diskId: "container/blob?snapshot=ts"}` other blobs of the disks account are checked against
that point's manifest instead of the point's own snapshots; with `"failover": "test"|"run"`,
those of the VM that a test failover or a failover made, at its point: its managed disks as
they were made from the point (the failover keeps a snapshot of each before the boot).

The manifest of the point's tag comes from the cache container (verify mode); without one,
only the application check says anything.
"""

from __future__ import annotations

from fakes.guest.host import DiskRef, verify_disks

from . import names
from .errors import BadRequest, RecoveryPointNotFound, VmNotFound
from .verify import application_summary, compare_disk

APPLICATION_MODES = ("auto", "required", "skip")


def find_item(vault, vm: str):
    wanted = vm.lower()
    for item in vault.protected_items():
        if wanted in {(item.vm_id or "").lower(), item.vm_name.lower(), item.key.name.lower()}:
            return item
    raise VmNotFound(f"no protected VM named {vm!r} in the vault")


def find_point(vault, item, point: str | None) -> dict:
    points = vault.recovery_points(item.key)
    if not points:
        raise RecoveryPointNotFound(f"{item.vm_name} has no recovery point yet")
    if point in (None, "", "latest"):
        return points[0]
    for p in points:
        if p["name"].lower() == point.lower() or p["details"].get("tag_id") == point:
            return p
    raise RecoveryPointNotFound(f"{item.vm_name} has no recovery point {point!r}")


def verify_recovery_point(worker, body: dict) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("vm"), str) or not body["vm"]:
        raise BadRequest('send {"vm": "<name or instance uuid>", "point": "<name>|latest"}')
    mode = body.get("application", "auto")
    if mode not in APPLICATION_MODES:
        raise BadRequest(f"application must be one of {', '.join(APPLICATION_MODES)}")
    worker.require_ready()
    worker._fault("verify")
    item = find_item(worker.vault, body["vm"])
    made = _failover_of(worker.vault, item, body.get("failover"))
    if made is not None:  # the failed-over VM's disks, at the point it was made from
        body = {**body, "point": made["point"], "snapshots": made["restored"]}
    point = find_point(worker.vault, item, body.get("point"))
    with worker.points.pin(point["name"]):
        return _verify(worker, body, item, point, mode)


def _verify(worker, body: dict, item, point: dict, mode: str) -> dict:
    details = point.get("details") or {}
    tag_id = details.get("tag_id")
    vm_id = details.get("vm_id") or item.vm_id
    manifest_name = details.get("manifest") or names.manifest_blob(vm_id, tag_id)
    manifest = worker.cache.read_json(manifest_name)
    snapshots = _snapshots(body, details)
    disks = []
    refs = []
    indexes = details.get("disk_indexes") or {}
    for disk_id, ref in sorted(snapshots.items(), key=lambda kv: indexes.get(kv[0], 0)):
        index = int(indexes.get(disk_id, len(disks)))
        container, blob, snapshot = names.parse_snapshot_ref(ref)
        seeds = (
            worker.seeds if container == names.SEED_CONTAINER else worker.disks_reader(container)
        )
        size = seeds.size(blob, snapshot)
        result = compare_disk(
            index,
            disk_id,
            read=lambda offset, length, b=blob, s=snapshot, r=seeds: r.read(b, offset, length, s),
            ranges=seeds.page_ranges(blob, snapshot) if manifest is not None else [],
            size=size,
            manifest=manifest,
        )
        disks.append(result | {"snapshot": ref})
        refs.append((index, disk_id, blob, snapshot, size, seeds))
    first = next((d["first_difference"] for d in disks if d["first_difference"]), None)
    if mode == "skip":
        application = {"checked": False, "ok": None, "reason": "skipped"}
    else:
        disk_refs = [
            DiskRef(
                label=f"disk {index} ({disk_id})",
                path="",
                size=size,
                kind="page_blob",
                url=reader.read_sas_url(blob, snapshot),
                ca_cert=worker.ctx.ca_cert,
            )
            for index, disk_id, blob, snapshot, size, reader in refs
        ]
        application = application_summary(verify_disks(disk_refs), mode)
    compared = manifest is not None
    ok = (
        first is None
        and application.get("ok") is not False
        and (compared or bool(application.get("checked")))
    )
    answer = {
        "ok": ok,
        "vm": item.vm_name,
        "vm_id": vm_id,
        "point": point["name"],
        "time": point["time"],
        "type": point["type"],
        "tag_id": tag_id,
        "manifest": manifest_name if compared else None,
        "disks": disks,
        "first_difference": first,
        "application": application,
    }
    if not compared and not application.get("checked"):
        answer["reason"] = (
            "nothing to compare: no manifest for this tag (verify mode off) and no application "
            "on the disks"
        )
    return answer


def _snapshots(body: dict, details: dict) -> dict:
    """The blobs to check: the point's snapshots, or the caller's for the same disks."""
    own = details.get("snapshots") or {}
    given = body.get("snapshots")
    if given is None:
        return own
    if not isinstance(given, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and "?snapshot=" in v for k, v in given.items()
    ):
        raise BadRequest('"snapshots" must map disk ids to "container/blob?snapshot=ts"')
    unknown = set(given) - set(own)
    if unknown or not given:
        raise BadRequest(f"the point has no disk(s) {sorted(unknown)}; its disks: {sorted(own)}")
    return given


def _failover_of(vault, item, which) -> dict | None:
    if which is None:
        return None
    key = {"test": "testFailover", "run": "failover"}.get(which)
    if key is None:
        raise BadRequest('"failover" must be "test" or "run"')
    doc = vault.store.get("protected_items", item.key.fabric, item.key.container, item.key.name)
    made = (doc or {}).get(key)
    if not made or not made.get("restored"):
        what = "test failover" if which == "test" else "failover"
        raise RecoveryPointNotFound(f"{item.vm_name} has no {what} VM to verify")
    return made


# -- multi-VM consistency: a ledger pair's invariant across two VMs' points -------------------
def _side(worker, spec) -> tuple[dict, list]:
    """(what was read, DiskRefs) for one side of a pair: {"vm", "point"} or {"vm", "failover"}."""
    if not isinstance(spec, dict) or not isinstance(spec.get("vm"), str):
        raise BadRequest('each side is {"vm": ..., "point": "<name>|latest"} or {"vm", "failover"}')
    item = find_item(worker.vault, spec["vm"])
    made = _failover_of(worker.vault, item, spec.get("failover"))
    point = find_point(worker.vault, item, made["point"] if made else spec.get("point"))
    details = point.get("details") or {}
    snapshots = made["restored"] if made else details.get("snapshots") or {}
    indexes = details.get("disk_indexes") or {}
    refs = []
    for disk_id, ref in sorted(snapshots.items(), key=lambda kv: indexes.get(kv[0], 0)):
        container, blob, snapshot = names.parse_snapshot_ref(ref)
        reader = (
            worker.seeds if container == names.SEED_CONTAINER else worker.disks_reader(container)
        )
        refs.append(
            DiskRef(
                label=f"{item.vm_name} {disk_id}",
                path="",
                size=reader.size(blob, snapshot),
                kind="page_blob",
                url=reader.read_sas_url(blob, snapshot),
                ca_cert=worker.ctx.ca_cert,
            )
        )
    read = {
        "vm": item.vm_name,
        "point": point["name"],
        "time": point["time"],
        "type": point["type"],
        "tag_id": details.get("tag_id"),
        "failover": spec.get("failover"),
    }
    return read, refs


def verify_ledger_pair(worker, body: dict) -> dict:
    """`POST /_lab/verify-ledger`: the guests' ledger invariant (every transfer received was
    sent) at a sender's and a receiver's recovery points (or failed-over disks)."""
    from fakes.guest.offline import verify_ledger

    if not isinstance(body, dict):
        raise BadRequest('send {"sender": {...}, "receiver": {...}}')
    worker.require_ready()
    worker._fault("verify")
    sender, sender_refs = _side(worker, body.get("sender"))
    receiver, receiver_refs = _side(worker, body.get("receiver"))
    with worker.points.pin(sender["point"]), worker.points.pin(receiver["point"]):
        result = verify_ledger(sender_refs, receiver_refs)
    return {
        **result,
        "shared_point": sender["tag_id"] == receiver["tag_id"],
        "sender_point": sender,
        "receiver_point": receiver,
    }
