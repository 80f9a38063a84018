"""The recovery point of each VM of a plan's failover: by the plan's recovery point type, and
one shared point for each multi-VM consistency group.

The VMs of a replication group (the enable input's `multiVmGroupName`) share crash- and
app-consistent points: the same tag, taken while every VM of the group held its writes. With
`useMultiVmSyncPoint` (the default when the group's policy has multi-VM sync on), a plan fails
every VM of a group over to the newest such shared point of the type asked for, so that data
spread across the VMs agrees. Without it, each VM gets its own newest point (and the group's
invariants may not hold).
"""

from __future__ import annotations

from collections import defaultdict

from ..errors import InvalidInput
from . import failover
from . import recovery_points as points

TYPES = {
    failover.LATEST: None,
    failover.LATEST_PROCESSED: None,
    failover.LATEST_APP: "AppConsistent",
    failover.LATEST_CRASH: "CrashConsistent",
}


def _wanted(point: dict, kind: str | None) -> bool:
    return kind is None or point["type"] == kind


def choose(vault, docs: list[dict], point_type: str, multi_vm_sync: bool | None) -> dict:
    """{item name: point name} for the plan's items (their documents), or InvalidInput."""
    if point_type not in TYPES:
        raise InvalidInput(f"'recoveryPointType' must be one of {', '.join(TYPES)}.")
    kind = TYPES[point_type]
    groups: dict[str, list[dict]] = defaultdict(list)
    chosen = {}
    for doc in docs:
        group = (doc.get("enableInput") or {}).get("multiVmGroupName")
        if group and multi_vm_sync is not False:
            groups[group].append(doc)
        else:
            chosen[doc["name"]] = failover.choose_point(vault, doc, point_type)["name"]
    for group, members in groups.items():
        chosen.update(_shared(vault, group, members, kind))
    return chosen


def _shared(vault, group: str, members: list[dict], kind: str | None) -> dict:
    """The newest group point of `kind` that every member has (the same tag)."""
    by_member = []
    for doc in members:
        found = {}
        for p in points.list_points(vault, doc["fabric"], doc["container"], doc["name"]):
            tag = (p.get("details") or {}).get("tag_id")
            if p.get("multiVmSyncPoint") and tag and _wanted(p, kind):
                found[tag] = p
        by_member.append((doc, found))
    common = set.intersection(*(set(found) for _doc, found in by_member))
    if not common:
        what = f"{kind} " if kind else ""
        raise InvalidInput(
            f"The VMs of the replication group '{group}' "
            f"({', '.join(d['friendlyName'] for d in members)}) have no common {what}multi-VM "
            "recovery point yet."
        )
    newest = max(common, key=lambda tag: by_member[0][1][tag]["time"])
    return {doc["name"]: found[newest]["name"] for doc, found in by_member}
