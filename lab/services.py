"""The services a lab runs: name, the module that runs it, how it is probed and stopped.

The launcher starts each as `python -m <module>`; it imports none of them. Order matters only
for display and stop: services start in parallel and stop in reverse order (clients before
the stores they write to).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .topology import Topology


@dataclass(frozen=True)
class ServiceDef:
    name: str
    module: str
    # True: the launcher binds the socket and hands it over (DRLAB_LISTEN_FD); False: the
    # service is given a free port number and binds it itself (Azurite, a Node process).
    handoff_socket: bool = True
    probe_path: str = "/_lab/ready"
    # Any HTTP answer counts as ready (Azurite has no /_lab/ready; an auth error is an answer).
    probe_any_status: bool = False
    # A log line that means the service finished its graceful stop even if it lingers.
    stopped_marker: str | None = None
    # An npm package (in node_modules) the service runs.
    node_package: str | None = None
    # More sockets besides its HTTPS one (e.g. "smtp"): each handed over as
    # DRLAB_LISTEN_FD_<NAME>, its port published in lab.json under services.<name>.ports.
    # A callable computes them from the topology (the link proxies: one per link).
    extra_ports: tuple[str, ...] | Callable[[Topology], tuple[str, ...]] = ()
    # A role with several instances (process servers): the names of its services, from the
    # topology. Each instance runs the same module under its own name; `role` keeps the
    # definition's name.
    instances: Callable[[Topology], list[str]] | None = None
    role: str = ""
    enabled: Callable[[Topology], bool] = lambda topo: True

    def __post_init__(self):
        if not self.role:
            object.__setattr__(self, "role", self.name)


SERVICES: list[ServiceDef] = [
    ServiceDef(
        "azurite",
        "fakes.azure.storage",
        handoff_socket=False,
        probe_path="/",
        probe_any_status=True,
        stopped_marker="Azurite Blob service successfully closed",
        node_package="azurite",
    ),
    # The disks account (seed and managed disks) in an Azurite of its own: each byte of the
    # data path crosses the cache account twice and the disks account once.
    ServiceDef(
        "azurite-disks",
        "fakes.azure.storage",
        handoff_socket=False,
        probe_path="/",
        probe_any_status=True,
        stopped_marker="Azurite Blob service successfully closed",
        node_package="azurite",
        enabled=lambda t: t.disks_account() is not None,
    ),
    ServiceDef("entra", "fakes.azure.entra"),
    ServiceDef("arm", "fakes.azure.arm"),
    ServiceDef("vcenter", "fakes.vcenter", enabled=lambda t: t.vcenter is not None),
    ServiceDef("servicebus", "fakes.azure.servicebus", enabled=lambda t: t.servicebus is not None),
    ServiceDef("mail", "fakes.mail", extra_ports=("smtp",), enabled=lambda t: t.mail is not None),
    # Applies replication logs to seed disks, makes recovery points, computes RPO.
    ServiceDef(
        "sr-worker",
        "fakes.azure.siterecovery.worker",
        enabled=lambda t: t.disks_account() is not None,
    ),
    # TCP proxies on the lab's network links (agent -> process server, process server -> Azure,
    # the failback VPN), each on a port of its own; stopped after the on-premises roles.
    ServiceDef(
        "links",
        "fakes.links",
        extra_ports=lambda t: tuple(link.name for link in t.links.proxies or ()),
        enabled=lambda t: bool(t.links.proxies),
    ),
    # The on-premises roles, one process each, named as in the topology (cs-01, ps-01, mt-01).
    ServiceDef(
        "config-server",
        "components.config_server",
        instances=lambda t: [t.onprem.configuration_server.name],
        enabled=lambda t: t.onprem is not None,
    ),
    ServiceDef(
        "process-server",
        "components.process_server",
        instances=lambda t: [p.name for p in t.onprem.process_servers],
        enabled=lambda t: t.onprem is not None,
    ),
    ServiceDef(
        "master-target",
        "components.master_target",
        instances=lambda t: [m.name for m in t.onprem.master_targets],
        enabled=lambda t: t.onprem is not None,
    ),
]


def enabled_services(topology: Topology) -> list[ServiceDef]:
    chosen = []
    for svc in SERVICES:
        if not svc.enabled(topology):
            continue
        names = svc.instances(topology) if svc.instances else [svc.name]
        for name in names:
            override = topology.services.get(name)
            if override is not None and not override.enabled:
                continue
            extra = svc.extra_ports(topology) if callable(svc.extra_ports) else svc.extra_ports
            chosen.append(replace(svc, name=name, role=svc.role, extra_ports=tuple(extra)))
    return chosen


def definition(role: str) -> ServiceDef | None:
    return next((s for s in SERVICES if s.role == role), None)


def known_names(topology: Topology) -> set[str]:
    names = set()
    for svc in SERVICES:
        if svc.instances is None:
            names.add(svc.name)
        elif svc.enabled(topology):
            names.update(svc.instances(topology))
    return names
