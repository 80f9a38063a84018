"""`drlab replicate`, `drlab jobs`, `drlab events`: Site Recovery through the public SDK."""

from __future__ import annotations

import json

import click
from rich.table import Table

from ._common import err, friendly_errors, lab_info, out, state_dir_option


def _asr(state_dir):
    from ..asr import Asr  # the Azure SDKs: imported by the commands that use them

    lab_info(state_dir)
    return Asr(state_dir)


@click.group("replicate")
def command():
    """Enable, disable and watch replication of VMs to Azure."""


@command.command("enable")
@click.argument("vm")
@click.option("--policy", default=None, help="Replication policy (default: the topology's).")
@click.option("--process-server", default=None, help="Process server name (default: the first).")
@click.option("--no-wait", is_flag=True, help="Return once the job has started.")
@state_dir_option
@friendly_errors
def enable(vm, policy, process_server, no_wait, state_dir):
    """Enable replication of VM (push-installs the mobility service)."""
    with _asr(state_dir) as asr:
        poller = asr.enable(vm, policy, process_server)
        if no_wait:
            err.print(f"enable replication of {vm} started")
            return
        with err.status(f"enabling replication of {vm} (push install, agent registration)"):
            item = poller.result()
        err.print(
            f"[green]replication of {vm} enabled[/]: {item.properties.protection_state} "
            f"(mobility agent {item.properties.provider_specific_details.agent_version})"
        )


@command.command("disable")
@click.argument("vm")
@state_dir_option
@friendly_errors
def disable(vm, state_dir):
    """Disable replication of VM."""
    with _asr(state_dir) as asr, err.status(f"disabling replication of {vm}"):
        asr.disable(vm).result()
    err.print(f"[green]replication of {vm} disabled[/]")


def _resync_disks(item) -> dict:
    """Each protected disk's resync progress (percent), by disk name."""
    d = item.properties.provider_specific_details
    return {
        (disk.disk_name or disk.disk_id): disk.resync_progress_percentage
        for disk in getattr(d, "protected_disks", None) or []
    }


def _resync_required(item) -> bool:
    d = item.properties.provider_specific_details
    return str(getattr(d, "disk_resized", "False")) == "True" or any(
        str(disk.resync_required) == "True" for disk in getattr(d, "protected_disks", None) or []
    )


def _item_row(item) -> dict:
    p = item.properties
    d = p.provider_specific_details
    scenario = p.current_scenario.scenario_name if p.current_scenario else None
    resyncing = scenario == "RepairReplication"
    return {
        "vm": p.friendly_name,
        "protection_state": p.protection_state,
        "health": p.replication_health,
        "rpo_seconds": getattr(d, "rpo_in_seconds", None),
        "initial_replication_percent": getattr(d, "resync_progress_percentage", None),
        "resync_required": _resync_required(item),
        "resync": (
            f"{getattr(d, 'resync_progress_percentage', None) or 0}%"
            if resyncing
            else ("required" if _resync_required(item) else None)
        ),
        "current_job": scenario if scenario not in (None, "None") else None,
        "agent_version": getattr(d, "agent_version", None),
        "last_heartbeat": d.last_heartbeat.isoformat()
        if getattr(d, "last_heartbeat", None)
        else None,
        "process_server": getattr(d, "process_server_name", None),
        "allowed_operations": p.allowed_operations,
    }


@command.command("status")
@click.argument("vm", required=False)
@click.option("--json", "as_json", is_flag=True)
@state_dir_option
@friendly_errors
def status(vm, as_json, state_dir):
    """Protected items: state, health, RPO, agent."""
    with _asr(state_dir) as asr:
        items = [asr.protected(vm)] if vm else asr.protected_items()
        rows = [_item_row(i) for i in items]
    if as_json:
        click.echo(json.dumps(rows if not vm else rows[0], indent=2, default=str))
        return
    table = Table(title="protected items")
    columns = (
        "vm",
        "protection_state",
        "health",
        "rpo_seconds",
        "resync",
        "agent_version",
        "last_heartbeat",
        "process_server",
    )
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(row[c] if row[c] is not None else "-") for c in columns))
    out.print(table)


def _job_summary(vm: str, job) -> dict:
    """What `drlab replicate resync --json` prints: the Resynchronize job's outcome."""
    p = job.properties
    details = (getattr(p.custom_details, "affected_object_details", None) or {}) if p else {}
    generation = details.get("ResyncGeneration")
    return {
        "vm": vm,
        "job": job.name,
        "state": p.state,
        "trigger": details.get("ResyncTrigger"),
        "generation": int(generation) if generation and generation.isdigit() else None,
        "tag": details.get("ResyncTag"),
        "recovery_point": details.get("RecoveryPointName"),
        "start": p.start_time.isoformat() if p.start_time else None,
        "end": p.end_time.isoformat() if p.end_time else None,
        "tasks": [
            {"task": t.friendly_name, "state": t.state, "detail": t.state_description}
            for t in p.tasks or []
        ],
        "errors": [
            e.service_error_details.message for e in p.errors or [] if e.service_error_details
        ],
    }


