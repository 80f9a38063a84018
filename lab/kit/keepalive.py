"""HTTP/1.1 keep-alive for the lab's HTTPS services (Werkzeug's threaded server).

Werkzeug 3.1's development server sends `Connection: close` on every response, so each call
from pyvmomi or an Azure SDK (which pool connections, as they do against the real services)
paid a new TCP connection and TLS handshake: about 14 ms here, several times the cost of the
call. This handler keeps a connection open whenever that is safe: HTTP/1.1, a request body of
known length that is drained before the next request is read (or no body), and no
`Connection: close` from the client. Measured with pyvmomi: 14 ms -> 1.1 ms per call; cheroot
(a keep-alive server) measured 15 % slower per call here, because it hands each request from
its selector thread to a worker.
"""

from __future__ import annotations

import logging
import socket

from werkzeug.serving import WSGIRequestHandler

log = logging.getLogger(__name__)

MAX_DRAIN = 1 << 20  # an unread body up to this size is skipped; a longer one closes


class _BodyReader:
    """The request stream limited to this request's body, counting what was read of it.

    Werkzeug drains "whatever is left on the socket" after each response (it assumes the
    connection closes); limited to the body, that drain cannot swallow the next request.
    """

    def __init__(self, raw, length: int | None):
        self.raw = raw
        self.length = length  # None: unknown (chunked): no limit, the connection closes after
        self.count = 0

    def _cap(self, size: int) -> int:
        if self.length is None:
            return size
        left = self.length - self.count
        return left if size is None or size < 0 else min(size, left)

    def read(self, size=-1):
        size = self._cap(size)
        if size == 0:
            return b""
        data = self.raw.read(size)
        self.count += len(data)
        return data

    def read1(self, size=-1):
        size = self._cap(size)
        if size == 0:
            return b""
        data = self.raw.read1(size)
        self.count += len(data)
        return data

    def readline(self, size=-1):
        size = self._cap(size)
        if size == 0:
            return b""
        data = self.raw.readline(size)
        self.count += len(data)
        return data

    def readinto(self, buffer):
        size = self._cap(len(buffer))
        if size == 0:
            return 0
        n = self.raw.readinto(memoryview(buffer)[:size]) or 0
        self.count += n
        return n

    readinto1 = readinto

    def __getattr__(self, name):
        return getattr(self.raw, name)


class KeepAliveHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffered writes: the status line, headers and body leave in one TLS record and one
    # send (Werkzeug flushes after each body write).
    wbufsize = 1 << 16
    _reusable = False

    def setup(self):
        super().setup()
        # Headers and body go out as separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold the body back 40 ms on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        length_header = self.headers.get("Content-Length")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        try:
            length = int(length_header) if length_header is not None else 0
        except ValueError:
            length, chunked = 0, True  # unparseable: do not reuse the connection
        self._reusable = (
            self.request_version == "HTTP/1.1"
            and not chunked
            and self.headers.get("Connection", "").lower() != "close"
        )
        raw = self.rfile
        body = _BodyReader(raw, None if chunked else length)
        self.rfile = body
        try:
            super().run_wsgi()
        finally:
            self.rfile = raw
        if self._reusable and not self.close_connection:
            left = length - body.count
            if 0 < left <= MAX_DRAIN:
                raw.read(left)
            elif left > MAX_DRAIN:
                self.close_connection = True

    def send_header(self, keyword, value):
        if keyword.lower() == "connection" and value.lower() == "close" and self._reusable:
            return  # HTTP/1.1: the connection stays open unless a side says otherwise
        super().send_header(keyword, value)

    def log_request(self, code="-", size="-"):  # the app logs requests, with the request id
        pass

    def log_error(self, format, *args):
        log.debug("http: " + format, *args)
