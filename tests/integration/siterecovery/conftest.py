"""Fixtures for Site Recovery against a real ARM process: a small lab (Entra + ARM), the real
SDK client, an in-test configuration server, and a check of every response body against the
official OpenAPI document (after each test, over all the responses it received)."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest
import yaml
from azure.mgmt.recoveryservicessiterecovery import SiteRecoveryManagementClient

from lab import launcher
from lab.topology import TOPOLOGY_DIR

from .cs_client import ConfigurationServer
from .openapi_check import OpenApiChecker, Record

_CHECKER = None


def checker() -> OpenApiChecker:
    global _CHECKER
    if _CHECKER is None:
        _CHECKER = OpenApiChecker()
    return _CHECKER


def small_topology(directory: Path) -> Path:
    """The default topology's Entra, Azure and storage only: the lab runs Entra and ARM."""
    default = yaml.safe_load((TOPOLOGY_DIR / "default.yaml").read_text())
    data = {k: default[k] for k in ("clock", "entra", "azure", "storage") if k in default}
    data["name"] = "siterecovery-test"
    data["services"] = {"azurite": {"enabled": False}}
    path = directory / "siterecovery-test.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class ArmLab:
    def __init__(self, state_dir: Path, info: dict):
        self.state_dir = state_dir
        self.info = info

    @property
    def arm_url(self) -> str:
        return self.info["services"]["arm"]["url"]

    @property
    def ca(self) -> str:
        return self.info["ca_cert"]

    @property
    def credentials_file(self) -> Path:
        return self.state_dir / "services" / "arm" / "vault.credentials"

    def credential(self, principal: str = "operator"):
        from azure.identity import ClientSecretCredential

        cred = self.info["credentials"][principal]
        return ClientSecretCredential(
            self.info["tenant_id"],
            cred["client_id"],
            cred["client_secret"],
            authority=self.info["services"]["entra"]["url"],
            disable_instance_discovery=True,
            connection_verify=self.ca,
        )


def start_lab(tmp_path_factory) -> ArmLab:
    state_dir = tmp_path_factory.mktemp("sr-lab")
    info = launcher.up(str(small_topology(state_dir)), state_dir / "state")
    return ArmLab(state_dir / "state", info)


@pytest.fixture(scope="session")
def arm_lab(tmp_path_factory):
    lab = start_lab(tmp_path_factory)
    try:
        yield lab
    finally:
        launcher.down(lab.state_dir)


@pytest.fixture
def own_arm_lab(tmp_path_factory):
    """A lab of its own, for tests that restart the ARM process."""
    lab = start_lab(tmp_path_factory)
    try:
        yield lab
    finally:
        with contextlib.suppress(launcher.LabError):
            launcher.down(lab.state_dir)


@pytest.fixture
def responses():
    """Every response of the test, checked against the OpenAPI document at teardown."""
    records: list[Record] = []
    yield records
    problems = []
    for r in records:
        problems.extend(checker().check(r))
    assert not problems, "responses that do not match the OpenAPI document:\n" + "\n".join(
        problems[:20]
    )


def _client(lab: ArmLab, records: list[Record]) -> SiteRecoveryManagementClient:
    def hook(pipeline_response):
        http = pipeline_response.http_response
        request = pipeline_response.http_request
        try:
            body = http.internal_response.content
        except Exception:  # a stream the SDK reads itself
            body = None
        records.append(Record(request.method, request.url, http.status_code, body))

    return SiteRecoveryManagementClient(
        lab.credential(),
        lab.info["subscription_id"],
        base_url=lab.arm_url,
        connection_verify=lab.ca,
        raw_response_hook=hook,
    )


@pytest.fixture
def sdk(arm_lab, responses):
    return _client(arm_lab, responses)


@pytest.fixture
def sdk_for(responses):
    return lambda lab: _client(lab, responses)


@pytest.fixture
def vault(arm_lab):
    return arm_lab.info["resource_group"], arm_lab.info["vault"]


def make_cs(lab: ArmLab, records: list[Record], **kw) -> ConfigurationServer:
    return ConfigurationServer(
        lab.arm_url,
        lab.ca,
        lab.credential("configuration-server"),
        lab.credentials_file,
        recorder=lambda m, u, s, b: records.append(Record(m, u, s, b)),
        **kw,
    )


@pytest.fixture
def cs(arm_lab, responses):
    """A registered configuration server with one process server (heartbeat sent), working its
    queue in the background; stopped at teardown."""
    server = make_cs(arm_lab, responses)
    server.register()
    server.heartbeat()
    server.serve()
    yield server
    server.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
