"""Fixtures shared by every test layer. Labs get their own state directory and ports, and
are always stopped, so tests run side by side under pytest-xdist."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from lab import launcher


class LabHandle:
    """A running lab, as a test sees it: lab.json, its env, and how to reach services."""

    def __init__(self, state_dir: Path, info: dict):
        self.state_dir = state_dir
        self.info = info

    def reload(self) -> dict:
        self.info = json.loads((self.state_dir / "lab.json").read_text())
        return self.info

    @property
    def env(self) -> dict:
        return self.info["env"]

    @property
    def ca(self) -> str:
        return self.info["ca_cert"]

    def url(self, service: str) -> str:
        return self.info["services"][service]["url"]

    def credential(self, principal: str = "operator"):
        from azure.identity import ClientSecretCredential

        cred = self.info["credentials"][principal]
        return ClientSecretCredential(
            self.info["tenant_id"],
            cred["client_id"],
            cred["client_secret"],
            authority=self.url("entra"),
            disable_instance_discovery=True,
            connection_verify=self.ca,
        )


@pytest.fixture
def lab_factory(tmp_path_factory):
    """Start labs (each in a new state directory); every one is stopped at teardown."""
    started: list[Path] = []

    def start(topology: str = "default", **kwargs) -> LabHandle:
        state_dir = tmp_path_factory.mktemp("lab")
        started.append(state_dir)
        info = launcher.up(topology, state_dir, **kwargs)
        return LabHandle(state_dir, info)

    yield start
    for state_dir in started:
        with contextlib.suppress(launcher.LabError):
            launcher.down(state_dir)


@pytest.fixture(scope="session")
def shared_lab(tmp_path_factory):
    """One default lab per test worker, for tests that only read or add uniquely named things."""
    state_dir = tmp_path_factory.mktemp("shared-lab")
    info = launcher.up("default", state_dir)
    try:
        yield LabHandle(state_dir, info)
    finally:
        launcher.down(state_dir)


@contextlib.contextmanager
def replicating_lab_turn(tmp_path_factory):
    """Hold the turn of the test run's labs that replicate three VMs under a sped-up clock
    (the data path's and failover's e2e modules): one at a time across xdist workers, as two
    of them on a small machine starve each other's agents and workers of CPU. The turn is a
    lock file shared by the run's workers (their common temporary directory)."""
    import fcntl

    shared = tmp_path_factory.getbasetemp().parent
    with open(shared / "replicating-lab.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield
