"""Errors of the lab layer that users see as messages (the CLI prints them, no traceback)."""

from __future__ import annotations


class LabError(Exception):
    """A lab could not be started or stopped; the message is for the user."""


class ServiceFailed(LabError):
    def __init__(self, service: str, reason: str, log_tail: str):
        self.service, self.reason, self.log_tail = service, reason, log_tail
        super().__init__(f"service {service} {reason}\n--- last lines of its log ---\n{log_tail}")


class TopologyError(Exception):
    """A topology that does not parse or validate: names the file, the line and the field."""

    def __init__(self, file: str, line: int | None, field: str | None, message: str):
        self.file, self.line, self.field, self.message = file, line, field, message
        where = f"{file}:{line}" if line else file
        what = f" field '{field}':" if field else ""
        super().__init__(f"{where}:{what} {message}")


class AsrError(LabError):
    """Something a user asked of the vault that it cannot do; the message says why."""
