"""The tools channel's protocol (the VMware Tools analogue), free of sockets.

One JSON object per line each way. A request is {"id": n, "op": name, "args": {...}}; the
answer is {"id": n, "ok": true, "result": ...} or {"id": n, "ok": false, "error": {"kind",
"message"}} with a GuestError kind. File contents travel base64-encoded. An unknown op is
answered "not_implemented" with its name; a malformed request "bad_request"; neither changes
anything.

Operations (args -> result):
    status                                  -> dict (GuestOS.status)
    shutdown, reboot                        -> {"accepted": true}   (the OS acts after answering)
    disk_resized {index, size}              -> null
    start_program {user, password, path, arguments, env, cwd}  -> {"pid"}
    list_processes {user, password, pids}   -> [{name, pid, owner, cmd_line, start_time,
                                                 end_time, exit_code}]
    put_file {user, password, guest_path, data (base64), overwrite}  -> null
    get_file {user, password, guest_path}   -> {"data": base64}
    make_directory {user, password, guest_path, parents}  -> null
    quiesce_begin {timeout}                 -> {"token"}
    quiesce_end {token}                     -> {"expired": bool}
    check_app                               -> the application's check (app.CheckResult)

`ToolsServer.handle_line` is the guest side, `ToolsClient` the hypervisor side; each takes or
gives bytes, so tests wire them together in memory and `channel.py` puts them on a socket.
Not emulated: the rest of VMware Tools (guest info push, time sync, VIX, custom scripts) and
any authentication of the channel itself (it is a socket only the lab's user can open).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import logging
from collections.abc import Callable

from .errors import GuestError

log = logging.getLogger(__name__)

MAX_LINE = 96 * 2**20  # a 64 MiB file, base64-encoded, plus the envelope


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a message is a JSON object")
    return message


def _b64decode(text) -> bytes:
    if not isinstance(text, str):
        raise GuestError("bad_request", "file data must be base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise GuestError("bad_request", "file data is not valid base64") from None


def _arg(args: dict, name: str, kind, default=..., optional=False):
    value = args.get(name, default)
    if value is ...:
        raise GuestError("bad_request", f"missing argument {name!r}")
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise GuestError("bad_request", f"argument {name!r} has the wrong type")
    return value


class ToolsServer:
    """Dispatches requests to a guest (a GuestOS or anything with the same methods)."""

    def __init__(self, guest):
        self.guest = guest
        self._ops: dict[str, Callable[[dict], object]] = {
            "status": lambda a: self.guest.status(),
            "shutdown": lambda a: self._power("shutdown"),
            "reboot": lambda a: self._power("reboot"),
            "disk_resized": self._disk_resized,
            "start_program": self._start_program,
            "list_processes": self._list_processes,
            "put_file": self._put_file,
            "get_file": self._get_file,
            "make_directory": self._make_directory,
            "quiesce_begin": self._quiesce_begin,
            "quiesce_end": self._quiesce_end,
            "check_app": lambda a: self.guest.check_app(),
        }

    @property
    def operations(self) -> list[str]:
        return sorted(self._ops)

    def handle_line(self, line: bytes) -> bytes:
        try:
            request = decode(line)
        except ValueError as exc:
            return encode(_failure(None, GuestError("bad_request", f"not a request: {exc}")))
        return encode(self.handle(request))

    def handle(self, request: dict) -> dict:
        rid, op, args = request.get("id"), request.get("op"), request.get("args") or {}
        handler = self._ops.get(op) if isinstance(op, str) else None
        if handler is None:
            return _failure(rid, GuestError("not_implemented", f"operation not implemented: {op}"))
        if not isinstance(args, dict):
            return _failure(rid, GuestError("bad_request", "args must be an object"))
        try:
            return {"id": rid, "ok": True, "result": handler(args)}
        except GuestError as exc:
            return _failure(rid, exc)
        except Exception as exc:  # the guest's fault, not the caller's: say so, keep serving
            log.exception("tools: %s failed", op)
            return _failure(
                rid, GuestError("tools_unavailable", f"{op} failed in the guest: {exc}")
            )

    # -- operations ---------------------------------------------------------------------------
    def _power(self, action: str):
        self.guest.request_power(action)
        return {"accepted": True}

    def _disk_resized(self, a):
        self.guest.disk_resized(_arg(a, "index", int), _arg(a, "size", int))

    @staticmethod
    def _login(a) -> tuple:
        return _arg(a, "user", str), _arg(a, "password", str)

    def _start_program(self, a):
        env = a.get("env")
        if env is not None and not isinstance(env, dict | list):
            raise GuestError("bad_request", "argument 'env' has the wrong type")
        pid = self.guest.start_program(
            *self._login(a),
            _arg(a, "path", str),
            _arg(a, "arguments", str, ""),
            env,
            _arg(a, "cwd", str, None, optional=True),
        )
        return {"pid": pid}

    def _list_processes(self, a):
        pids = _arg(a, "pids", list, None, optional=True)
        if pids is not None and not all(isinstance(p, int) for p in pids):
            raise GuestError("bad_request", "pids must be integers")
        return self.guest.list_processes(*self._login(a), pids)

    def _put_file(self, a):
        data = _b64decode(a.get("data"))
        self.guest.put_file(
            *self._login(a), _arg(a, "guest_path", str), data, _arg(a, "overwrite", bool, False)
        )

    def _get_file(self, a):
        data = self.guest.get_file(*self._login(a), _arg(a, "guest_path", str))
        return {"data": base64.b64encode(data).decode()}

    def _make_directory(self, a):
        self.guest.make_directory(
            *self._login(a), _arg(a, "guest_path", str), _arg(a, "parents", bool, False)
        )

    def _quiesce_begin(self, a):
        timeout = _arg(a, "timeout", int | float, 10.0)
        return {"token": self.guest.quiesce_begin(float(timeout))}

    def _quiesce_end(self, a):
        return {"expired": self.guest.quiesce_end(_arg(a, "token", str))}


def _failure(rid, error: GuestError) -> dict:
    return {"id": rid, "ok": False, "error": error.to_dict()}


class ToolsClient:
    """The hypervisor's side: `transport(request_line) -> answer_line` does the I/O."""

    def __init__(self, transport: Callable[[bytes], bytes]):
        self.transport = transport
        self._ids = itertools.count(1)

    def call(self, op: str, **args):
        rid = next(self._ids)
        answer = self.transport(encode({"id": rid, "op": op, "args": args}))
        try:
            message = decode(answer)
        except ValueError as exc:
            raise GuestError("tools_unavailable", f"garbled answer from the guest: {exc}") from None
        if message.get("id") != rid:
            raise GuestError("tools_unavailable", "the guest answered another request")
        if not message.get("ok"):
            raise GuestError.from_dict(message.get("error") or {})
        return message.get("result")

    # -- typed helpers ------------------------------------------------------------------------
    def put_file(self, user, password, guest_path, data: bytes, overwrite: bool) -> None:
        self.call(
            "put_file",
            user=user,
            password=password,
            guest_path=guest_path,
            data=base64.b64encode(data).decode(),
            overwrite=overwrite,
        )

    def get_file(self, user, password, guest_path) -> bytes:
        result = self.call("get_file", user=user, password=password, guest_path=guest_path)
        return base64.b64decode(result["data"])
