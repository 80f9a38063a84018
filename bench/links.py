"""The link proxies with no toxics: do they carry the lab's traffic without becoming its
bottleneck? Prints figures; asserts nothing.

    .venv/bin/python -m bench links

1. The engine alone, in a process of its own, between a client and a sink in two more
   processes: 1 GiB of plain TCP and 512 MiB of TLS (the lab's traffic is TLS, passed through
   untouched), each direct (the baseline, same run) and through a link. The engine's CPU
   seconds per GB say what it costs at any rate.
2. A small lab (Entra, ARM, Azurite, the links service): azure-storage-blob uploads and
   downloads 64 MiB to Azurite directly (baseline) and through a link.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import ssl
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import yaml

from lab import launcher
from lab.kit.pki import LabPKI
from lab.topology import TOPOLOGY_DIR

from ._util import row

TCP_BYTES = 1 << 30
TLS_BYTES = 512 << 20
BLOB_BYTES = 64 << 20
BLOCK = 1 << 20


# -- 1. the engine alone ------------------------------------------------------------------------
def _server_context(pki_dir: str) -> ssl.SSLContext:
    pki = LabPKI(pki_dir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki.dir / "bench.pem"), str(pki.dir / "bench.key"))
    return ctx


def _sink(ports, pki_dir: str) -> None:
    """Reads the announced byte count, answers what it got; one plain, one TLS listener."""
    plain, tls = socket.socket(), socket.socket()
    for s in (plain, tls):
        s.bind(("127.0.0.1", 0))
        s.listen(8)
    ports.put((plain.getsockname()[1], tls.getsockname()[1]))
    context = _server_context(pki_dir)

    def serve(listener, wrap):
        while True:
            conn, _ = listener.accept()
            if wrap:
                conn = context.wrap_socket(conn, server_side=True)
            header = b""
            while len(header) < 8:
                header += conn.recv(8 - len(header))
            expected, n = int.from_bytes(header, "big"), 0
            while n < expected and (data := conn.recv(BLOCK)):
                n += len(data)
            conn.sendall(str(n).encode())
            conn.close()

    threading.Thread(target=serve, args=(plain, False), daemon=True).start()
    serve(tls, True)


def _engine(ports, upstreams) -> None:
    """The links engine as the service runs it: one asyncio loop thread, two links."""
    from fakes.links.engine import LinkService
    from fakes.links.models import Links, Proxy

    proxies, socks = [], {}
    for name, upstream in zip(("plain", "tls"), upstreams, strict=True):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        socks[name] = sock
        proxies.append(Proxy(name, "bench", "sink", sock.getsockname()[1], upstream))
    LinkService(Links(proxies), socks).start()
    ports.put(tuple(p.listen_port for p in proxies))
    while True:
        time.sleep(3600)


def _client(port: int, total: int, ca: str | None, result) -> None:
    conn = socket.create_connection(("127.0.0.1", port))
    if ca:
        conn = ssl.create_default_context(cafile=ca).wrap_socket(conn, server_hostname="127.0.0.1")
    block = b"\xa5" * BLOCK
    t0 = time.perf_counter()
    conn.sendall(total.to_bytes(8, "big"))
    for _ in range(total // BLOCK):
        conn.sendall(block)
    received = int(conn.recv(64))
    result.put((received, time.perf_counter() - t0))


def _transfer(port: int, total: int, ca: str | None) -> float:
    result = mp.Queue()
    client = mp.Process(target=_client, args=(port, total, ca, result))
    client.start()
    received, seconds = result.get(timeout=120)
    client.join()
    assert received == total, (received, total)
    return total / seconds / 1e6


def engine_alone(tmp: Path) -> None:
    pki = LabPKI(tmp / "pki")
    pki.ensure_ca()
    pki.service_cert("bench")
    queue = mp.Queue()
    sink = mp.Process(target=_sink, args=(queue, str(pki.dir)), daemon=True)
    sink.start()
    plain_up, tls_up = queue.get(timeout=30)
    engine = mp.Process(target=_engine, args=(queue, (plain_up, tls_up)), daemon=True)
    engine.start()
    plain_link, tls_link = queue.get(timeout=30)
    engine_ps = psutil.Process(engine.pid)
    try:
        print("  the engine alone (client, engine, sink: one process each), no toxics")
        for label, direct, linked, total, ca in (
            ("TCP", plain_up, plain_link, TCP_BYTES, None),
            ("TLS", tls_up, tls_link, TLS_BYTES, str(pki.ca_cert_path)),
        ):
            baseline = _transfer(direct, total, ca)
            cpu0 = sum(engine_ps.cpu_times()[:2])
            through = _transfer(linked, total, ca)
            cpu = sum(engine_ps.cpu_times()[:2]) - cpu0
            print(row(f"{label} direct (baseline)", f"{baseline:.0f} MB/s"))
            print(row(f"{label} through a link", f"{through:.0f} MB/s"))
            print(row(f"{label}: engine CPU per GB", f"{cpu / (total / 1e9):.2f} s"))
    finally:
        engine.terminate()
        sink.terminate()
        engine.join()
        sink.join()


# -- 2. a lab: azure-storage-blob to Azurite ----------------------------------------------------
def small_topology(directory: Path) -> Path:
    default = yaml.safe_load((TOPOLOGY_DIR / "default.yaml").read_text())
    data = {k: default[k] for k in ("name", "entra", "azure")}
    data["storage"] = {
        "accounts": [a for a in default["storage"]["accounts"] if a["role"] == "cache"]
    }
    data["links"] = {"proxies": [{"name": "bench-to-azure", "from": "bench", "to": "azurite"}]}
    path = directory / "bench-links.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _blob_rates(container, payload: bytes) -> tuple[float, float]:
    name = f"b-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    container.upload_blob(name, payload, max_concurrency=4)
    up = len(payload) / (time.perf_counter() - t0) / 1e6
    t0 = time.perf_counter()
    assert len(container.download_blob(name, max_concurrency=4).readall()) == len(payload)
    down = len(payload) / (time.perf_counter() - t0) / 1e6
    container.delete_blob(name)
    return up, down


def lab_blobs(tmp: Path) -> None:
    from azure.identity import ClientSecretCredential
    from azure.storage.blob import BlobServiceClient

    state = tmp / "state"
    lab = launcher.up(str(small_topology(tmp)), state)
    try:
        cred = lab["credentials"]["operator"]
        credential = ClientSecretCredential(
            lab["tenant_id"],
            cred["client_id"],
            cred["client_secret"],
            authority=lab["services"]["entra"]["url"],
            disable_instance_discovery=True,
            connection_verify=lab["ca_cert"],
        )
        port = lab["services"]["links"]["ports"]["bench-to-azure"]
        links_ps = psutil.Process(lab["services"]["links"]["pid"])
        payload = b"\x3c" * BLOB_BYTES
        print(f"  azure-storage-blob, {BLOB_BYTES >> 20} MiB, 4 connections, OAuth, to Azurite")
        for label, base in (
            ("direct (baseline)", lab["services"]["azurite"]["url"]),
            ("through a link", f"https://127.0.0.1:{port}"),
        ):
            service = BlobServiceClient(
                f"{base}/drlabcache", credential=credential, connection_verify=lab["ca_cert"]
            )
            container = service.get_container_client(f"bench-{uuid.uuid4().hex[:8]}")
            container.create_container()
            cpu0 = sum(links_ps.cpu_times()[:2])
            up, down = _blob_rates(container, payload)
            cpu = sum(links_ps.cpu_times()[:2]) - cpu0
            container.delete_container()
            print(row(f"upload {label}", f"{up:.0f} MB/s"))
            print(row(f"download {label}", f"{down:.0f} MB/s"))
            if "link" in label:
                moved = 2 * BLOB_BYTES / 1e9
                print(row("links service CPU per GB", f"{cpu / moved:.2f} s"))
    finally:
        launcher.down(state)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="drlab-bench-links-") as tmp:
        engine_alone(Path(tmp))
        lab_blobs(Path(tmp))


if __name__ == "__main__":
    main()