@command.command("resync")
@click.argument("vm")
@click.option("--no-wait", is_flag=True, help="Return once the job has started.")
@click.option("--json", "as_json", is_flag=True, help="Print the job's outcome as JSON.")
@state_dir_option
@friendly_errors
def resync(vm, no_wait, as_json, state_dir):
    """Resynchronize VM now (repairReplication): the agent compares every disk with its replica
    by checksums and sends what differs; done when a recovery point after it exists."""
    from azure.core.exceptions import HttpResponseError

    with _asr(state_dir) as asr:
        poller, job_name = asr.resync(vm)
        if no_wait:
            if as_json:
                click.echo(json.dumps(_job_summary(vm, asr.job(job_name)), indent=2))
            else:
                err.print(f"resync of {vm} started: job {job_name} (drlab jobs)")
            return
        with err.status(f"resynchronizing {vm}") as status:
            while not poller.done():
                disks = _resync_disks(asr.protected(vm))
                progress = ", ".join(f"{n} {p or 0}%" for n, p in disks.items())
                status.update(f"resynchronizing {vm}: {progress or 'starting'}")
                poller.wait(1.0)
        try:
            poller.result()
        except HttpResponseError:
            pass  # the job's errors say why, below
        summary = _job_summary(vm, asr.job(job_name))
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    elif summary["state"] == "Succeeded":
        err.print(
            f"[green]{vm} resynchronized[/] (generation {summary['generation']}): recovery "
            f"point {summary['recovery_point']} at tag {summary['tag']}",
            highlight=False,
        )
    else:
        err.print(f"[red]resync of {vm} {summary['state']}[/]", highlight=False)
        for message in summary["errors"]:
            err.print(f"  {message}", highlight=False, markup=False)
    if summary["state"] != "Succeeded":
        raise SystemExit(1)


@click.group("jobs", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@state_dir_option
@click.pass_context
@friendly_errors
def jobs(ctx, as_json, state_dir):
    """Site Recovery jobs, newest first, with their tasks (`drlab jobs resume JOB` resumes
    one waiting on a manual action)."""
    if ctx.invoked_subcommand is not None:
        return
    with _asr(state_dir) as asr:
        items = asr.jobs()
    rows = []
    for job in items:
        p = job.properties
        rows.append(
            {
                "name": job.name,
                "job": p.friendly_name,
                "scenario": p.scenario_name,
                "state": p.state,
                "target": p.target_object_name,
                "start": p.start_time.isoformat() if p.start_time else None,
                "end": p.end_time.isoformat() if p.end_time else None,
                "tasks": [{"task": t.friendly_name, "state": t.state} for t in p.tasks or []],
                "errors": [
                    e.service_error_details.message
                    for e in p.errors or []
                    if e.service_error_details
                ],
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="jobs")
    for col in ("job", "name", "target", "state", "start", "tasks"):
        table.add_column(col)
    for r in rows:
        tasks = "\n".join(f"{t['state']:<10} {t['task']}" for t in r["tasks"])
        table.add_row(r["job"], r["name"], r["target"] or "-", r["state"], r["start"] or "-", tasks)
    out.print(table)


@jobs.command("resume")
@click.argument("job")
@click.option("--comments", default=None, help="Recorded on the manual action's task.")
@click.option("--no-wait", is_flag=True, help="Return once the job is running again.")
@state_dir_option
@friendly_errors
def resume(job, comments, no_wait, state_dir):
    """Resume JOB (its name, as `drlab jobs` shows it), suspended on a manual action."""
    from azure.mgmt.recoveryservicessiterecovery import models as m

    with _asr(state_dir) as asr:
        poller = asr.client.replication_jobs.begin_resume(
            asr.rg,
            asr.vault,
            job,
            m.ResumeJobParams(properties=m.ResumeJobParamsProperties(comments=comments)),
        )
        if no_wait:
            err.print(f"job {job} resumed")
            return
        with err.status(f"job {job} resumed; waiting for it to finish or pause again"):
            done = poller.result()
        err.print(f"job {job}: {done.properties.state}")


@click.command("events")
@click.option("--json", "as_json", is_flag=True)
@state_dir_option
@friendly_errors
def events(as_json, state_dir):
    """Site Recovery events (health changes, job outcomes, RPO alerts)."""
    with _asr(state_dir) as asr:
        items = asr.events()
    rows = [
        {
            "time": e.properties.time_of_occurrence.isoformat()
            if e.properties.time_of_occurrence
            else None,
            "type": e.properties.event_type,
            "severity": e.properties.severity,
            "object": e.properties.affected_object_friendly_name,
            "description": e.properties.description,
        }
        for e in items
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="events")
    for col in ("time", "severity", "type", "object", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            *(str(r[c] or "-") for c in ("time", "severity", "type", "object", "description"))
        )
    out.print(table)
