"""`drlab mail`: what the lab e-mailed (RPO and health alerts), read from the mail sink over
HTTPS with the lab CA."""

from __future__ import annotations

import json
import time

import click
import requests
from rich.table import Table

from .. import launcher
from ._common import friendly_errors, lab_info, out, state_dir_option

FOLLOW_INTERVAL = 0.5


class _Sink:
    def __init__(self, state_dir):
        lab = lab_info(state_dir)
        service = lab["services"].get("mail")
        if service is None:
            raise launcher.LabError("this lab has no mail sink (its topology has no `mail:`)")
        self.url = service["url"]
        self.verify = lab["ca_cert"]

    def call(self, method: str, path: str, **params):
        try:
            response = requests.request(
                method, f"{self.url}{path}", params=params, verify=self.verify, timeout=10
            )
        except requests.RequestException as exc:
            raise launcher.LabError(f"the mail sink at {self.url} is not reachable: {exc}") from exc
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise launcher.LabError(f"the mail sink answered {response.status_code}: {message}")
        return response.json()


def _table(messages: list[dict]) -> Table:
    table = Table(title=f"{len(messages)} message(s) in the lab's mail sink")
    for col in ("id", "date", "from", "to", "subject"):
        table.add_column(col)
    for m in messages:
        table.add_row(str(m["id"]), m["date"], m["from"], ", ".join(m["to"]), m["subject"])
    return table


def _line(m: dict) -> str:
    return f"{m['id']:>4}  {m['date']}  {m['from']} -> {', '.join(m['to'])}  {m['subject']}"


@click.group("mail", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="JSON (one object per line with --follow).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new messages as they arrive.")
@state_dir_option
@click.pass_context
@friendly_errors
def command(ctx, as_json, follow, state_dir):
    """List the e-mails the lab sent (its mail sink); `drlab mail show ID`, `drlab mail clear`."""
    if ctx.invoked_subcommand is not None:
        return
    sink = _Sink(state_dir)
    messages = sink.call("GET", "/messages")
    if not follow:
        if as_json:
            click.echo(json.dumps(messages, indent=2))
        else:
            out.print(_table(messages))
        return
    last = 0
    try:
        while True:
            for m in messages:
                click.echo(json.dumps(m) if as_json else _line(m))
                last = max(last, m["id"])
            time.sleep(FOLLOW_INTERVAL)
            messages = sink.call("GET", "/messages", since=last)
    except KeyboardInterrupt:
        return


@command.command("show")
@click.argument("message_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@state_dir_option
@friendly_errors
def show(message_id, as_json, state_dir):
    """One e-mail: headers and body."""
    m = _Sink(state_dir).call("GET", f"/messages/{message_id}")
    if as_json:
        click.echo(json.dumps(m, indent=2))
        return
    click.echo(f"From:    {m['from']}\nTo:      {', '.join(m['to'])}")
    click.echo(f"Date:    {m['date']}\nSubject: {m['subject']}\n")
    click.echo(m["body"])


@command.command("clear")
@state_dir_option
@friendly_errors
def clear(state_dir):
    """Delete every e-mail in the sink."""
    result = _Sink(state_dir).call("DELETE", "/messages")
    click.echo(f"deleted {result['deleted']} message(s)")
