"""Work items: what only the on-premises side can do, queued for a fabric's configuration server.

A job's provider tasks become one work item (kind, payload, the tasks it covers). The
configuration server long-polls for them (`claim`), reports progress and the outcome per task
(`JobEngine.report`), and the job's tasks show it. States:

    Queued -> Delivered -> InProgress -> Succeeded | Failed
       \\________________________________/-> Cancelled (its job was cancelled or failed)

A delivered item whose configuration server goes quiet for `LEASE_SECONDS` (wall time: it is
about a process being alive) is delivered again, so a restarted configuration server picks up
what it had not finished. Items without a job are notifications (e.g. a purge): nothing waits
for them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time

from ..errors import InvalidInput
from ..store import Store
from .common import compact, iso, new_id

QUEUED, DELIVERED, IN_PROGRESS = "Queued", "Delivered", "InProgress"
SUCCEEDED, FAILED, CANCELLED = "Succeeded", "Failed", "Cancelled"
OPEN = (QUEUED, DELIVERED, IN_PROGRESS)
LEASE_SECONDS = 120.0
MAX_WAIT_SECONDS = 60.0
REPORT_STATES = (IN_PROGRESS, SUCCEEDED, FAILED)

KINDS = (
    "AddVCenter",
    "EnableProtection",
    "DisableProtection",
    "PurgeProtection",
    "ShutdownVm",
    "ResyncProtection",
)


def validate_report(update) -> tuple[str, str | None]:
    """The report's state and task name, or InvalidInput."""
    if not isinstance(update, dict):
        raise InvalidInput("A work item report is a JSON object.")
    state = update.get("state")
    if state not in REPORT_STATES:
        raise InvalidInput(f"'state' must be one of {', '.join(REPORT_STATES)}.")
    task = update.get("task")
    if task is not None and not isinstance(task, str):
        raise InvalidInput("'task' must be a task name.")
    progress = update.get("progress")
    if progress is not None and (
        not isinstance(progress, int | float)
        or isinstance(progress, bool)
        or not 0 <= progress <= 100
    ):
        raise InvalidInput("'progress' must be a number from 0 to 100.")
    error = update.get("error")
    if error is not None and (not isinstance(error, dict) or "message" not in error):
        raise InvalidInput("'error' must be an object with at least 'code' and 'message'.")
    if state == FAILED and error is None:
        raise InvalidInput("A Failed report needs an 'error' {code, message}.")
    result = update.get("result")
    if result is not None and not isinstance(result, dict):
        raise InvalidInput("'result' must be an object.")
    return state, task


class WorkItems:
    def __init__(self, store: Store, clock, wall=time.time):
        self.store = store
        self.clock = clock
        self._wall = wall
        self._cond = threading.Condition()

    # -- queueing -----------------------------------------------------------------------------
    def enqueue(
        self,
        db: sqlite3.Connection,
        *,
        fabric: str,
        kind: str,
        payload: dict,
        job: str | None = None,
        tasks: list[dict] | None = None,
    ) -> dict:
        if kind not in KINDS:
            raise ValueError(f"unknown work item kind {kind}")
        item = {
            "id": new_id(),
            "fabric": fabric,
            "kind": kind,
            "state": QUEUED,
            "job": job,
            "tasks": tasks or [],
            "payload": payload,
            "created": self.clock.time(),
            "updated": self.clock.time(),
            "deliveredAtWall": None,
            "lastReportAtWall": None,
            "deliveries": 0,
            "reports": [],
            "result": None,
        }
        item["seq"] = self.store.next_seq(db, "work_items")
        self.save(db, item)
        self.store.after_commit(self.notify)
        return item

    def save(self, db: sqlite3.Connection, item: dict) -> None:
        self.store.put(
            db,
            "work_items",
            (item["id"],),
            item,
            fabric=item["fabric"],
            state=item["state"],
            seq=item["seq"],
        )

    def cancel(self, db: sqlite3.Connection, item_id: str) -> None:
        item = self.store.get("work_items", item_id)
        if item is not None and item["state"] in OPEN:
            item["state"] = CANCELLED
            item["updated"] = self.clock.time()
            self.save(db, item)

    def notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- the configuration server's side ------------------------------------------------------
    def claim(
        self, fabric: str, wait_seconds: float, stop: threading.Event | None = None
    ) -> list[dict]:
        """Deliver the fabric's queued (or lease-expired) items, waiting up to `wait_seconds`
        for one to appear."""
        deadline = self._wall() + max(0.0, min(wait_seconds, MAX_WAIT_SECONDS))
        while True:
            items = self._take(fabric)
            if items or self._wall() >= deadline or (stop is not None and stop.is_set()):
                return items
            with self._cond:
                # Short slices: items queued by another process (the worker) have no notify.
                self._cond.wait(min(0.25, max(0.0, deadline - self._wall())))

    def _take(self, fabric: str) -> list[dict]:
        now = self._wall()
        with self.store.transaction() as db:
            rows = self.store.select(
                "work_items", "fabric = ? AND state IN (?, ?, ?)", (fabric, *OPEN), "seq"
            )
            taken = []
            for row in rows:
                item = json.loads(row["doc"])
                last = max(item.get("deliveredAtWall") or 0, item.get("lastReportAtWall") or 0)
                if item["state"] != QUEUED and now - last < LEASE_SECONDS:
                    continue
                item["state"] = DELIVERED if item["state"] == QUEUED else item["state"]
                item["deliveredAtWall"] = now
                item["deliveries"] += 1
                self.save(db, item)
                taken.append(item)
            return taken

    def record_report(self, db, item: dict, update: dict, state: str, task: str | None) -> None:
        if task is not None and not any(
            task.lower() in (t["name"].lower(), t["friendlyName"].lower()) for t in item["tasks"]
        ):
            names = ", ".join(t["friendlyName"] for t in item["tasks"]) or "none"
            raise InvalidInput(f"The work item has no task '{task}' (its tasks: {names}).")
        item["lastReportAtWall"] = self._wall()
        item["updated"] = self.clock.time()
        item["reports"].append(compact({**update, "at": iso(self.clock.time())}))
        item["reports"] = item["reports"][-50:]
        if task is None:
            item["state"] = state
            if state in (SUCCEEDED, FAILED):
                item["result"] = update.get("result") or update.get("error")
        elif item["state"] == DELIVERED:
            item["state"] = IN_PROGRESS

    def get(self, item_id: str) -> dict | None:
        return self.store.get("work_items", item_id)


def task_name_of(item: dict, given: str | None) -> str | None:
    """The job task name a report means (it may name the task or its friendly name)."""
    if given is None:
        return None
    for t in item["tasks"]:
        if given.lower() in (t["name"].lower(), t["friendlyName"].lower()):
            return t["name"]
    return None


def work_item_json(item: dict) -> dict:
    return compact(
        {
            "id": item["id"],
            "kind": item["kind"],
            "state": item["state"],
            "jobName": item.get("job"),
            "tasks": item["tasks"],
            "createdAt": iso(item["created"]),
            "updatedAt": iso(item["updated"]),
            "deliveries": item["deliveries"],
            "payload": item["payload"],
        }
    )
