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


def _item_row(item) -> dict:
    p = item.properties
    d = p.provider_specific_details
    return {
        "vm": p.friendly_name,
        "protection_state": p.protection_state,
        "health": p.replication_health,
        "rpo_seconds": getattr(d, "rpo_in_seconds", None),
        "initial_replication_percent": getattr(d, "resync_progress_percentage", None),
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
    for col in (
        "vm",
        "protection_state",
        "health",
        "rpo_seconds",
        "agent_version",
        "last_heartbeat",
        "process_server",
    ):
        table.add_column(col)
    for row in rows:
        table.add_row(
            *(
                str(row[c] if row[c] is not None else "-")
                for c in (
                    "vm",
                    "protection_state",
                    "health",
                    "rpo_seconds",
                    "agent_version",
                    "last_heartbeat",
                    "process_server",
                )
            )
        )
    out.print(table)


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
