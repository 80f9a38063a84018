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

TOPOLOGY_DIR = Path(__file__).parent / "topologies"


class TopologyError(Exception):
    def __init__(self, file: str, line: int | None, field: str | None, message: str):
        self.file, self.line, self.field, self.message = file, line, field, message
        where = f"{file}:{line}" if line else file
        what = f" field '{field}':" if field else ""
        super().__init__(f"{where}:{what} {message}")


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


class AzureSpec(_Model):
    subscription_id: str
    resource_group: str = Field(pattern=r"^[-\w._()]{1,90}$")
    vault: str = Field(pattern=r"^[A-Za-z][-A-Za-z0-9]{1,49}$")
    location: str = "westeurope"
    operator: str = Field(min_length=1, description="principal exported as AZURE_CLIENT_ID")

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
        return self


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
    services: dict[str, ServiceSpec] = {}

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
