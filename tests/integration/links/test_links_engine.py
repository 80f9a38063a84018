"""The link engine in-process: real loopback sockets through a proxy to an echo server.

Durations are asserted as lower bounds only: a toxic that delays must delay at least what it
says (correctness); how fast the proxy is goes in bench/links.py.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time

import pytest

from fakes.links.engine import Limits, LinkService
from fakes.links.models import Links, Proxy
from tests.helpers import wait_for


class EchoServer:
    """Echoes every byte back; one thread per connection."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn):
        with contextlib.suppress(OSError), conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self):
        self.sock.close()
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.close()


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()


def start_links(echo, limits: Limits | None = None):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    proxy = Proxy("agent-to-ps-01", "agent", "ps-01", sock.getsockname()[1], echo.port)
    service = LinkService(Links([proxy]), {proxy.name: sock}, limits or Limits(), seed=1)
    return service.start(), proxy


@pytest.fixture
def link(echo):
    service, proxy = start_links(echo)
    yield service, proxy.listen_port
    service.stop()


def connect(port) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    return conn


def recv_exactly(conn, n) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def recv_until_closed(conn) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def turned_away(port) -> bool:
    """Reset (RST) at once: seen by connect itself or by the first read, as the race goes."""
    try:
        with connect(port) as conn:
            return recv_until_closed(conn) == b""
    except ConnectionResetError:
        return True


def nothing_arrives(conn, seconds) -> bool:
    readable, _, _ = select.select([conn], [], [], seconds)
    return not readable


def state(service):
    return service.state()["proxies"]["agent-to-ps-01"]


def test_bytes_pass_unchanged_and_are_counted(link):
    service, port = link
    payload = bytes(range(256)) * 1024
    with connect(port) as conn:
        threading.Thread(target=conn.sendall, args=(payload,), daemon=True).start()
        assert recv_exactly(conn, len(payload)) == payload
    wait_for(lambda: state(service)["connections_active"] == 0, 10, message="the connection to end")
    s = state(service)
    assert s["bytes_upstream"] == s["bytes_downstream"] == len(payload)
    assert s["connections_total"] == 1


def test_latency_adds_at_least_the_latency(link):
    service, port = link
    service.add_toxic("agent-to-ps-01", {"type": "latency", "attributes": {"latency": 150}})
    with connect(port) as conn:
        t0 = time.monotonic()
        conn.sendall(b"ping")
        assert recv_exactly(conn, 4) == b"ping"
        assert time.monotonic() - t0 >= 0.150


def test_upstream_latency_and_downstream_latency_add_up(link):
    service, port = link
    for stream in ("upstream", "downstream"):
        body = {"type": "latency", "stream": stream, "attributes": {"latency": 100}}
        service.add_toxic("agent-to-ps-01", body)
    with connect(port) as conn:
        t0 = time.monotonic()
        conn.sendall(b"ping")
        assert recv_exactly(conn, 4) == b"ping"
        assert time.monotonic() - t0 >= 0.200


