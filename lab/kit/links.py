"""Where the lab's link proxies listen, so that a service routes a link's traffic through one.

The link proxies (the `links` service) listen on ports the launcher published in lab.json
(`services.links.ports.<link>`); which link joins whom is in the topology (`links.proxies`:
name, from, to). A caller that talks to service `to` as role `from` asks `route` for the URL
to use: the link's when the lab has one, the service's own otherwise.

    url = links.route(ctx.lab, "agent", "ps-01", ctx.topology)   # https://127.0.0.1:<link port>

TLS passes through a link untouched: every lab certificate names 127.0.0.1, so the client
checks the upstream service's certificate as if it had connected directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from .labinfo import read_topology

SERVICE = "links"


@dataclass(frozen=True)
class Link:
    name: str
    from_: str
    to: str
    port: int

    def url(self, scheme: str = "https") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"


def links_of(lab: dict, topology: dict | None = None) -> list[Link]:
    """Every link proxy of a lab (none when the lab runs no `links` service)."""
    ports = lab.get("services", {}).get(SERVICE, {}).get("ports", {})
    if not ports:
        return []
    if topology is None:
        topology = read_topology(lab["state_dir"])
    specs = (topology.get("links") or {}).get("proxies") or []
    return [
        Link(s["name"], s["from"], s["to"], ports[s["name"]]) for s in specs if s["name"] in ports
    ]


def link_url(lab: dict, link_name: str, scheme: str = "https") -> str:
    """`https://127.0.0.1:<port>` of one link; KeyError naming the known links if absent."""
    ports = lab.get("services", {}).get(SERVICE, {}).get("ports", {})
    if link_name not in ports:
        known = ", ".join(sorted(ports)) or "none"
        raise KeyError(f"no link named {link_name!r} in this lab (links: {known})")
    return f"{scheme}://127.0.0.1:{ports[link_name]}"


def link_for(lab: dict, from_role: str, to_service: str, topology: dict | None = None):
    """The name of the link that carries `from_role`'s traffic to `to_service`, or None."""
    for link in links_of(lab, topology):
        if link.from_ == from_role and link.to == to_service:
            return link.name
    return None


def route(
    lab: dict, from_role: str, to_service: str, topology: dict | None = None, scheme="https"
) -> str:
    """The URL `from_role` should use for `to_service`: through its link if the lab has one,
    else the service's own URL from lab.json."""
    name = link_for(lab, from_role, to_service, topology)
    if name is not None:
        return link_url(lab, name, scheme)
    return lab["services"][to_service]["url"]
