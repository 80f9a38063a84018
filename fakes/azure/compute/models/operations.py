"""Long-running operations of Compute: a record per accepted request, polled by clients.

A VM's create, start, powerOff, deallocate, restart and delete are accepted (201/202) and
run in the background; the record moves InProgress -> Succeeded | Failed in one place
(`finish`) and is what the status URL answers, as Compute's
`/subscriptions/{sub}/providers/Microsoft.Compute/locations/{region}/operations/{id}` does:
`{name, status, startTime, endTime, error?}`. Records are in SQLite, so a poll reaches an
operation accepted before a restart of the ARM process; one still InProgress then is run
again from its recorded transition (every step is idempotent).
"""

from __future__ import annotations

import uuid

from ..errors import ArmError
from . import iso

IN_PROGRESS = "InProgress"
SUCCEEDED = "Succeeded"
FAILED = "Failed"


class Operations:
    def __init__(self, store, clock):
        self.store = store
        self.clock = clock

    def begin(self, action: str, resource_id: str, **details) -> dict:
        op = {
            "id": str(uuid.uuid4()),
            "action": action,
            "resourceId": resource_id,
            "status": IN_PROGRESS,
            "startTime": self.clock.time(),
            "endTime": None,
            "error": None,
            **details,
        }
        self.store.put_operation(op)
        return op

    def get(self, operation_id: str) -> dict | None:
        return self.store.get_operation(operation_id)

    def finish(self, op: dict, error: BaseException | None = None) -> dict:
        op = dict(op)
        op["endTime"] = self.clock.time()
        if error is None:
            op["status"] = SUCCEEDED
        else:
            op["status"] = FAILED
            op["errorStatus"] = getattr(error, "status", 500)
            if isinstance(error, ArmError):
                op["error"] = error.error_object()
            else:
                op["error"] = {
                    "code": "InternalExecutionError",
                    "message": f"An internal execution error occurred: {error}",
                }
        self.store.put_operation(op)
        return op

    def pending(self) -> list[dict]:
        return self.store.operations(IN_PROGRESS)

    def counts(self) -> dict:
        counts: dict[str, int] = {}
        for op in self.store.operations():
            counts[op["status"]] = counts.get(op["status"], 0) + 1
        return counts

    @staticmethod
    def status_body(op: dict) -> dict:
        body = {"name": op["id"], "status": op["status"], "startTime": iso(op["startTime"])}
        if op.get("endTime") is not None:
            body["endTime"] = iso(op["endTime"])
        if op.get("error"):
            body["error"] = op["error"]
        return body
