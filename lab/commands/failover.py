"""`drlab failover`, `drlab plan`, `drlab recovery-points`: failover through the public SDK."""

from __future__ import annotations

import json

import click
from rich.table import Table

from ..errors import AsrError
from ._common import err, friendly_errors, lab_info, out, state_dir_option

POINT_HELP = "Recovery point id, or latest | latest-processed | latest-app | latest-crash."


def _asr(state_dir):
    from ..asr import Asr

    lab_info(state_dir)
    return Asr(state_dir)


def _target(vm, plan):
    if bool(vm) == bool(plan):
        raise AsrError("name a VM or --plan NAME (one of them)")


def _item_summary(props) -> str:
    point = (props.failover_recovery_point_id or "").rsplit("/", 1)[-1] or "-"
    return (
        f"{props.friendly_name}: {props.protection_state}, test failover "
        f"{props.test_failover_state}, recovery point {point}; allowed: "
        f"{', '.join(props.allowed_operations or []) or 'none'}"
    )


def _wait_plan(asr, plan_name: str, poller, what: str) -> None:
    """Wait for a plan's job; stop waiting (and say how to go on) when it pauses on a manual
    action."""
    from .. import plans

    with err.status(f"{what} of plan {plan_name}"):
        while not poller.done():
            job = plans.running_job(asr, plan_name)
            if job is not None and job.properties.state == "Suspended":
                task = next((t for t in job.properties.tasks or [] if t.state == "Suspended"), None)
                details = getattr(task, "custom_details", None)
                err.print(
                    f"[yellow]{what} of plan {plan_name} waits on a manual action[/]: "
                    f"{getattr(details, 'instructions', None) or (task and task.friendly_name)}"
                )
                err.print(f"when done: drlab jobs resume {job.name}", highlight=False)
                return
            poller.wait(1.0)
    plan = poller.result()
    state = plan.properties.current_scenario_status or "Succeeded"
    err.print(
        f"[green]{what} of plan {plan_name}: {state}[/]; allowed next: "
        f"{', '.join(plan.properties.allowed_operations or []) or 'none'}"
    )


@click.group("failover")
def command():
    """Test failover, failover, commit and cleanup of a VM or a recovery plan."""


def _run_item(asr, what: str, poller) -> None:
    with err.status(what):
        item = poller.result()
    out.print(_item_summary(item.properties), highlight=False, markup=False)


@command.command("test")
@click.argument("vm", required=False)
@click.option("--plan", default=None, help="Test-fail a whole recovery plan over.")
@click.option("--point", default=None, help=POINT_HELP)
@state_dir_option
@friendly_errors
def test(vm, plan, point, state_dir):
    """Test failover into the isolated test network (production is not touched)."""
    from .. import failover, plans

    _target(vm, plan)
    with _asr(state_dir) as asr:
        if plan:
            _wait_plan(asr, plan, plans.test_failover(asr, plan, point), "test failover")
        else:
            _run_item(asr, f"test failover of {vm}", failover.test_failover(asr, vm, point))


@command.command("cleanup")
@click.argument("vm", required=False)
@click.option("--plan", default=None)
@click.option("--comments", default=None, help="What the drill found (kept with the item).")
@state_dir_option
@friendly_errors
def cleanup(vm, plan, comments, state_dir):
    """Remove the test failover's VMs and disks."""
    from .. import failover, plans

    _target(vm, plan)
    with _asr(state_dir) as asr:
        if plan:
            _wait_plan(asr, plan, plans.test_failover_cleanup(asr, plan, comments), "cleanup")
        else:
            _run_item(asr, f"cleaning up {vm}", failover.test_failover_cleanup(asr, vm, comments))