def test_bandwidth_caps_the_throughput(link):
    service, port = link
    body = {"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 200}}
    service.add_toxic("agent-to-ps-01", body)
    payload = b"x" * 100_000  # at 200 KB/s: at least 0.5 s
    with connect(port) as conn:
        t0 = time.monotonic()
        threading.Thread(target=conn.sendall, args=(payload,), daemon=True).start()
        assert recv_exactly(conn, len(payload)) == payload
        assert time.monotonic() - t0 >= len(payload) / 200_000


def test_a_bandwidth_cap_is_shared_by_the_links_connections(link):
    service, port = link
    body = {"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 200}}
    service.add_toxic("agent-to-ps-01", body)
    payload = b"y" * 50_000
    conns = [connect(port) for _ in range(2)]
    t0 = time.monotonic()
    for conn in conns:
        threading.Thread(target=conn.sendall, args=(payload,), daemon=True).start()
    for conn in conns:
        assert recv_exactly(conn, len(payload)) == payload
    assert time.monotonic() - t0 >= 2 * len(payload) / 200_000  # 100 kB at 200 KB/s
    for conn in conns:
        conn.close()


def test_limit_data_closes_after_its_bytes(link):
    service, port = link
    service.add_toxic("agent-to-ps-01", {"type": "limit_data", "attributes": {"bytes": 10}})
    with connect(port) as conn:
        conn.sendall(b"0123456789abcdefghij")
        assert recv_until_closed(conn) == b"0123456789"
    wait_for(lambda: state(service)["connections_cut"] == 1, 10, message="the cut to be counted")


def test_a_link_down_closes_connections_and_refuses_new_ones_until_up(link):
    service, port = link
    with connect(port) as conn:
        conn.sendall(b"a")
        assert recv_exactly(conn, 1) == b"a"
        service.update_proxy("agent-to-ps-01", {"enabled": False})
        assert recv_until_closed(conn) == b""
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    assert service.proxy("agent-to-ps-01")["enabled"] is False
    service.update_proxy("agent-to-ps-01", {"enabled": True})
    with connect(port) as conn:  # the same port again
        conn.sendall(b"b")
        assert recv_exactly(conn, 1) == b"b"


def test_reset_peer_resets_open_connections(link):
    service, port = link
    with connect(port) as conn:
        conn.sendall(b"a")
        assert recv_exactly(conn, 1) == b"a"
        body = {"name": "rst", "type": "reset_peer", "attributes": {"timeout": 0}}
        service.add_toxic("agent-to-ps-01", body)
        service.remove_toxic("agent-to-ps-01", "rst")
        with pytest.raises(ConnectionResetError):
            conn.recv(1)
    with connect(port) as conn:  # removed: new connections work
        conn.sendall(b"c")
        assert recv_exactly(conn, 1) == b"c"


def test_timeout_zero_holds_data_until_removed_and_loses_nothing(link):
    service, port = link
    service.add_toxic("agent-to-ps-01", {"type": "timeout", "attributes": {"timeout": 0}})
    with connect(port) as conn:
        conn.sendall(b"held")
        assert nothing_arrives(conn, 0.3)
        service.remove_toxic("agent-to-ps-01", "timeout_downstream")
        assert recv_exactly(conn, 4) == b"held"


def test_timeout_closes_the_connection_after_its_timeout(link):
    service, port = link
    service.add_toxic("agent-to-ps-01", {"type": "timeout", "attributes": {"timeout": 200}})
    with connect(port) as conn:
        t0 = time.monotonic()
        conn.sendall(b"lost")
        assert recv_until_closed(conn) == b""
        assert time.monotonic() - t0 >= 0.200


def test_toxicity_zero_never_applies(link):
    service, port = link
    body = {"type": "limit_data", "toxicity": 0.0, "attributes": {"bytes": 1}}
    service.add_toxic("agent-to-ps-01", body)
    with connect(port) as conn:
        conn.sendall(b"whole")
        assert recv_exactly(conn, 5) == b"whole"


def test_the_slicer_keeps_the_stream_intact(link):
    service, port = link
    body = {"type": "slicer", "attributes": {"average_size": 64, "size_variation": 16, "delay": 10}}
    service.add_toxic("agent-to-ps-01", body)
    payload = bytes(range(256)) * 16
    with connect(port) as conn:
        conn.sendall(payload)
        assert recv_exactly(conn, len(payload)) == payload


def test_connections_over_the_cap_are_refused(echo):
    service, proxy = start_links(echo, Limits(max_connections=2))
    try:
        first, second = connect(proxy.listen_port), connect(proxy.listen_port)
        for conn in (first, second):
            conn.sendall(b"x")
            assert recv_exactly(conn, 1) == b"x"
        assert turned_away(proxy.listen_port)
        assert state(service)["refused_over_cap"] == 1
        first.close()
        second.close()
    finally:
        service.stop()


def test_buffering_is_bounded_while_data_is_held(echo):
    cap = 64 * 1024
    service, proxy = start_links(echo, Limits(max_buffer_bytes=cap))
    try:
        body = {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}
        service.add_toxic("agent-to-ps-01", body)
        conn = connect(proxy.listen_port)
        conn.setblocking(False)
        sent, chunk = 0, b"x" * 65536
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # fill until TCP pushes back on the sender
            try:
                sent += conn.send(chunk)
            except BlockingIOError:
                if not select.select([], [conn], [], 0.5)[1]:
                    break
        assert sent > cap  # the kernel's buffers hold the rest
        held = state(service)
        assert 0 < held["buffered_bytes"] <= cap
        assert held["bytes_upstream"] == 0
        conn.close()
    finally:
        service.stop()
