"""`drlab drill list|run`: scenarios with progress, narration and a short report.

Scenarios sit above the lab layer (they use it), so they are found by module name at run
time, as the launcher finds services.
"""

from __future__ import annotations

import importlib
import json
import sys

import click

from ._common import err, friendly_errors, lab_info, out, state_dir_option


def _scenarios():
    return importlib.import_module("scenarios")


@click.group("drill")
def command():
    """Run DR drills (scenarios) against the lab."""


@command.command("list")
def list_():
    """The scenarios this lab knows."""
    module = _scenarios()
    for name in module.names():
        summary = module.load(name).SUMMARY
        out.print(f"[bold]{name}[/]  {summary}", highlight=False)


class _Narrator:
    def step(self, title):
        err.print(f"[bold cyan]▶[/] {title}", highlight=False)

    def say(self, text):
        err.print(f"   {text}", highlight=False)

    def done(self, result):
        mark = "[green]✓[/]" if result.ok else "[red]✗[/]"
        err.print(f"   {mark} [dim]{result.seconds:.1f} s[/]")


@command.command("run")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@state_dir_option
@friendly_errors
def run(name, as_json, state_dir):
    """Run scenario NAME; exits non-zero when a check fails."""
    lab_info(state_dir)
    scenarios = _scenarios()
    if name not in scenarios.names():
        raise click.ClickException(
            f"no scenario named {name!r} (scenarios: {', '.join(scenarios.names())})"
        )
    runner = importlib.import_module("scenarios.runner")
    report = runner.run_scenario(name, state_dir, None if as_json else _Narrator())
    if as_json:
        click.echo(runner.dump(report))
    else:
        status = "[green]passed[/]" if report["ok"] else f"[red]failed[/]: {report['error']}"
        err.print(f"\n[bold]{name}[/] {status} in {report['seconds']:.0f} s")
        for key, value in report["figures"].items():
            err.print(f"  {key}: {json.dumps(value, default=str)}", highlight=False)
    sys.exit(0 if report["ok"] else 1)
