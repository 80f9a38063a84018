"""Multi-VM consistency: group tags that every VM of a replication group takes at one instant.

For each group (VMs enabled with the same multiVmGroupName under a policy with multi-VM sync
on), on the policy's crash-consistent and app-consistent frequencies (lab time), the
configuration server runs a two-phase barrier through the agents' command channel:

1. `hold`: each agent holds its VM's writes (and, for an app-consistent tag, first has the
   application quiesce), and says so;
2. once every member holds, `commit`: each agent puts the tag (same id, with the group id)
   into its journal and releases; if a member does not answer in time, `abort` releases the
   others and no tag is taken.

So the group's recovery points share a tag id, and no write of one VM that depends on another
VM's write can fall on the other side of the point.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

HOLD_TIMEOUT = 5.0  # wall seconds to gather every member's hold


@dataclass
class Command:
    agent_id: str
    body: dict
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    delivered: bool = False
    answer: dict | None = None
    answered: threading.Event = field(default_factory=threading.Event)


class AgentCommands:
    """Per-agent command queues, long-polled by the agents."""

    def __init__(self):
        self._cond = threading.Condition()
        self._commands: dict[str, Command] = {}

    def send(self, agent_id: str, body: dict) -> Command:
        command = Command(agent_id, body)
        with self._cond:
            if body.get("kind") == "heartbeat":
                # One pending "heartbeat now" is enough; an agent that is away gets one.
                for other in self._commands.values():
                    if (
                        other.agent_id == agent_id
                        and not other.delivered
                        and (other.body.get("kind") == "heartbeat")
                    ):
                        return other
            self._commands[command.id] = command
            self._cond.notify_all()
        return command

    def claim(self, agent_id: str, wait: float, stop: threading.Event) -> list[dict]:
        def ready():
            return stop.is_set() or any(
                c.agent_id == agent_id and not c.delivered for c in self._commands.values()
            )

        with self._cond:
            self._cond.wait_for(ready, timeout=wait)
            out = []
            for command in self._commands.values():
                if command.agent_id == agent_id and not command.delivered:
                    command.delivered = True
                    out.append({"id": command.id, **command.body})
            return out

    def answer(self, agent_id: str, command_id: str, body: dict) -> bool:
        with self._cond:
            command = self._commands.pop(command_id, None)
        if command is None or command.agent_id != agent_id:
            return False
        command.answer = body
        command.answered.set()
        return True

    def forget(self, command: Command) -> None:
        with self._cond:
            self._commands.pop(command.id, None)


class GroupCoordinator:
    def __init__(self, server):
        self.server = server
        self.commands = AgentCommands()
        self._last: dict[tuple[str, str], float] = {}
        self._counter = 0
        self.tags_taken = 0
        self.tags_aborted = 0

    def start(self) -> None:
        threading.Thread(target=self._loop, name="group-tags", daemon=True).start()

    def groups(self) -> dict[str, list[dict]]:
        """group name -> [{agent, policy}] of the VMs replicating with multi-VM sync."""
        out: dict[str, list[dict]] = {}
        for protection in self.server.store.protections():
            if protection["state"] != "Enabled":
                continue
            settings = protection["settings"]["agent"]
            group = settings.get("group")
            if not group or not settings["policy"].get("multi_vm_sync"):
                continue
            agent = self.server.store.agent(protection["vm_id"])
            if agent is not None:
                out.setdefault(group, []).append({"agent": agent, "policy": settings["policy"]})
        return out

    def _loop(self) -> None:
        stop = self.server.stop_event
        while not stop.wait(0.2):
            try:
                for group, members in self.groups().items():
                    self._maybe_tag(group, members)
            except Exception:  # the coordinator must outlive one bad round
                log.exception("group tag round failed")

    def _maybe_tag(self, group: str, members: list[dict]) -> None:
        now = self.server.clock.time()
        policy = members[0]["policy"]
        app_every = (policy.get("app_consistent_minutes") or 0) * 60
        crash_every = (policy.get("crash_consistent_minutes") or 5) * 60
        last_crash = self._last.setdefault((group, "crash"), now)
        last_app = self._last.setdefault((group, "app"), now)
        if app_every and now - last_app >= app_every:
            if self.barrier(group, members, "app-consistent"):
                self._last[(group, "app")] = self._last[(group, "crash")] = now
        elif now - last_crash >= crash_every and self.barrier(group, members, "crash-consistent"):
            self._last[(group, "crash")] = now

    def barrier(self, group: str, members: list[dict], kind: str) -> bool:
        """Hold every member, then tag them all with one id; True if the tag was taken."""
        self._counter += 1
        tag_id = f"g-{group}-{'ac' if kind == 'app-consistent' else 'cc'}-{self._counter}"
        lab_time = self.server.clock.time()
        held = []
        sent = [
            (
                m,
                self.commands.send(
                    m["agent"]["id"], {"kind": "hold", "tag_id": tag_id, "tag_kind": kind}
                ),
            )
            for m in members
        ]
        deadline = time.monotonic() + HOLD_TIMEOUT
        ok = True
        for member, command in sent:
            remaining = max(0.0, deadline - time.monotonic())
            if command.answered.wait(remaining) and command.answer.get("state") == "held":
                held.append(member)
            else:
                ok = False
                self.commands.forget(command)
        verb = "commit" if ok else "abort"
        for member in held:
            self.commands.send(
                member["agent"]["id"],
                {
                    "kind": verb,
                    "tag_id": tag_id,
                    "tag_kind": kind,
                    "group": group,
                    "lab_time": lab_time,
                },
            )
        if ok:
            self.tags_taken += 1
        else:
            self.tags_aborted += 1
            log.warning(
                "group %s: %s tag %s aborted (%d of %d members held)",
                group,
                kind,
                tag_id,
                len(held),
                len(members),
            )
        return ok
