"""The configuration server's side of resync without sockets: the generation it hands the
agent, its status as the vault takes it (disks by ASR disk id), and the ResyncProtection work
item against an agent that reports through the store (a thread plays the agent)."""

from __future__ import annotations

import json
import threading

import pytest

from components.config_server import resync, work
from components.config_server.server import mobility_agent_entry
from components.config_server.store import ConfigStore
from components.config_server.work import WorkHandlers
from tests.helpers import wait_for

VM = "uuid-vm-1"
SETTINGS = {
    "process_server_id": "PS-1",
    "agent": {
        "epoch": "e1f2a3",
        "protected_item": "item-1",
        "disks": [
            {"index": 0, "disk_id": f"{VM}:disk-0", "size": 4},
            {"index": 1, "disk_id": f"{VM}:disk-1", "size": 8},
        ],
    },
    "enable": {},
}


def status(generation=0, state="Idle", percent=0, required=None, error=None, disks=None):
    return {
        "replication": {
            "resync": {
                "required": required,
                "generation": generation,
                "state": state,
                "error": error,
                "started_at": 10.0 if generation else None,
                "finished_at": 20.0 if state in ("Completed", "Failed") else None,
                "percent": percent,
                "disks": disks or {},
            }
        }
    }


DISK = {
    "percent": 100,
    "source_scanned": 4,
    "replica_scanned": 4,
    "checksum_bytes": 4,
    "differing_bytes": 2,
    "sent_bytes": 2,
    "blocks_sent": 1,
    "blocks_cleared": 0,
    "last_sent_at": 19.0,
}


# -- pure -------------------------------------------------------------------------------------
def test_the_vault_sees_disks_by_their_asr_id():
    reported = resync.reported(
        status(
            1,
            "Running",
            40,
            required={"code": "ResyncRequired", "reason": "unclean-shutdown", "disks": [1]},
            disks={"0": DISK, "1": DISK, "7": DISK},
        )
    )
    seen = resync.vault_status(reported, SETTINGS["agent"])
    assert set(seen["disks"]) == {f"{VM}:disk-0", f"{VM}:disk-1", "7"}  # 7: unknown, kept
    assert seen["required"]["disks"] == [f"{VM}:disk-1"]
    assert seen["required"]["reason"] == "unclean-shutdown"
    assert (seen["generation"], seen["state"], seen["percent"]) == (1, "Running", 40)
    assert reported["disks"].keys() == {"0", "1", "7"}  # the agent's report is left as it was


def test_next_generation():
    assert resync.next_generation(SETTINGS, {}, "w1") == 1
    assert resync.next_generation(SETTINGS, {"generation": 4}, "w1") == 5
    settings = resync.with_generation(SETTINGS, 6, "w1", 100.0, False)
    assert settings["agent"]["resync_generation"] == 6
    assert SETTINGS["agent"].get("resync_generation") is None  # a new dict
    assert resync.next_generation(settings, {"generation": 4}, "w2") == 7
    assert resync.next_generation(settings, {"generation": 6}, "w1") == 6  # delivered again


def test_outcome_is_only_for_the_generation_asked():
    assert resync.outcome({"generation": 2, "state": "Completed"}, 3) is None
    assert resync.outcome({"generation": 3, "state": "Running"}, 3) is None
    assert resync.outcome({"generation": 3, "state": "Completed"}, 3) == "Completed"
    assert resync.outcome({"generation": 3, "state": "Failed"}, 3) == "Failed"


def test_the_heartbeat_entry_carries_resync_only_while_protected():
    agent = {
        "vm_id": VM,
        "id": "agent-1",
        "version": "9.62.0.0",
        "last_heartbeat": 1_800_000_000.0,
        "status": status(2, "Completed", 100, disks={"0": DISK}),
    }
    entry = mobility_agent_entry(agent, {"vm_id": VM, "settings": SETTINGS, "state": "Enabled"})
    assert entry["processServerId"] == "PS-1"
    assert entry["resync"]["disks"] == {f"{VM}:disk-0": DISK}
    assert entry["resync"]["generation"] == 2
    assert "resync" not in mobility_agent_entry(agent, None)
    agent["status"] = {}
    assert "resync" not in mobility_agent_entry(
        agent, {"vm_id": VM, "settings": SETTINGS, "state": "Enabled"}
    )


# -- the work item ----------------------------------------------------------------------------
class FakeClock:
    speed = 1.0

    def time(self) -> float:
        return 1_800_000_000.0


class FakeVault:
    def __init__(self):
        self.reports: list[dict] = []
        self.state = "InProgress"

    def report(self, item_id, report):
        self.reports.append(report)
        return {}

    def work_item(self, item_id):
        return {"id": item_id, "state": self.state}


class FakeCommands:
    def __init__(self):
        self.sent: list[tuple[str, dict]] = []

    def send(self, agent_id, command):
        self.sent.append((agent_id, command))


