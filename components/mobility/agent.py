"""The mobility agent: a service in the guest (the role of svagents / the Vx agent).

It registers with the configuration server using the passphrase the installer recorded, then
sends heartbeats; the configuration server answers with what the agent must do (replicate
which disks, through which process server, under which policy). The replication work itself
is in `replicator.py`; this module owns the agent's life: registration, heartbeats, start and
stop.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from components.http_client import JsonClient, ServerError, ca_file

from . import filter as disk_filter
from .journal import TAG_APP

log = logging.getLogger(__name__)

AGENT_VERSION = "9.62.0.0"
# The executables the guest lists for the service, as the real agent's are named.
PROCESS_NAMES = {"windows": "svagents.exe", "linux": "svagentsd"}
HEARTBEAT_SECONDS = 5.0
GROUP_HOLD_SECONDS = 10.0  # the longest the agent holds its VM's writes for a group tag
RETRY_SECONDS = (0.5, 1, 2, 5)


class MobilityAgent:
    def __init__(self, api):
        self.api = api
        settings = api.settings
        self.cs = JsonClient(settings["cs_endpoint"], ca_file(api.spill_dir, settings["ca_pem"]))
        self.passphrase = settings["passphrase"]
        self.ca = self.cs.session.verify
        self.agent_id: str | None = None
        self.replication: dict | None = None
        self.replicator = None
        self.stop_event = threading.Event()
        self.wake = threading.Event()  # heartbeat now rather than at the next interval
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="mobility-agent", daemon=True)

    def start(self) -> MobilityAgent:
        self._thread.start()
        threading.Thread(target=self._commands, name="agent-commands", daemon=True).start()
        return self

    # -- group tags: the configuration server's commands ------------------------------------
    def _commands(self) -> None:
        while not self.stop_event.is_set():
            if self.agent_id is None:
                self.stop_event.wait(0.5)
                continue
            try:
                for command in self._poll_commands(10):
                    if command.get("kind") == "hold":
                        self._group_tag(command)
                    elif command.get("kind") == "heartbeat":
                        self.wake.set()  # e.g. replication was just paired: ask now
            except ServerError as exc:
                log.warning("commands: %s", exc)
                self.stop_event.wait(1.0)

    def _poll_commands(self, wait: float) -> list[dict]:
        reply = self.cs.call(
            "GET", f"/v1/agents/{self.agent_id}/commands?wait={wait}", timeout=(5, wait + 30)
        )
        return reply.get("commands", [])

    def _answer(self, command: dict, state: str, detail: str | None = None) -> None:
        try:
            self.cs.call(
                "POST",
                f"/v1/agents/{self.agent_id}/commands/{command['id']}",
                {"state": state, "detail": detail},
            )
        except ServerError as exc:
            log.warning("could not answer command %s: %s", command["id"], exc)

    def _group_tag(self, hold: dict) -> None:
        """Hold this VM's writes until the whole group holds, then tag and release."""
        replicator = self.replicator
        if replicator is None or not disk_filter.STATE.tracking:
            # Not replicating now (e.g. a resync is required): this VM has no point to give.
            self._answer(hold, "refused", "this VM's changes are not being tracked")
            return
        with contextlib.ExitStack() as stack:
            try:
                if hold["tag_kind"] == TAG_APP:
                    stack.enter_context(self.api.quiesce(timeout=15))
                stack.enter_context(disk_filter.STATE.hold_writes())
            except Exception as exc:  # cannot quiesce: the group's tag is aborted
                self._answer(hold, "refused", str(exc))
                return
            self._answer(hold, "held")
            deadline = time.monotonic() + GROUP_HOLD_SECONDS
            while time.monotonic() < deadline and not self.stop_event.is_set():
                for command in self._poll_commands(1):
                    if command.get("tag_id") != hold["tag_id"]:
                        continue
                    if command["kind"] == "commit":
                        try:
                            replicator.tag(
                                command["tag_kind"],
                                command["lab_time"],
                                command["tag_id"],
                                command["group"],
                            )
                        except RuntimeError as exc:  # tracking stopped meanwhile
                            log.warning("group tag %s not taken: %s", hold["tag_id"], exc)
                    return  # commit or abort: release the writes
            log.warning("group tag %s: no commit in time; writes released", hold["tag_id"])

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        attempt = 0
        while not self.stop_event.is_set():
            try:
                if self.agent_id is None:
                    self._register()
                self._heartbeat()
                attempt = 0
                wait = HEARTBEAT_SECONDS
            except ServerError as exc:
                self.last_error = str(exc)
                if exc.status == 401:  # registration was lost (e.g. the CS was rebuilt)
                    self.agent_id = None
                log.warning("configuration server: %s", exc)
                wait = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                attempt += 1
            except Exception:  # the agent must outlive any one bad answer
                log.exception("mobility agent loop failed; retrying")
                wait = RETRY_SECONDS[-1]
            self.wake.wait(wait)
            self.wake.clear()

    def _register(self) -> None:
        reply = self.cs.call("POST", "/v1/agents/register", self._identity(self.passphrase))
        self.agent_id = reply["agent_id"]
        self.cs.authorization = f"Agent {reply['token']}"
        log.info("registered with the configuration server as agent %s", self.agent_id)

    def _identity(self, passphrase: str | None = None) -> dict:
        body = {
            "vm_id": self.api.vm_id,
            "hostname": self.api.hostname,
            "os_family": self.api.os_family,
            "ip_addresses": self.api.ip_addresses,
            "agent_version": AGENT_VERSION,
            "disks": [
                {"index": i, "size": d.size} for i, d in sorted(disk_filter.STATE.disks.items())
            ],
        }
        if passphrase is not None:
            body["passphrase"] = passphrase
        return body

    def _heartbeat(self) -> None:
        body = self._identity()
        body["status"] = self.status()
        reply = self.cs.call("POST", f"/v1/agents/{self.agent_id}/heartbeat", body)
        self.cs.authorization = f"Agent {reply['token']}"
        self._apply(reply.get("replication"), reply["token"])

    def _apply(self, replication: dict | None, token: str) -> None:
        """Start, update or stop replication as the configuration server says."""
        if replication == self.replication:
            if self.replicator is not None:
                self.replicator.set_token(token)
            return
        if self.replicator is not None:
            self.replicator.stop()
            if not replication or replication.get("epoch") != self.replicator.epoch:
                self.replicator.discard()  # that pairing is over: its outbox is moot
            self.replicator = None
        self.replication = replication
        if replication:
            from .replicator import Replicator

            self.replicator = Replicator(self, replication, token).start()
        else:
            disk_filter.STATE.stop_tracking()

    def status(self) -> dict:
        status = {
            "filter_tracking": disk_filter.STATE.tracking,
            "previous_shutdown_clean": disk_filter.STATE.previous_shutdown_clean,
            "last_error": self.last_error,
        }
        if self.replicator is not None:
            status["replication"] = self.replicator.status()
        return status

    def stop(self, clean: bool) -> None:
        if self.replicator is not None:
            self.replicator.stop(final=clean)  # a clean shutdown sends its last changes
        self.stop_event.set()
        self.wake.set()
        self._thread.join(timeout=10)
        self.cs.close()


class DormantAgent:
    """The agent on a failed-over VM in Azure: the replication it served has ended (the VM
    runs from a recovery point), and nothing is replicated until the VM is re-protected.
    A test failover's VM, on an isolated network, must not reach on-premises at all."""

    def __init__(self, api):
        api.log.info(
            "mobility service: this machine runs in Azure (%s): idle until re-protected",
            api.network.get("vnet", "?"),
        )

    def stop(self, clean: bool) -> None:
        return None


def start(guest_api) -> MobilityAgent | DormantAgent:
    """Service entry point: the guest OS starts the agent at boot."""
    if guest_api.network:  # plugged into an Azure network: a failed-over (or test) VM
        return DormantAgent(guest_api)
    return MobilityAgent(guest_api).start()
