"""Topologies: what a lab is made of, in YAML (`lab/topologies/<name>.yaml` or any path).

`load_topology` parses and validates one; every error names the file, the line and the field,
so a typo is found before anything starts. The validated topology is written into the state
directory as JSON for the services to read.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lab.kit.units import parse_size

from .errors import TopologyError

TOPOLOGY_DIR = Path(__file__).parent / "topologies"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


Port = Annotated[int, Field(ge=0, le=65535)]


class ClockSpec(_Model):
    speed: float = Field(1.0, gt=0, le=100000)


class PrincipalSpec(_Model):
    name: str = Field(min_length=1)
    client_id: str
    secret: str = Field(min_length=8)
    object_id: str | None = None

    @field_validator("client_id", "object_id")
    @classmethod
    def _uuid(cls, v):
        if v is not None:
            uuid.UUID(v)
        return v


class ResourceSpec(_Model):
    identifier: str = Field(pattern=r"^(https://|api://)\S+$")
    audience: str | None = None


class EntraSpec(_Model):
    tenant_id: str
    domain: str | None = None
    principals: list[PrincipalSpec] = Field(min_length=1)
    resources: list[ResourceSpec] = Field(min_length=1)

    @field_validator("tenant_id")
    @classmethod
    def _uuid(cls, v):
        uuid.UUID(v)
        return v

    @model_validator(mode="after")
    def _unique(self):
        _unique_by(self.principals, "name")
        _unique_by(self.principals, "client_id")
        return self


class SubnetSpec(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,79}$")
    prefix: str  # CIDR, inside the VNet's address space


class AzureNetworkSpec(_Model):
    """A virtual network seeded in Azure (failover targets: production and an isolated test
    VNet, which has no route to on-premises)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,63}$")
    address_space: list[str] = Field(min_length=1)  # CIDR prefixes (one may be given as text)
    isolated: bool = False
    resource_group: str | None = None  # default: replication.target_resource_group
    subnets: list[SubnetSpec] = Field(min_length=1)

    @field_validator("address_space", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _prefixes(self):
        import ipaddress

        space = [ipaddress.ip_network(p, strict=True) for p in self.address_space]
        _unique_by(self.subnets, "name")
        seen = []
        for s in self.subnets:
            net = ipaddress.ip_network(s.prefix, strict=True)
            if not any(net.subnet_of(a) for a in space if a.version == net.version):
                raise ValueError(f"subnet {s.name} ({net}) is outside the address space")
            if any(net.overlaps(o) for o in seen):
                raise ValueError(f"subnet {s.name} ({net}) overlaps another subnet")
            seen.append(net)
        return self


class AzureSpec(_Model):
    subscription_id: str
    resource_group: str = Field(pattern=r"^[-\w._()]{1,90}$")
    vault: str = Field(pattern=r"^[A-Za-z][-A-Za-z0-9]{1,49}$")
    location: str = "westeurope"
    operator: str = Field(min_length=1, description="principal exported as AZURE_CLIENT_ID")
    networks: list[AzureNetworkSpec] = []  # seeded by fakes.azure.network

    @field_validator("subscription_id")
    @classmethod
    def _uuid(cls, v):
        uuid.UUID(v)
        return v


class StorageAccountSpec(_Model):
    name: str = Field(pattern=r"^[a-z0-9]{3,24}$")
    key: str
    role: str = Field("general", pattern=r"^(cache|disks|general)$")

    @field_validator("key")
    @classmethod
    def _base64(cls, v):
        import base64
        import binascii

        try:
            base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("must be base64") from exc
        return v


class StorageSpec(_Model):
    access_log: bool = False
    accounts: list[StorageAccountSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_cache(self):
        _unique_by(self.accounts, "name")
        if sum(a.role == "cache" for a in self.accounts) != 1:
            raise ValueError("exactly one storage account must have role 'cache'")
        if sum(a.role == "disks" for a in self.accounts) > 1:
            raise ValueError("at most one storage account may have role 'disks'")
        return self


Size = Annotated[str, Field(pattern=r"^\d+(\.\d+)?\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?$")]


class AccountSpec(_Model):
    user: str = Field(min_length=1)
    password: str = Field(min_length=1)


class LedgerSpec(_Model):
    """This VM's side of a ledger pair: transfers between two VMs' applications, whose
    invariant holds only at a shared point in time (docs/guest.md, "The ledger")."""

    peer: str = Field(pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$")  # the other VM's name
    role: str = Field(pattern=r"^(sender|receiver)$")
    tps: float = Field(1.0, ge=0, le=100)  # the sender's transfers per second


class WorkloadSpec(_Model):
    """What a VM's guest runs: a write generator, a journaled application, maybe a ledger."""

    ledger: LedgerSpec | None = None  # a pair: {peer: <vm name>, role: sender|receiver, tps}

    churn_mb_s: float = Field(0.05, ge=0, le=200)  # write generator, MB/s; 0 = idle
    io_size_kb: int = Field(8, ge=4, le=4096)  # multiple of 4 KiB
    hot_fraction: float = Field(0.1, gt=0, le=1)  # share of the disk that is hot
    hot_share: float = Field(0.8, ge=0, le=1)  # share of writes that go to the hot region
    app: bool = True  # the journaled application on the last disk
    app_tps: float = Field(5.0, ge=0, le=1000)  # application transactions per second
    quiesce: bool = False  # the application can be quiesced (VSS-like), Windows-like VMs
    seed: int | None = None  # deterministic writes; default derived from the VM name

    @field_validator("io_size_kb")
    @classmethod
    def _aligned(cls, v):
        if v % 4:
            raise ValueError("must be a multiple of 4 (KiB)")
        return v


class NicSpec(_Model):
    network: str
    ip: str
    mac: str | None = Field(None, pattern=r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


class DiskSpec(_Model):
    size: Size
    datastore: str | None = None  # default: the VM's datastore

    @field_validator("size")
    @classmethod
    def _min(cls, v):
        if parse_size(v) < 2**20 or parse_size(v) % 512:
            raise ValueError("a disk is at least 1 MiB and a multiple of 512 bytes")
        return v


class VmSpec(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$")
    os_family: str = Field(pattern=r"^(windows|linux)$")
    guest_id: str  # vSphere guest id, e.g. windows2019srv_64Guest, rhel8_64Guest
    host: str
    datastore: str
    cpus: int = Field(2, ge=1, le=128)
    memory_mb: int = Field(4096, ge=128)
    power: str = Field("on", pattern=r"^(on|off)$")
    nics: list[NicSpec] = Field(min_length=1)
    disks: list[DiskSpec] = Field(min_length=1, max_length=16)  # disk 0 is the OS disk
    workload: WorkloadSpec = WorkloadSpec()
    guest_account: AccountSpec | None = None  # default: vcenter.guest_accounts[os_family]


class HostSpec(_Model):
    name: str
    cpus: int = 16
    memory_gb: int = 128


class ClusterSpec(_Model):
    name: str
    hosts: list[HostSpec] = Field(min_length=1)


class DatastoreSpec(_Model):
    name: str
    capacity: Size = "1TiB"  # advertised capacity; free = capacity - bytes allocated in it


class NetworkSpec(_Model):
    name: str
    subnet: str = "10.10.0.0/24"


class DatacenterSpec(_Model):
    name: str
    clusters: list[ClusterSpec] = Field(min_length=1)
    datastores: list[DatastoreSpec] = Field(min_length=1)
    networks: list[NetworkSpec] = Field(min_length=1)
    vms: list[VmSpec] = []

    @model_validator(mode="after")
    def _references(self):
        hosts = {h.name for c in self.clusters for h in c.hosts}
        stores = {d.name for d in self.datastores}
        nets = {n.name for n in self.networks}
        _unique_by(self.vms, "name")
        _unique_by(self.datastores, "name")
        for vm in self.vms:
            if vm.host not in hosts:
                raise ValueError(f"vm {vm.name}: host {vm.host!r} is not in this datacenter")
            for ds in [vm.datastore] + [d.datastore for d in vm.disks if d.datastore]:
                if ds not in stores:
                    raise ValueError(f"vm {vm.name}: datastore {ds!r} is not in this datacenter")
            for nic in vm.nics:
                if nic.network not in nets:
                    raise ValueError(f"vm {vm.name}: network {nic.network!r} is not defined")
        return self


class VCenterSpec(_Model):
    user: str = "administrator@vsphere.local"
    password: str = Field(min_length=8)
    session_timeout_minutes: int = Field(30, ge=1)
    guest_accounts: dict[str, AccountSpec]  # os_family -> the guest OS's admin account
    datacenters: list[DatacenterSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _accounts(self):
        for dc in self.datacenters:
            for vm in dc.vms:
                if vm.guest_account is None and vm.os_family not in self.guest_accounts:
                    raise ValueError(
                        f"vm {vm.name}: no guest_account and no guest_accounts.{vm.os_family}"
                    )
        return self


class SasRuleSpec(_Model):
    name: str
    key: str
    rights: list[str] = Field(default_factory=lambda: ["Send", "Listen"])

    @field_validator("rights")
    @classmethod
    def _rights(cls, v):
        bad = set(v) - {"Send", "Listen", "Manage"}
        if bad:
            raise ValueError(f"unknown rights: {', '.join(sorted(bad))}")
        return v


class QueueSpec(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,259}$")
    lock_duration_seconds: int = Field(60, ge=5, le=300)
    max_delivery_count: int = Field(10, ge=1)
    max_size_mb: int = Field(1024, ge=1)


class SubscriptionSpec(_Model):
    name: str
    lock_duration_seconds: int = Field(60, ge=5, le=300)
    max_delivery_count: int = Field(10, ge=1)


class TopicSpec(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,259}$")
    max_size_mb: int = Field(1024, ge=1)
    subscriptions: list[SubscriptionSpec] = []


class ServiceBusSpec(_Model):
    """The monitoring and diagnostics namespace the lab publishes its events to."""

    namespace: str = Field(pattern=r"^[A-Za-z][-A-Za-z0-9]{4,48}[A-Za-z0-9]$")
    max_message_kb: int = Field(256, ge=1, le=102400)
    sas_rules: list[SasRuleSpec] = []
    queues: list[QueueSpec] = []
    topics: list[TopicSpec] = []


class MailSpec(_Model):
    """The lab's mail sink: where RPO and health alerts are e-mailed."""

    sender: str = "asr-alerts@drlab.local"
    recipients: list[str] = Field(default_factory=lambda: ["dr-team@drlab.local"])


class ConfigurationServerSpec(_Model):
    name: str = Field("cs-01", pattern=r"^[a-z][-a-z0-9]{1,30}$")
    ip: str = "10.10.0.5"
    # How often the configuration server re-reads vCenter inventory as well as watching it.
    discovery_interval_seconds: float = Field(30, gt=0)
    heartbeat_interval_seconds: float = Field(5, gt=0)


class ProcessServerSpec(_Model):
    name: str = Field(pattern=r"^ps-[a-z0-9][-a-z0-9]{0,28}$")
    ip: str
    cache_capacity: Size = "4GiB"
    upload_threads: int = Field(4, ge=1, le=32)


class MasterTargetSpec(_Model):
    name: str = Field(pattern=r"^mt-[a-z0-9][-a-z0-9]{0,28}$")
    ip: str
    os_family: str = Field("windows", pattern=r"^(windows|linux)$")
    retention_capacity: Size = "100GiB"


class MobilitySpec(_Model):
    """How the mobility service is installed (push install passes these to its installer)."""

    # The change journal's spill limit: a journal that outgrows it while changes cannot be
    # sent (a cut link, a full process server) is dropped, and the VM needs a resync.
    journal_limit: Size = "512MiB"


class OnPremSpec(_Model):
    """The on-premises roles of the seed: configuration, process and master target servers."""

    configuration_server: ConfigurationServerSpec = ConfigurationServerSpec()
    process_servers: list[ProcessServerSpec] = Field(min_length=1)
    master_targets: list[MasterTargetSpec] = []
    mobility: MobilitySpec = MobilitySpec()

    @model_validator(mode="after")
    def _unique(self):
        _unique_by(self.process_servers, "name")
        _unique_by(self.master_targets, "name")
        return self


class PolicySpec(_Model):
    name: str = Field("default-policy", pattern=r"^[A-Za-z0-9][-A-Za-z0-9_]{0,62}$")
    rpo_threshold_minutes: int = Field(15, ge=1)
    retention_hours: int = Field(24, ge=0, le=360)  # the real service keeps at most 15 days
    app_consistent_hours: int = Field(4, ge=0, le=12)
    crash_consistent_minutes: int = Field(5, ge=1)
    multi_vm_sync: bool = True


_TIME_OF_DAY = r"^([01]\d|2[0-3]):[0-5]\d$"


class ResyncWindowSpec(_Model):
    """The off-hours window (lab time, UTC) in which the vault starts the resyncs agents ask
    for; it may wrap midnight (start 22:00, end 06:00); start == end is the whole day."""

    start: str = Field("22:00", pattern=_TIME_OF_DAY)
    end: str = Field("06:00", pattern=_TIME_OF_DAY)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _sexagesimal(cls, v):
        # YAML 1.1 reads an unquoted 22:00 as the base-60 number 1320 (minutes): take it back.
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 24 * 60:
            return f"{v // 60:02d}:{v % 60:02d}"
        return v


class ReplicationSpec(_Model):
    """What `drlab up` sets up so that enabling replication is one command."""

    vcenter_name: str = "vcenter-01"  # how the vCenter is known to the vault
    policy: PolicySpec = PolicySpec()
    target_resource_group: str = "drlab-target"
    target_network: str = "vnet-prod"
    target_subnet: str = "default"
    test_network: str = "vnet-test"
    automatic_resync: bool = True  # the vault resyncs what agents ask for, in the window
    resync_window: ResyncWindowSpec = ResyncWindowSpec()


class LinkSpec(_Model):
    """A TCP proxy on one of the lab's network links (`drlab link`, fakes.links)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)
    name: str = Field(pattern=r"^[a-z][-a-z0-9]{0,62}$")
    from_: str = Field(alias="from", min_length=1)  # whose traffic crosses it: agent, ps-01, azure
    to: str = Field(min_length=1)  # the service it forwards to, as named in lab.json


class LinksSpec(_Model):
    """The link proxies. Without `proxies`, one per link of the seed's architecture:
    agent-to-<ps> and <ps>-to-azure for each process server, and `vpn` (failback: Azure to
    the first master target)."""

    proxies: list[LinkSpec] | None = None
    max_connections: int = Field(64, ge=1, le=1024)  # per link
    max_buffer_kb: int = Field(1024, ge=16, le=65536)  # per connection and direction

    @model_validator(mode="after")
    def _unique(self):
        _unique_by(self.proxies or [], "name")
        return self


def _default_links(onprem: OnPremSpec | None) -> list[LinkSpec]:
    if onprem is None:
        return []
    links = []
    for ps in onprem.process_servers:
        links.append(LinkSpec(name=f"agent-to-{ps.name}", from_="agent", to=ps.name))
        links.append(LinkSpec(name=f"{ps.name}-to-azure", from_=ps.name, to="azurite"))
    if onprem.master_targets:
        links.append(LinkSpec(name="vpn", from_="azure", to=onprem.master_targets[0].name))
    return links


class ServiceSpec(_Model):
    port: Port = 0
    enabled: bool = True


class Topology(_Model):
    name: str = Field(pattern=r"^[a-z0-9][-a-z0-9]*$")
    description: str = ""
    clock: ClockSpec = ClockSpec()
    entra: EntraSpec
    azure: AzureSpec
    storage: StorageSpec
    vcenter: VCenterSpec | None = None
    onprem: OnPremSpec | None = None
    replication: ReplicationSpec | None = None
    servicebus: ServiceBusSpec | None = None
    mail: MailSpec | None = None
    services: dict[str, ServiceSpec] = {}
    links: LinksSpec = Field(default_factory=LinksSpec)

    @model_validator(mode="after")
    def _default_link_proxies(self):
        if self.links.proxies is None:
            self.links = self.links.model_copy(update={"proxies": _default_links(self.onprem)})
        return self

    @model_validator(mode="after")
    def _operator_known(self):
        names = {p.name for p in self.entra.principals}
        if self.azure.operator not in names:
            raise ValueError(
                f"azure.operator names principal {self.azure.operator!r}, "
                f"which is not in entra.principals"
            )
        return self

    def cache_account(self) -> StorageAccountSpec:
        return next(a for a in self.storage.accounts if a.role == "cache")

    def disks_account(self) -> StorageAccountSpec | None:
        return next((a for a in self.storage.accounts if a.role == "disks"), None)


def _unique_by(items, attr):
    seen = set()
    for item in items:
        value = getattr(item, attr)
        if value in seen:
            raise ValueError(f"{attr} {value!r} appears twice")
        seen.add(value)


# -- loading ----------------------------------------------------------------------------------
def available() -> list[str]:
    return sorted(p.stem for p in TOPOLOGY_DIR.glob("*.yaml"))


def resolve(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise TopologyError(str(path), None, None, "no such topology file")
        return path
    candidate = TOPOLOGY_DIR / f"{name_or_path}.yaml"
    if not candidate.exists():
        raise TopologyError(
            name_or_path,
            None,
            None,
            f"no topology named {name_or_path!r} (available: {', '.join(available())})",
        )
    return candidate


def load_topology(name_or_path: str = "default", known_services=None) -> Topology:
    path = resolve(name_or_path)
    text = path.read_text()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise TopologyError(
            str(path), mark.line + 1 if mark else None, None, f"YAML: {exc.problem}"
        ) from None
    if not isinstance(data, dict):
        raise TopologyError(str(path), 1, None, "a topology is a YAML mapping")
    _check_duplicate_keys(root, str(path))
    try:
        topo = Topology.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        raise TopologyError(
            str(path), _line_of(root, loc), ".".join(map(str, loc)) or None, _message(err)
        ) from None
    if known_services is not None:
        if callable(known_services):
            known_services = known_services(topo)
        for name in topo.services:
            if name not in known_services:
                raise TopologyError(
                    str(path),
                    _line_of(root, ("services", name)),
                    f"services.{name}",
                    f"unknown service (known: {', '.join(sorted(known_services))})",
                )
    return topo


def _message(err: dict) -> str:
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required field is missing"
    return re.sub(r"^Value error, ", "", msg)


def _line_of(node, loc: tuple) -> int | None:
    """The line of the deepest YAML node along a pydantic error location.

    A mapping entry is reported at its key (a missing field at its parent's key), a list item
    at the item.
    """
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    child, line = value, key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            return line
        node = child
    return line


def _check_duplicate_keys(node, file: str, path: str = "") -> None:
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            if key.value in seen:
                field = f"{path}.{key.value}" if path else key.value
                raise TopologyError(file, key.start_mark.line + 1, field, "duplicate key")
            seen.add(key.value)
            _check_duplicate_keys(value, file, f"{path}.{key.value}" if path else key.value)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(item, file, f"{path}.{i}")


def to_json(topology: Topology) -> dict[str, Any]:
    return topology.model_dump(mode="json")