class FakeServer:
    def __init__(self, tmp_path):
        self.store = ConfigStore(tmp_path / "config.db")
        self.clock = FakeClock()
        self.vault = FakeVault()
        self.groups = type("Groups", (), {"commands": FakeCommands()})()
        self.stop_event = threading.Event()


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setattr(work, "RESYNC_POLL_SECONDS", 0.02)
    s = FakeServer(tmp_path)
    s.store.upsert_agent(
        {
            "id": "agent-1",
            "vm_id": VM,
            "hostname": "lin-db-01",
            "os_family": "linux",
            "ip_addresses": "[]",
            "version": "9.62.0.0",
            "disks": "[]",
            "registered_at": 0.0,
            "last_heartbeat": 0.0,
        }
    )
    s.store.agent_heartbeat("agent-1", 1.0, status(generation=2, state="Completed", percent=100))
    s.store.set_protection(VM, SETTINGS, "Enabled", 0.0)
    yield s
    s.stop_event.set()
    s.store.close()


def work_item(automatic=False) -> dict:
    return {
        "id": "w-1",
        "kind": "ResyncProtection",
        "tasks": [{"name": "ResynchronizeTask", "friendlyName": "Resynchronizing"}],
        "payload": {
            "vmId": VM,
            "vmName": "lin-db-01",
            "protectedItemName": "item-1",
            "automatic": automatic,
        },
    }


def run_in_thread(handlers: WorkHandlers, item: dict):
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("out", handlers._handle(item)))
    thread.start()
    return thread


def asked_generation(server) -> int | None:
    return server.store.protection(VM)["settings"]["agent"].get("resync_generation")


def test_resync_asks_the_agent_for_the_next_generation_and_reports_its_completion(server):
    handlers = WorkHandlers(server)
    thread = run_in_thread(handlers, work_item(automatic=True))
    wait_for(lambda: asked_generation(server) == 3, timeout=10, message="generation 3 asked")
    assert server.groups.commands.sent == [("agent-1", {"kind": "heartbeat"})]
    assert server.store.protection(VM)["state"] == "Enabled"
    assert server.store.protection(VM)["settings"]["resync"]["automatic"] is True

    server.store.agent_heartbeat("agent-1", 2.0, status(3, "Running", 40))
    wait_for(
        lambda: any(r.get("progress") == 40 for r in server.vault.reports),
        timeout=10,
        message="the agent's 40% reported",
    )
    server.store.agent_heartbeat("agent-1", 3.0, status(3, "Completed", 100, disks={"1": DISK}))
    thread.join(timeout=10)
    assert not thread.is_alive()
    outcome = server.vault.reports[-1]
    assert outcome["state"] == "Succeeded"
    assert outcome["result"]["generation"] == 3
    assert outcome["result"]["epoch"] == "e1f2a3"
    assert outcome["result"]["tag"] == "rs-complete-e1f2a3-3"
    assert outcome["result"]["counters"]["differing_bytes"] == 2
    assert outcome["result"]["counters"]["disks"] == {f"{VM}:disk-1": DISK}
    assert {"task": "ResynchronizeTask", "state": "Succeeded"} in server.vault.reports


def test_a_failed_resync_reports_the_agents_reason(server):
    handlers = WorkHandlers(server)
    thread = run_in_thread(handlers, work_item())
    wait_for(lambda: asked_generation(server) == 3, timeout=10, message="generation 3 asked")
    reason = "process server ps-01 unreachable: connection refused"
    server.store.agent_heartbeat("agent-1", 2.0, status(3, "Failed", 60, error=reason))
    thread.join(timeout=10)
    outcome = server.vault.reports[-1]
    assert outcome["state"] == "Failed"
    assert outcome["error"]["code"] == "ResyncFailed"
    assert reason in outcome["error"]["message"]


def test_an_old_generations_completion_is_not_taken_for_the_new_one(server):
    handlers = WorkHandlers(server)
    thread = run_in_thread(handlers, work_item())
    wait_for(lambda: asked_generation(server) == 3, timeout=10, message="generation 3 asked")
    server.store.agent_heartbeat("agent-1", 2.0, status(2, "Completed", 100))
    assert thread.is_alive()
    server.stop_event.set()  # stopping: nothing is reported as the outcome
    thread.join(timeout=10)
    assert all(r.get("task") for r in server.vault.reports)


def test_disabled_protection_and_unknown_vm_fail(server):
    handlers = WorkHandlers(server)
    thread = run_in_thread(handlers, work_item())
    wait_for(lambda: asked_generation(server) == 3, timeout=10, message="generation 3 asked")
    server.store.remove_protection(VM)
    thread.join(timeout=10)
    assert server.vault.reports[-1]["error"]["code"] == "ProtectionDisabled"

    item = work_item()
    item["payload"]["vmId"] = "nobody"
    handlers._handle(item)
    assert server.vault.reports[-1]["error"]["code"] == "ProtectionNotEnabled"
    assert json.dumps(server.vault.reports)  # every report is JSON
