"""The guest's errors: one class, `GuestError`, whose `kind` says what went wrong.

The hypervisor maps each kind to its own fault (vSphere: InvalidGuestLogin, FileNotFound,
FileAlreadyExists, InvalidPowerState, ToolsUnavailable, InvalidArgument ...). A message is safe
to show a user: it never carries a password.
"""

from __future__ import annotations

KINDS = frozenset(
    {
        "invalid_login",  # guest credentials do not match an account of the guest OS
        "file_not_found",  # a guest path (file, directory, program) does not exist
        "file_exists",  # put_file without overwrite onto an existing file
        "not_running",  # the guest is not powered on
        "program_not_found",  # start_program: no such program in the guest
        "tools_unavailable",  # the process runs but its tools channel does not answer
        "bad_request",  # malformed or out-of-range arguments; nothing changed
        "timeout",  # a shutdown or reboot did not finish within its deadline
        "not_supported",  # e.g. quiesce on a workload that cannot be quiesced
        "not_implemented",  # a tools operation this guest does not emulate (named)
    }
)


class GuestError(Exception):
    def __init__(self, kind: str, message: str):
        if kind not in KINDS:
            raise ValueError(f"unknown guest error kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict) -> GuestError:
        kind = data.get("kind")
        return cls(kind if kind in KINDS else "bad_request", str(data.get("message", "")))

    def __repr__(self) -> str:
        return f"GuestError({self.kind!r}, {self.message!r})"
