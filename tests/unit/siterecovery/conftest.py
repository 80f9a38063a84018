"""Unit fixtures: a vault on a temporary SQLite file and a clock the test moves. No sockets."""

from __future__ import annotations

import pytest

from fakes.azure.siterecovery import ids
from fakes.azure.siterecovery.models.vault import Vault

SCOPE = ids.VaultScope("7efbbe65-a449-441f-8079-98035951a214", "drlab-rg", "drlab-vault")


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def time(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def vault(tmp_path, clock):
    v = Vault.open(tmp_path / "arm", clock, SCOPE)
    yield v
    v.store.close()