@command.command("run")
@click.argument("vm", required=False)
@click.option("--plan", default=None)
@click.option("--point", default=None, help=POINT_HELP)
@click.option(
    "--planned",
    is_flag=True,
    help="Planned failover: shut the source down, send its last changes, lose nothing.",
)
@state_dir_option
@friendly_errors
def run(vm, plan, point, planned, state_dir):
    """Fail over to Azure (unplanned unless --planned); commit afterwards."""
    from .. import failover, plans

    _target(vm, plan)
    if planned and point:
        raise AsrError("a planned failover uses the final point after shutdown: no --point")
    with _asr(state_dir) as asr:
        if plan:
            poller = (
                plans.planned_failover(asr, plan)
                if planned
                else plans.unplanned_failover(asr, plan, point)
            )
            _wait_plan(asr, plan, poller, "planned failover" if planned else "failover")
        elif planned:
            _run_item(asr, f"planned failover of {vm}", failover.planned_failover(asr, vm))
        else:
            _run_item(asr, f"failover of {vm}", failover.unplanned_failover(asr, vm, point))


@command.command("commit")
@click.argument("vm", required=False)
@click.option("--plan", default=None)
@state_dir_option
@friendly_errors
def commit(vm, plan, state_dir):
    """Commit a failover (its recovery points are deleted)."""
    from .. import failover, plans

    _target(vm, plan)
    with _asr(state_dir) as asr:
        if plan:
            _wait_plan(asr, plan, plans.commit(asr, plan), "commit")
        else:
            _run_item(asr, f"committing the failover of {vm}", failover.commit(asr, vm))


@command.command("cancel")
@click.argument("vm", required=False)
@click.option("--plan", default=None)
@state_dir_option
@friendly_errors
def cancel(vm, plan, state_dir):
    """Cancel a failover before commit: the Azure VMs go, replication goes on."""
    from .. import failover, plans

    _target(vm, plan)
    with _asr(state_dir) as asr:
        if plan:
            _wait_plan(asr, plan, plans.cancel(asr, plan), "cancel")
        else:
            _run_item(asr, f"cancelling the failover of {vm}", failover.cancel(asr, vm))


@command.command("change-point")
@click.argument("vm")
@click.option("--point", required=True, help=POINT_HELP)
@state_dir_option
@friendly_errors
def change_point(vm, point, state_dir):
    """Fail VM over again to another recovery point, before commit."""
    from .. import failover

    with _asr(state_dir) as asr:
        _run_item(asr, f"changing the point of {vm}", failover.apply_point(asr, vm, point))


# -- recovery plans ----------------------------------------------------------------------------
def _parse_actions(values, kind: str, groups: int) -> dict[int, list[dict]]:
    """`N:TEXT` options into actions after group N."""
    found: dict[int, list[dict]] = {}
    for value in values:
        number, sep, text = value.partition(":")
        if not sep or not number.isdigit() or not 1 <= int(number) <= groups or not text:
            raise AsrError(f"--{kind} takes GROUP:TEXT with GROUP 1..{groups}, not {value!r}")
        actions = found.setdefault(int(number), [])
        name = f"{kind}-{number}-{len(actions) + 1}"
        actions.append({"name": name, "manual" if kind == "manual" else "script": text})
    return found


@click.group("plan")
def plan_command():
    """Recovery plans: VMs in boot groups, with manual and script actions."""


@plan_command.command("create")
@click.argument("name")
@click.option(
    "--group",
    "groups",
    multiple=True,
    required=True,
    help="The VMs of one boot group, comma-separated; give it again for the next group.",
)
@click.option("--manual", multiple=True, help="GROUP:INSTRUCTIONS, a manual action after it.")
@click.option("--script", multiple=True, help="GROUP:PATH, a lab script run after it.")
@state_dir_option
@friendly_errors
def plan_create(name, groups, manual, script, state_dir):
    """Create (or replace) recovery plan NAME."""
    from .. import plans

    manual_after = _parse_actions(manual, "manual", len(groups))
    script_after = _parse_actions(script, "script", len(groups))
    spec = [
        {
            "vms": [v.strip() for v in group.split(",") if v.strip()],
            "end": manual_after.get(i, []) + script_after.get(i, []),
        }
        for i, group in enumerate(groups, start=1)
    ]
    with _asr(state_dir) as asr, err.status(f"creating recovery plan {name}"):
        plans.create(asr, name, spec).result()
    err.print(f"[green]recovery plan {name} created[/] ({len(spec)} boot groups)")


