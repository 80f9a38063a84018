"""The link proxies as a lab service: one process owns every link's listening socket.

Each link of the topology (`links.proxies`, or the default set) gets a socket the launcher
bound (`DRLAB_LISTEN_FD_<LINK>`, its port in lab.json under `services.links.ports`); its
upstream is the port of the service it names, read from lab.json at start. The HTTP API
(Toxiproxy's) is served on the service's own HTTPS port.
"""

from __future__ import annotations

import logging

from lab.kit import service

from .app import create_app
from .engine import Limits, LinkService
from .models import Links, Proxy

log = logging.getLogger(__name__)


def proxies_of(ctx: service.ServiceContext) -> list[Proxy]:
    proxies = []
    for spec in ctx.topology["links"]["proxies"] or []:
        upstream = ctx.lab["services"].get(spec["to"])
        if upstream is None:
            raise ValueError(
                f"link {spec['name']}: no service named {spec['to']!r} in this lab "
                f"(services: {', '.join(sorted(ctx.lab['services']))})"
            )
        listen_port = ctx.service["ports"][spec["name"]]
        proxies.append(Proxy(spec["name"], spec["from"], spec["to"], listen_port, upstream["port"]))
    return proxies


def build(ctx: service.ServiceContext):
    spec = ctx.topology["links"]
    proxies = proxies_of(ctx)
    sockets = {p.name: service.listening_socket(p.name) for p in proxies}
    limits = Limits(spec["max_connections"], spec["max_buffer_kb"] * 1024)
    links = LinkService(Links(proxies), sockets, limits).start()
    return create_app(links), links.stop


if __name__ == "__main__":
    service.run(build)
