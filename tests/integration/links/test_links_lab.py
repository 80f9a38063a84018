"""The link proxies in a real default lab: HTTPS to the process server and azure-storage-blob to
Azurite through their links, with the links taken down, slowed, capped, cut and reset, over
the HTTP API and `drlab link`.

One lab for the module (it takes the links to itself: no other test shares it); every test
starts from `POST /reset`. Durations are lower bounds only: a fault must cost at least what
it injects.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid

import pytest
import requests
from azure.core.exceptions import ServiceRequestError
from azure.storage.blob import BlobServiceClient
from click.testing import CliRunner

from lab import launcher
from lab.cli import main as drlab
from lab.kit import links
from tests.conftest import LabHandle
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("links-lab")
    try:
        yield LabHandle(state_dir, launcher.up("default", state_dir))
    finally:
        with contextlib.suppress(launcher.LabError):
            launcher.down(state_dir)


@pytest.fixture(autouse=True)
def clean_links(lab):
    api(lab, "POST", "/reset")
    yield
    api(lab, "POST", "/reset")


def api(lab, method, path, body=None):
    resp = requests.request(method, lab.url("links") + path, json=body, verify=lab.ca, timeout=30)
    assert resp.status_code < 400, resp.text
    return resp.json() if resp.content else None


def link_state(lab, name):
    return api(lab, "GET", "/_lab/state")["proxies"][name]


def ps_health(lab, session=None, timeout=10):
    url = links.link_url(lab.info, "agent-to-ps-01") + "/_lab/health"
    resp = (session or requests).get(url, verify=lab.ca, timeout=timeout)
    resp.raise_for_status()
    return resp.json()


def blob_service(lab):
    cache = links.route(lab.info, "ps-01", "azurite")
    return BlobServiceClient(
        f"{cache}/drlabcache",
        credential=lab.credential("operator"),
        connection_verify=lab.ca,
        retry_total=0,
        connection_timeout=5,
    )


def drlab_link(lab, *args):
    result = CliRunner().invoke(drlab, ["link", *args, "--state-dir", str(lab.state_dir)])
    assert result.exit_code == 0, result.output
    return result.output


def test_each_link_has_a_port_in_lab_json_and_a_route(lab):
    ports = lab.info["services"]["links"]["ports"]
    assert set(ports) == {"agent-to-ps-01", "ps-01-to-azure", "vpn"}
    assert links.link_for(lab.info, "agent", "ps-01") == "agent-to-ps-01"
    assert links.route(lab.info, "agent", "ps-01") == f"https://127.0.0.1:{ports['agent-to-ps-01']}"
    assert lab.env["DRLAB_LINKS_URL"] == lab.url("links")
    upstreams = {n: p["upstream"] for n, p in api(lab, "GET", "/proxies").items()}
    assert upstreams["ps-01-to-azure"] == f"127.0.0.1:{lab.info['services']['azurite']['port']}"
    assert upstreams["vpn"] == f"127.0.0.1:{lab.info['services']['mt-01']['port']}"


def test_https_and_blobs_cross_their_links(lab):
    assert ps_health(lab)["service"] == "ps-01"  # TLS to ps-01, its certificate checked
    container = blob_service(lab).create_container(f"links-{uuid.uuid4().hex[:8]}")
    try:
        payload = uuid.uuid4().bytes * 4096
        container.upload_blob("log", payload)
        assert container.download_blob("log").readall() == payload
    finally:
        container.delete_container()
    state = link_state(lab, "ps-01-to-azure")
    assert state["bytes_upstream"] >= len(payload) and state["bytes_downstream"] >= len(payload)


def test_a_link_down_fails_requests_and_up_again_recovers(lab):
    session = requests.Session()
    ps_health(lab, session)  # a kept-alive connection through the link
    api(lab, "POST", "/proxies/agent-to-ps-01", {"enabled": False})
    with pytest.raises(requests.ConnectionError):
        ps_health(lab, session)
    with pytest.raises(requests.ConnectionError):
        ps_health(lab)
    with pytest.raises(ServiceRequestError):
        api(lab, "POST", "/proxies/ps-01-to-azure", {"enabled": False})
        blob_service(lab).get_service_properties()
    api(lab, "POST", "/proxies/agent-to-ps-01", {"enabled": True})
    api(lab, "POST", "/proxies/ps-01-to-azure", {"enabled": True})
    assert ps_health(lab, session)["service"] == "ps-01"
    blob_service(lab).get_service_properties()


def test_latency_adds_at_least_the_latency_each_way(lab):
    session = requests.Session()
    ps_health(lab, session)
    drlab_link(lab, "latency", "agent-to-ps-01", "150")  # both streams
    t0 = time.monotonic()
    ps_health(lab, session)  # the request goes up and the answer comes down: 2 x 150 ms
    assert time.monotonic() - t0 >= 0.300


def test_bandwidth_caps_a_blob_upload(lab):
    container = blob_service(lab).create_container(f"links-{uuid.uuid4().hex[:8]}")
    try:
        drlab_link(lab, "bandwidth", "ps-01-to-azure", "1000", "--stream", "upstream")
        payload = b"\x5a" * 1_000_000
        t0 = time.monotonic()
        container.upload_blob("capped", payload)
        assert time.monotonic() - t0 >= len(payload) / 1_000_000  # 1000 KB/s
    finally:
        api(lab, "POST", "/reset")
        container.delete_container()


def test_limit_data_cuts_the_connection_after_its_bytes(lab):
    body = {"type": "limit_data", "attributes": {"bytes": 100}}
    api(lab, "POST", "/proxies/agent-to-ps-01/toxics", body)
    before = link_state(lab, "agent-to-ps-01")
    with pytest.raises(requests.ConnectionError):  # TLS needs more than 100 bytes back
        ps_health(lab)
    wait_for(
        lambda: link_state(lab, "agent-to-ps-01")["connections_active"] == 0,
        10,
        message="the cut connection to end",
    )
    after = link_state(lab, "agent-to-ps-01")
    assert after["bytes_downstream"] - before["bytes_downstream"] == 100
    assert after["connections_cut"] == before["connections_cut"] + 1


def test_drlab_link_reset_resets_open_connections_only(lab):
    port = lab.info["services"]["links"]["ports"]["agent-to-ps-01"]
    # Plain TCP, no TLS on top: Python's ssl reports a reset as a (ragged) EOF.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        wait_for(
            lambda: link_state(lab, "agent-to-ps-01")["connections_active"] == 1,
            10,
            message="the connection through the link",
        )
        assert "reset" in drlab_link(lab, "reset", "agent-to-ps-01")
        with pytest.raises(ConnectionResetError):
            conn.recv(1)
    assert ps_health(lab)["service"] == "ps-01"  # new connections work
    assert link_state(lab, "agent-to-ps-01")["toxics"] == []


def test_drlab_link_commands(lab):
    listed = json.loads(drlab_link(lab, "list", "--json"))
    assert listed["vpn"]["to"] == "mt-01" and listed["vpn"]["enabled"] is True

    assert "down" in drlab_link(lab, "down", "vpn")
    assert link_state(lab, "vpn")["enabled"] is False
    drlab_link(lab, "up", "vpn")
    assert link_state(lab, "vpn")["enabled"] is True

    drlab_link(lab, "latency", "vpn", "40", "--jitter", "5")
    drlab_link(lab, "latency", "vpn", "50")  # again: updated (jitter 0 now), not a conflict
    drlab_link(lab, "bandwidth", "vpn", "800", "--stream", "downstream")
    drlab_link(lab, "timeout", "vpn", "0", "--stream", "upstream")
    toxics = {t["name"]: t for t in link_state(lab, "vpn")["toxics"]}
    assert toxics["latency_upstream"]["attributes"] == {"latency": 50, "jitter": 0}
    assert toxics["bandwidth_downstream"]["attributes"] == {"rate": 800}
    assert set(toxics) == {
        "latency_upstream",
        "latency_downstream",
        "bandwidth_downstream",
        "timeout_upstream",
    }
    table = drlab_link(lab, "list")
    assert "vpn" in table and "latency 50 ms" in table

    drlab_link(lab, "clear", "vpn")
    assert link_state(lab, "vpn")["toxics"] == []

    drlab_link(lab, "down", "agent-to-ps-01")
    drlab_link(lab, "clear", "--all")
    assert all(p["enabled"] for p in json.loads(drlab_link(lab, "list", "--json")).values())

    missing = CliRunner().invoke(drlab, ["link", "down", "nope", "--state-dir", str(lab.state_dir)])
    assert missing.exit_code == 1
    assert "no link named 'nope'" in missing.output


def test_timeout_holds_then_closes(lab):
    session = requests.Session()
    ps_health(lab, session)
    t0 = time.monotonic()  # the connection is closed 300 ms after the toxic applies to it
    drlab_link(lab, "timeout", "agent-to-ps-01", "300")
    with pytest.raises(requests.ConnectionError):
        ps_health(lab, session)
    assert time.monotonic() - t0 >= 0.300


def test_a_restarted_links_service_keeps_its_ports_and_starts_clean(lab):
    ports = dict(lab.info["services"]["links"]["ports"])
    api(lab, "POST", "/proxies/agent-to-ps-01", {"enabled": False})
    launcher.restart_service(lab.state_dir, "links", kill=True)
    lab.reload()
    assert lab.info["services"]["links"]["ports"] == ports
    assert all(p["enabled"] and not p["toxics"] for p in api(lab, "GET", "/proxies").values())
    assert ps_health(lab)["service"] == "ps-01"
