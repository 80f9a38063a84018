"""The tools channel on a Unix domain socket: the guest serves it, the hypervisor connects.

The socket is `<run_dir>/tools.sock`, readable by the owner only. A Unix socket path must be
short (108 bytes on Linux); when run_dir is too deep (pytest's temporary directories can be),
the socket goes into `$XDG_RUNTIME_DIR` or `/tmp/drlab-<uid>/`, named by a hash of run_dir, so
both sides compute the same path without asking anyone. One request per connection keeps the
client simple and survives guest reboots.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path

from .errors import GuestError
from .tools import MAX_LINE

log = logging.getLogger(__name__)

SOCKET_NAME = "tools.sock"
MAX_PATH = 100


def socket_path(run_dir: str | os.PathLike) -> str:
    run_dir = os.path.abspath(run_dir)
    return short_socket_path(os.path.join(run_dir, SOCKET_NAME), "guest", run_dir)


def short_socket_path(path: str, prefix: str, key: str) -> str:
    """`path` if it is short enough for a Unix socket, else `<prefix>-<hash of key>.sock` in
    `$XDG_RUNTIME_DIR` or `/tmp/drlab-<uid>/` (both sides compute the same name)."""
    if len(path.encode()) <= MAX_PATH:
        return path
    name = f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and len(os.path.join(runtime, name).encode()) <= MAX_PATH:
        return os.path.join(runtime, name)
    return os.path.join(f"/tmp/drlab-{os.getuid()}", name)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            return
        self.wfile.write(self.server.handle_line(line))  # type: ignore[attr-defined]


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False


class ToolsSocketServer:
    """Serves `handle_line` on the run_dir's socket in a thread."""

    def __init__(self, run_dir: str | os.PathLike, handle_line: Callable[[bytes], bytes]):
        self.path = socket_path(run_dir)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.unlink(self.path)  # left behind by a guest that was powered off hard
        except FileNotFoundError:
            pass
        old = os.umask(0o177)
        try:
            self._server = _Server(self.path, _Handler)
        finally:
            os.umask(old)
        self._server.handle_line = handle_line  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        log.info("tools channel on %s", self.path)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def unix_transport(run_dir: str | os.PathLike, timeout: float = 30.0) -> Callable[[bytes], bytes]:
    """A transport for ToolsClient: one connection per request.

    Raises GuestError "tools_unavailable" when nothing answers (the caller tells that apart
    from "not_running" by looking at the process).
    """
    path = socket_path(run_dir)

    def transport(line: bytes) -> bytes:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(path)
                sock.sendall(line)
                sock.shutdown(socket.SHUT_WR)
                chunks = []
                while True:
                    chunk = sock.recv(1 << 20)
                    if not chunk:
                        break
                    chunks.append(chunk)
        except (FileNotFoundError, ConnectionRefusedError):
            raise GuestError("tools_unavailable", "the guest's tools are not running") from None
        except (TimeoutError, OSError) as exc:
            raise GuestError(
                "tools_unavailable", f"the guest's tools did not answer: {exc}"
            ) from None
        answer = b"".join(chunks)
        if not answer:
            raise GuestError("tools_unavailable", "the guest closed the tools channel")
        return answer

    return transport
