"""`drlab verify VM`: check a recovery point of a replicating VM against its source.

The VM and the point are resolved through the vault's API (the Site Recovery SDK); the check
itself runs in the Site Recovery worker (`POST /_lab/verify` over HTTPS with the lab CA): each
disk's snapshot block by block against the source's manifest at that tag (verify mode), and
the workload's application data on the snapshots. Exit status 0 when the point verifies, 1
when it does not (the first differing block is named), 2 when it cannot be checked.
"""

from __future__ import annotations

import json
import sys
import time

import click

from ..errors import AsrError
from ._common import err, friendly_errors, lab_info, out, state_dir_option

READY_WAIT = 60.0  # seconds a (re)starting worker gets to connect before verify gives up


def _path_part(arm_id: str, name: str) -> str:
    parts = arm_id.split("/")
    lowered = [p.lower() for p in parts]
    return parts[lowered.index(name.lower()) + 1]


def resolve(asr, vm: str, point: str) -> tuple[object, object]:
    """(protected item, recovery point) for a VM name or instance UUID and a point id."""
    wanted = vm.lower()
    items = [
        i
        for i in asr.protected_items()
        if wanted in (i.name.lower(), (i.properties.friendly_name or "").lower())
    ]
    if not items:
        raise AsrError(f"{vm} is not a protected VM of the vault")
    item = items[0]
    fabric = _path_part(item.id, "replicationFabrics")
    container = _path_part(item.id, "replicationProtectionContainers")
    points = list(
        asr.client.recovery_points.list_by_replication_protected_items(
            asr.rg, asr.vault, fabric, container, item.name
        )
    )
    if not points:
        raise AsrError(f"{item.properties.friendly_name} has no recovery point yet")
    if point in ("", "latest"):
        return item, max(points, key=lambda p: p.properties.recovery_point_time)
    for p in points:
        if p.name.lower() == point.lower():
            return item, p
    raise AsrError(f"{item.properties.friendly_name} has no recovery point {point!r}")


def _describe(result: dict) -> list[str]:
    lines = [
        f"recovery point {result['point']} of {result['vm']} ({result['type']}, tag "
        f"{result['tag_id']}): {'OK' if result['ok'] else 'FAILED'}"
    ]
    for disk in result["disks"]:
        if not disk.get("compared"):
            lines.append(f"  disk {disk['index']} ({disk['disk_id']}): no manifest to compare")
        elif disk["first_difference"]:
            d = disk["first_difference"]
            lines.append(
                f"  disk {disk['index']} ({disk['disk_id']}): differs at offset {d['offset']} "
                f"(block {d['block']}: expected {d['expected']}, found {d['actual']})"
            )
        else:
            lines.append(
                f"  disk {disk['index']} ({disk['disk_id']}): {disk['blocks']} non-zero blocks "
                "match the manifest"
            )
    app = result["application"]
    if app.get("checked"):
        state = "OK" if app["ok"] else "FAILED: " + "; ".join(app.get("errors") or [])[:300]
        lines.append(
            f"  application: {state} (committed seq {app.get('committed_seq')}, "
            f"{app.get('records_checked')} records checked)"
        )
    else:
        lines.append(f"  application: not checked ({app.get('reason')})")
    if result.get("reason"):
        lines.append(f"  {result['reason']}")
    return lines


@click.command("verify")
@click.argument("vm")
@click.option("--point", default="latest", show_default=True, help="Recovery point id, or latest.")
@click.option(
    "--application",
    type=click.Choice(["auto", "required", "skip"]),
    default="auto",
    show_default=True,
    help="Check the workload's application data (auto: when the disks have one).",
)
@click.option(
    "--failover",
    "failover",
    type=click.Choice(["test", "run"]),
    default=None,
    help="Verify the disks of the VM a test failover (test) or a failover (run) made, as "
    "they were made from their recovery point, instead of a point's snapshots.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the worker's answer as JSON.")
@state_dir_option
@friendly_errors
def command(vm, point, application, failover, as_json, state_dir):
    """Verify a recovery point of VM block by block and its application data (or, with
    --failover, the failed-over VM's disks against the source at their point)."""
    import requests

    from ..asr import Asr

    lab = lab_info(state_dir)
    worker = lab["services"].get("sr-worker")
    if worker is None:
        raise AsrError("this lab runs no Site Recovery worker (sr-worker)")
    with Asr(state_dir) as asr:
        item, chosen = resolve(asr, vm, point)
    body = {"vm": item.name, "point": chosen.name, "application": application}
    what = f"recovery point {chosen.name} of {item.properties.friendly_name}"
    if failover:
        body = {"vm": item.name, "application": application, "failover": failover}
        what = f"the disks of {item.properties.friendly_name}'s {failover} failover VM"
    with err.status(f"verifying {what}"):
        deadline = time.monotonic() + READY_WAIT
        while True:
            response = requests.post(
                f"{worker['url']}/_lab/verify", json=body, verify=lab["ca_cert"], timeout=600
            )
            # 503: the worker is (re)starting and not connected yet; it will be shortly.
            if response.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # bounded by READY_WAIT
    try:
        result = response.json()
    except ValueError:
        result = {"error": {"code": str(response.status_code), "message": response.text[:300]}}
    if response.status_code != 200:
        error = result.get("error", {})
        err.print(f"[bold red]error:[/] {error.get('code')}: {error.get('message')}")
        sys.exit(2)
    if as_json:
        out.print_json(json.dumps(result))
    else:
        for line in _describe(result):
            out.print(line, highlight=False, markup=False)
    if not result["ok"]:
        diff = result.get("first_difference")
        if diff:
            err.print(
                f"first difference: disk {diff['disk']} ({diff['disk_id']}) at offset "
                f"{diff['offset']}",
                highlight=False,
                markup=False,
            )
        sys.exit(1)
