"""`drlab link`: the lab's network links (agent -> process server, process server -> Azure, the
failback VPN) taken down and up, slowed, capped and reset, through the link proxies' HTTP API
(Toxiproxy's) over HTTPS with the lab CA.

A toxic set here acts on both streams of the link unless `--stream` says one: `latency 100`
delays each direction by 100 ms (a request and its answer: 200 ms more), `bandwidth 500` caps
each direction at 500 KB/s for all the link's connections together (KB = 1000 bytes, as
Toxiproxy counts). Toxics are named `<type>_<stream>`, Toxiproxy's default, so setting one
again updates it.
"""

from __future__ import annotations

import json

import click
import requests
from rich import box
from rich.table import Table

from .. import launcher
from ._common import friendly_errors, lab_info, out, state_dir_option

STREAMS = ("upstream", "downstream")
# The toxic `drlab link reset` adds and removes at once: a TCP RST to every open connection.
RESET_TOXIC = "drlab_reset"


class _Links:
    def __init__(self, state_dir):
        lab = lab_info(state_dir)
        service = lab["services"].get("links")
        if service is None:
            raise launcher.LabError("this lab has no link proxies (its topology has no links)")
        self.url = service["url"]
        self.verify = lab["ca_cert"]

    def call(self, method: str, path: str, body=None):
        try:
            response = requests.request(
                method, f"{self.url}{path}", json=body, verify=self.verify, timeout=30
            )
        except requests.RequestException as exc:
            raise launcher.LabError(
                f"the link proxies at {self.url} are not reachable: {exc}"
            ) from None
        if response.status_code >= 400:
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            if message == "proxy not found":
                link = path.split("/")[2]
                known = ", ".join(self.call("GET", "/proxies"))
                raise launcher.LabError(f"no link named {link!r} in this lab (links: {known})")
            raise launcher.LabError(f"{message} ({method} {path}: {response.status_code})")
        return response.json() if response.content else None

    def link(self, name: str) -> dict:
        return self.call("GET", f"/proxies/{name}")

    def set_toxic(self, name: str, type_: str, stream: str, attributes: dict) -> None:
        """Add the `<type>_<stream>` toxic, or update it if the link has it already."""
        toxic = f"{type_}_{stream}"
        existing = {t["name"] for t in self.call("GET", f"/proxies/{name}/toxics")}
        if toxic in existing:
            self.call("POST", f"/proxies/{name}/toxics/{toxic}", {"attributes": attributes})
        else:
            body = {"name": toxic, "type": type_, "stream": stream, "attributes": attributes}
            self.call("POST", f"/proxies/{name}/toxics", body)


def _streams(stream: str) -> tuple[str, ...]:
    return STREAMS if stream == "both" else (stream,)


def _stream_option(f):
    return click.option(
        "--stream",
        type=click.Choice(["both", *STREAMS]),
        default="both",
        show_default=True,
        help="upstream: client to server; downstream: server to client.",
    )(f)


def _toxics(toxics: list[dict]) -> str:
    """One line per toxic; the same toxic on both streams is one line marked ⇅."""
    lines: dict[str, set] = {}
    for toxic in toxics:
        lines.setdefault(_describe(toxic), set()).add(toxic["stream"])
    arrows = {"upstream": "↑", "downstream": "↓"}
    return "\n".join(
        f"{'⇅' if len(streams) == 2 else arrows[next(iter(streams))]} {text}"
        for text, streams in lines.items()
    )


def _describe(toxic: dict) -> str:
    a, kind = toxic["attributes"], toxic["type"]
    jitter = f" ±{a['jitter']}" if a.get("jitter") else ""
    text = {
        "latency": lambda: f"latency {a['latency']}{jitter} ms",
        "bandwidth": lambda: f"bandwidth {a['rate']} KB/s",
        "timeout": lambda: "timeout (held)" if not a["timeout"] else f"timeout {a['timeout']} ms",
        "reset_peer": lambda: f"reset_peer {a['timeout']} ms",
        "limit_data": lambda: f"limit_data {a['bytes']} B",
        "slicer": lambda: f"slicer {a['average_size']}±{a['size_variation']} B",
        "slow_close": lambda: f"slow_close {a['delay']} ms",
    }.get(kind, lambda: kind)()
    share = f" ({toxic['toxicity']:.0%})" if toxic["toxicity"] < 1 else ""
    return f"{text}{share}"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


