"""A small lab of its own for the Service Bus tests: Entra, Azurite, Service Bus and the mail
sink, with entities and SAS rules made for testing (short queues, a send-only rule, ...), so no
other service's monitoring events land in the queues these tests read."""

from __future__ import annotations

import contextlib

import pytest
import yaml

from lab import launcher
from lab.kit.monitoring import sas_token
from lab.topology import TOPOLOGY_DIR
from tests.conftest import LabHandle

NAMESPACE = "drlab-test-bus"
ROOT_KEY = "dGVzdC1yb290LWtleS1mb3ItdGhlLWxhYg=="
SEND_KEY = "dGVzdC1zZW5kZXIta2V5"
LISTEN_KEY = "dGVzdC1saXN0ZW5lci1rZXk="

SERVICEBUS = {
    "namespace": NAMESPACE,
    "max_message_kb": 16,
    "sas_rules": [
        {
            "name": "RootManageSharedAccessKey",
            "key": ROOT_KEY,
            "rights": ["Manage", "Send", "Listen"],
        },
        {"name": "sender", "key": SEND_KEY, "rights": ["Send"]},
        {"name": "listener", "key": LISTEN_KEY, "rights": ["Listen"]},
    ],
    "queues": [
        {"name": "work", "lock_duration_seconds": 30, "max_delivery_count": 2},
        {"name": "alerts"},
        {"name": "durable"},
    ],
    "topics": [{"name": "events", "subscriptions": [{"name": "a"}, {"name": "b"}]}],
}


class BusLab(LabHandle):
    @property
    def bus(self) -> str:
        return self.url("servicebus")

    def sas(self, entity: str = "", rule: str = "RootManageSharedAccessKey", **kwargs) -> str:
        key = {"RootManageSharedAccessKey": ROOT_KEY, "sender": SEND_KEY, "listener": LISTEN_KEY}
        return sas_token(f"{self.bus}/{entity}", rule, key[rule], **kwargs)


@pytest.fixture(scope="module")
def bus_lab(tmp_path_factory):
    topology = yaml.safe_load((TOPOLOGY_DIR / "default.yaml").read_text())
    topology.pop("vcenter", None)  # nothing on-premises: only what these tests talk to
    topology["name"] = "servicebus-tests"
    topology["servicebus"] = SERVICEBUS
    path = tmp_path_factory.mktemp("bus-topology") / "servicebus-tests.yaml"
    path.write_text(yaml.safe_dump(topology))
    state_dir = tmp_path_factory.mktemp("bus-lab")
    info = launcher.up(str(path), state_dir)
    try:
        yield BusLab(state_dir, info)
    finally:
        with contextlib.suppress(launcher.LabError):
            launcher.down(state_dir)