def _plan_row(asr, plan) -> dict:
    p = plan.properties
    groups = []
    for group in p.groups or []:
        if group.group_type != "Boot":
            continue
        vms = []
        for entry in group.replication_protected_items or []:
            item = asr.client.replication_protected_items.get(
                asr.rg,
                asr.vault,
                *_item_path(entry.id),
            )
            vms.append(item.properties.friendly_name)
        groups.append(
            {
                "vms": vms,
                "actions": [
                    {
                        "name": a.action_name,
                        "kind": a.custom_details.instance_type,
                        "detail": getattr(a.custom_details, "description", None)
                        or getattr(a.custom_details, "path", None),
                    }
                    for a in (group.start_group_actions or []) + (group.end_group_actions or [])
                ],
            }
        )
    return {
        "name": plan.name,
        "groups": groups,
        "allowed_operations": p.allowed_operations or [],
        "current_scenario": p.current_scenario.scenario_name if p.current_scenario else None,
        "status": p.current_scenario_status,
        "last_test_failover": p.last_test_failover_time.isoformat()
        if p.last_test_failover_time
        else None,
    }


def _item_path(arm_id: str) -> tuple[str, str, str]:
    parts = arm_id.split("/")
    lowered = [x.lower() for x in parts]
    return (
        parts[lowered.index("replicationfabrics") + 1],
        parts[lowered.index("replicationprotectioncontainers") + 1],
        parts[lowered.index("replicationprotecteditems") + 1],
    )


@plan_command.command("show")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True)
@state_dir_option
@friendly_errors
def plan_show(name, as_json, state_dir):
    """Show recovery plan NAME (or every plan): groups in boot order, actions, state."""
    from .. import plans

    with _asr(state_dir) as asr:
        found = (
            [plans.get(asr, name)]
            if name
            else list(asr.client.replication_recovery_plans.list(asr.rg, asr.vault))
        )
        rows = [_plan_row(asr, p) for p in found]
    if as_json:
        click.echo(json.dumps(rows if not name else rows[0], indent=2))
        return
    for row in rows:
        table = Table(title=f"recovery plan {row['name']}")
        table.add_column("group")
        table.add_column("VMs")
        table.add_column("actions after")
        for i, group in enumerate(row["groups"], start=1):
            actions = "\n".join(f"{a['name']}: {a['detail']}" for a in group["actions"])
            table.add_row(str(i), ", ".join(group["vms"]), actions or "-")
        out.print(table)
        out.print(
            f"allowed: {', '.join(row['allowed_operations']) or 'none'}; current: "
            f"{row['current_scenario'] or '-'} ({row['status'] or '-'})",
            highlight=False,
        )


# -- recovery points ---------------------------------------------------------------------------
@click.command("recovery-points")
@click.argument("vm")
@click.option("--json", "as_json", is_flag=True)
@state_dir_option
@friendly_errors
def points_command(vm, as_json, state_dir):
    """A VM's recovery points, newest first (ids for --point)."""
    from .. import failover

    with _asr(state_dir) as asr:
        found = failover.recovery_points(asr, vm)
    rows = [
        {
            "id": p.name,
            "time": p.properties.recovery_point_time.isoformat(timespec="seconds"),
            "type": p.properties.recovery_point_type,
            "multi_vm": getattr(
                p.properties.provider_specific_details, "is_multi_vm_sync_point", None
            ),
        }
        for p in found
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"recovery points of {vm}")
    for col in ("id", "time (lab)", "type", "multi-VM"):
        # ids are for --point: kept whole (folded only on a very narrow terminal)
        table.add_column(col, overflow="fold", min_width=36 if col == "id" else None)
    for r in rows:
        table.add_row(r["id"], r["time"], r["type"], str(r["multi_vm"] or "-"))
    out.print(table)
