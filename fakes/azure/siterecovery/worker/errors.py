"""Errors of the worker's lab routes, one class per code, the HTTP status on the class."""

from __future__ import annotations


class WorkerError(Exception):
    status = 500
    code = "InternalError"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(WorkerError):
    status = 400
    code = "BadRequest"


class VmNotFound(WorkerError):
    status = 404
    code = "VmNotFound"


class RecoveryPointNotFound(WorkerError):
    status = 404
    code = "RecoveryPointNotFound"


class NotReady(WorkerError):
    status = 503
    code = "NotReady"


class InjectedFault(Exception):
    """A fault rule fired on one of the worker's own steps (apply, snapshot, ...)."""

    def __init__(self, operation: str, code: str, message: str, status: int = 500):
        super().__init__(f"injected fault on {operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}
