"""`drlab`, the lab's command line. Every command takes --state-dir (or DRLAB_STATE_DIR)."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path

import click
from rich.table import Table

from . import launcher
from .commands import register_all
from .commands._common import err, friendly_errors, out, state_dir_option
from .kit.clock import LabClock, format_duration, parse_duration
from .kit.labinfo import LabNotFound, read_lab


@click.group()
def main():
    """drlab: a disaster-recovery lab (Azure Site Recovery, VMware to Azure) on one machine."""


# -- up / down / status ---------------------------------------------------------------------
class _ConsoleProgress(launcher.Progress):
    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.t0 = time.monotonic()

    def step(self, message):
        if not self.quiet:
            err.print(f"[dim]…[/] {message}")

    def started(self, service, pid):
        if not self.quiet:
            err.print(f"[dim]  started[/] {service} [dim](pid {pid})[/]")

    def ready(self, service, seconds):
        if not self.quiet:
            err.print(f"[green]  ✓[/] {service} ready [dim]({seconds:.2f} s)[/]")


@main.command()
@click.option("--topology", default="default", show_default=True, help="A name or a YAML path.")
@click.option("--clock-speed", type=float, default=None, help="Lab seconds per wall second.")
@click.option("--json", "as_json", is_flag=True, help="Print lab.json when ready.")
@state_dir_option
@friendly_errors
def up(topology, clock_speed, as_json, state_dir):
    """Start a lab and wait until every service is ready."""
    t0 = time.monotonic()
    progress = _ConsoleProgress(quiet=as_json)
    try:
        lab = launcher.up(topology, state_dir, clock_speed, progress)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted: every service started was stopped[/]")
        sys.exit(130)
    except launcher.ServiceFailed as exc:
        err.print(f"[bold red]error:[/] service [bold]{exc.service}[/] {exc.reason}")
        err.print(f"[dim]--- last lines of {exc.service}'s log ---[/]", highlight=False)
        err.print(exc.log_tail, markup=False, highlight=False)
        err.print("[yellow]every service already started was stopped[/]")
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(lab, indent=2))
        return
    err.print(
        f"[bold green]lab {lab['name']} is up[/] in {time.monotonic() - t0:.1f} s "
        f"[dim]({state_dir})[/]"
    )
    err.print('  use it from a shell:  [bold]eval "$(drlab env)"[/]   stop it: [bold]drlab down[/]')


@main.command()
@state_dir_option
@friendly_errors
def down(state_dir):
    """Stop the lab: gracefully, then by force; nothing is left running."""
    names = launcher.down(state_dir)
    if names:
        err.print(f"[green]stopped[/] {', '.join(names)}")
    else:
        err.print("nothing was running")


@main.command()
@click.option("--json", "as_json", is_flag=True)
@state_dir_option
@friendly_errors
def status(as_json, state_dir):
    """Each service: process id, URL, healthy."""
    report = launcher.status(state_dir)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        table = Table(title=f"lab in {report['state_dir']} ({report['status']})")
        for col in ("service", "pid", "url", "healthy"):
            table.add_column(col)
        for name, row in report["services"].items():
            health = "[green]yes[/]" if row["healthy"] else "[red]no[/]"
            table.add_row(name, str(row["pid"] or "-"), row["url"], health)
        out.print(table)
    sys.exit(0 if report["all_healthy"] else 3)


@main.command()
@click.argument("service", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-n", "--lines", default=50, show_default=True)
@state_dir_option
@friendly_errors
def logs(service, follow, lines, state_dir):
    """Print a service's log (or the tail of every log)."""
    lab = read_lab(state_dir)
    names = [service] if service else list(lab["services"])
    for name in names:
        if name not in lab["services"]:
            known = ", ".join(lab["services"])
            raise launcher.LabError(f"no service named {name!r} (services: {known})")
    paths = {n: Path(lab["services"][n]["log"]) for n in names}
    positions = {}
    for name, path in paths.items():
        text = path.read_text(errors="replace") if path.exists() else ""
        tail = text.splitlines()[-lines:]
        for line in tail:
            click.echo(f"{name} | {line}" if len(paths) > 1 else line)
        positions[name] = path.stat().st_size if path.exists() else 0
    while follow:
        try:
            time.sleep(0.25)
        except KeyboardInterrupt:
            return
        for name, path in paths.items():
            if not path.exists() or path.stat().st_size <= positions[name]:
                continue
            with open(path, "rb") as f:
                f.seek(positions[name])
                chunk = f.read()
                positions[name] = f.tell()
            for line in chunk.decode(errors="replace").splitlines():
                click.echo(f"{name} | {line}" if len(paths) > 1 else line)


@main.command()
@click.option("--json", "as_json", is_flag=True)
@state_dir_option
@friendly_errors
def env(as_json, state_dir):
    """Shell exports for your scripts and the Azure SDKs: eval "$(drlab env)"."""
    lab = read_lab(state_dir)
    variables = lab["env"]
    if as_json:
        click.echo(json.dumps(variables, indent=2))
        return
    for key, value in variables.items():
        click.echo(f"export {key}={shlex.quote(str(value))}")


# -- clock ------------------------------------------------------------------------------------
@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@state_dir_option
@click.pass_context
@friendly_errors
def clock(ctx, as_json, state_dir):
    """Show the lab clock (lab time = start + speed x elapsed, plus jumps)."""
    if ctx.invoked_subcommand is not None:
        return
    info = _clock(state_dir).describe()
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        click.echo(
            f"lab time {info['lab_time']}  speed {info['speed']:g}x  "
            f"ahead of wall clock by {format_duration(max(0, info['ahead_of_wall_seconds']))}"
        )


def _clock(state_dir: Path) -> LabClock:
    path = state_dir / "clock.json"
    if not path.exists():
        raise LabNotFound(f"no lab clock in {state_dir}; start a lab with `drlab up`")
    return LabClock(path)


@clock.command("jump")
@click.argument("duration")
@state_dir_option
@friendly_errors
def clock_jump(duration, state_dir):
    """Move lab time forward, e.g. `drlab clock jump 2h`."""
    c = _clock(state_dir)
    c.jump(parse_duration(duration))
    click.echo(f"lab time is now {c.now().isoformat()}")


@clock.command("speed")
@click.argument("speed", type=float)
@state_dir_option
@friendly_errors
def clock_speed(speed, state_dir):
    """Set how many lab seconds pass per wall second."""
    c = _clock(state_dir)
    c.set_speed(speed)
    click.echo(f"lab clock runs at {speed:g}x")


register_all(main)

if __name__ == "__main__":
    main(prog_name=os.path.basename(sys.argv[0]))