@click.group("link")
def command():
    """The lab's network links: list, down/up, latency, bandwidth, reset, timeout, clear."""


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="The links as JSON, with byte counters.")
@state_dir_option
@friendly_errors
def list_links(as_json, state_dir):
    """Every link: up or down, its toxics, connections and bytes (--json: where it runs)."""
    state = _Links(state_dir).call("GET", "/_lab/state")
    if as_json:
        click.echo(json.dumps(state["proxies"], indent=2))
        return
    table = Table(title=f"{len(state['proxies'])} link(s)", box=box.SIMPLE_HEAD)
    # Where each link runs (from, to, port) is in --json: the table fits 80 columns.
    for col in ("link", "state", "toxics", "conns", "↑ sent", "↓ sent"):
        table.add_column(col, no_wrap=col != "toxics")
    for name, p in state["proxies"].items():
        table.add_row(
            name,
            "[green]up[/]" if p["enabled"] else "[red]down[/]",
            _toxics(p["toxics"]) or "-",
            str(p["connections_active"]),
            _size(p["bytes_upstream"]),
            _size(p["bytes_downstream"]),
        )
    out.print(table)


@command.command("down")
@click.argument("link")
@state_dir_option
@friendly_errors
def down(link, state_dir):
    """Take a link down: its connections are closed, new ones refused."""
    _Links(state_dir).call("POST", f"/proxies/{link}", {"enabled": False})
    click.echo(f"{link}: down")


@command.command("up")
@click.argument("link")
@state_dir_option
@friendly_errors
def up(link, state_dir):
    """Bring a link up again (its toxics stay; `drlab link clear` removes them)."""
    _Links(state_dir).call("POST", f"/proxies/{link}", {"enabled": True})
    click.echo(f"{link}: up")


@command.command("latency")
@click.argument("link")
@click.argument("ms", type=click.IntRange(min=0))
@click.option("--jitter", type=click.IntRange(min=0), default=0, help="± ms, drawn per chunk.")
@_stream_option
@state_dir_option
@friendly_errors
def latency(link, ms, jitter, stream, state_dir):
    """Delay the link's data by MS milliseconds each way (± --jitter)."""
    links = _Links(state_dir)
    for s in _streams(stream):
        links.set_toxic(link, "latency", s, {"latency": ms, "jitter": jitter})
    click.echo(f"{link}: latency {ms} ms" + (f" ±{jitter} ms" if jitter else "") + f" ({stream})")


@command.command("bandwidth")
@click.argument("link")
@click.argument("kbps", type=click.IntRange(min=1))
@_stream_option
@state_dir_option
@friendly_errors
def bandwidth(link, kbps, stream, state_dir):
    """Cap the link at KBPS kilobytes (1000 bytes) per second each way, for all its
    connections together."""
    links = _Links(state_dir)
    for s in _streams(stream):
        links.set_toxic(link, "bandwidth", s, {"rate": kbps})
    click.echo(f"{link}: bandwidth {kbps} KB/s ({stream})")


@command.command("timeout")
@click.argument("link")
@click.argument("ms", type=click.IntRange(min=0))
@_stream_option
@state_dir_option
@friendly_errors
def timeout(link, ms, stream, state_dir):
    """Stop the link's data; close its connections after MS ms (0: hold until cleared)."""
    links = _Links(state_dir)
    for s in _streams(stream):
        links.set_toxic(link, "timeout", s, {"timeout": ms})
    what = "data held until cleared" if ms == 0 else f"connections closed after {ms} ms"
    click.echo(f"{link}: timeout, {what} ({stream})")


@command.command("reset")
@click.argument("link")
@state_dir_option
@friendly_errors
def reset(link, state_dir):
    """Reset (TCP RST) the link's open connections; new ones work.

    A reset_peer toxic with timeout 0 is added and removed at once; the link's other toxics
    and its up/down state stay.
    """
    links = _Links(state_dir)
    body = {"name": RESET_TOXIC, "type": "reset_peer", "attributes": {"timeout": 0}}
    links.call("POST", f"/proxies/{link}/toxics", body)
    links.call("DELETE", f"/proxies/{link}/toxics/{RESET_TOXIC}")
    click.echo(f"{link}: open connections reset")


@command.command("clear")
@click.argument("link", required=False)
@click.option("--all", "all_links", is_flag=True, help="Every link: up, and no toxics.")
@state_dir_option
@friendly_errors
def clear(link, all_links, state_dir):
    """Remove every toxic from LINK (or, with --all, bring every link up without toxics)."""
    links = _Links(state_dir)
    if all_links:
        links.call("POST", "/reset")
        click.echo("every link up, no toxics")
        return
    if not link:
        raise click.UsageError("name a LINK, or use --all")
    for toxic in links.call("GET", f"/proxies/{link}/toxics"):
        links.call("DELETE", f"/proxies/{link}/toxics/{toxic['name']}")
    click.echo(f"{link}: no toxics")
