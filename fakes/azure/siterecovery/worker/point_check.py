"""`POST /_lab/verify`: which VM and recovery point, then `verify.py` on its snapshots.

The VM is named by its instance UUID, its friendly name or its protected item's name; the
point by its name (the recovery point id the API shows) or "latest". The manifest of the
point's tag comes from the cache container (verify mode); without one, only the application
check says anything.
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
    point = find_point(worker.vault, item, body.get("point"))
    details = point.get("details") or {}
    tag_id = details.get("tag_id")
    vm_id = details.get("vm_id") or item.vm_id
    manifest_name = details.get("manifest") or names.manifest_blob(vm_id, tag_id)
    manifest = worker.cache.read_json(manifest_name)
    seeds = worker.seeds
    disks = []
    refs = []
    indexes = details.get("disk_indexes") or {}
    for disk_id, ref in sorted(
        (details.get("snapshots") or {}).items(), key=lambda kv: indexes.get(kv[0], 0)
    ):
        index = int(indexes.get(disk_id, len(disks)))
        _container, blob, snapshot = names.parse_snapshot_ref(ref)
        size = seeds.size(blob, snapshot)
        result = compare_disk(
            index,
            disk_id,
            read=lambda offset, length, b=blob, s=snapshot: seeds.read(b, offset, length, s),
            ranges=seeds.page_ranges(blob, snapshot) if manifest is not None else [],
            size=size,
            manifest=manifest,
        )
        disks.append(result | {"snapshot": ref})
        refs.append((index, disk_id, blob, snapshot, size))
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
                url=seeds.read_sas_url(blob, snapshot),
                ca_cert=worker.ctx.ca_cert,
            )
            for index, disk_id, blob, snapshot, size in refs
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
