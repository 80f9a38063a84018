"""The link proxies' HTTP API (Toxiproxy's) through Flask's test client, on a real engine."""

from __future__ import annotations

import socket

import pytest

from fakes.links.app import create_app
from fakes.links.engine import LinkService
from fakes.links.models import Links, Proxy


@pytest.fixture
def api():
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(8)
    socks, proxies = {}, []
    for name, to in (("agent-to-ps-01", "ps-01"), ("ps-01-to-azure", "azurite")):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        socks[name] = sock
        proxies.append(Proxy(name, "agent", to, sock.getsockname()[1], upstream.getsockname()[1]))
    service = LinkService(Links(proxies), socks).start()
    yield create_app(service).test_client()
    service.stop()
    upstream.close()


def test_get_proxies_is_toxiproxys_map(api):
    resp = api.get("/proxies")
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) == {"agent-to-ps-01", "ps-01-to-azure"}
    proxy = body["agent-to-ps-01"]
    assert set(proxy) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert proxy["listen"].startswith("127.0.0.1:") and proxy["enabled"] is True


def test_toxic_lifecycle(api):
    body = {"type": "latency", "attributes": {"latency": 50, "jitter": 5}}
    resp = api.post("/proxies/agent-to-ps-01/toxics", json=body)
    assert resp.status_code == 200
    assert resp.get_json()["name"] == "latency_downstream"
    assert api.get("/proxies/agent-to-ps-01/toxics").get_json()[0]["attributes"]["latency"] == 50
    resp = api.post(
        "/proxies/agent-to-ps-01/toxics/latency_downstream", json={"attributes": {"latency": 80}}
    )
    assert resp.get_json()["attributes"] == {"latency": 80, "jitter": 5}
    resp = api.patch("/proxies/agent-to-ps-01/toxics/latency_downstream", json={"toxicity": 0.5})
    assert resp.get_json()["toxicity"] == 0.5
    assert api.get("/proxies/agent-to-ps-01/toxics/latency_downstream").status_code == 200
    assert api.delete("/proxies/agent-to-ps-01/toxics/latency_downstream").status_code == 204
    assert api.get("/proxies/agent-to-ps-01/toxics").get_json() == []


@pytest.mark.parametrize(
    "method, path, body, status, error",
    [
        ("get", "/proxies/nope", None, 404, "proxy not found"),
        ("post", "/proxies/nope/toxics", {"type": "latency"}, 404, "proxy not found"),
        ("get", "/proxies/agent-to-ps-01/toxics/nope", None, 404, "toxic not found"),
        ("delete", "/proxies/agent-to-ps-01/toxics/nope", None, 404, "toxic not found"),
        ("post", "/proxies/agent-to-ps-01/toxics", {"type": "nope"}, 400, "invalid toxic type"),
        (
            "post",
            "/proxies/agent-to-ps-01/toxics",
            {"type": "latency", "stream": "both"},
            400,
            "stream was invalid, can be either upstream or downstream",
        ),
        ("post", "/proxies/agent-to-ps-01", {"enabled": "yes"}, 400, "bad request body"),
        ("post", "/proxies", {"name": "x", "upstream": "y"}, 501, "not implemented: ProxyCreate"),
        ("delete", "/proxies/agent-to-ps-01", None, 501, "not implemented: ProxyDelete"),
        ("post", "/populate", [], 501, "not implemented: Populate"),
        (
            "post",
            "/proxies/agent-to-ps-01",
            {"upstream": "127.0.0.1:1"},
            501,
            "not implemented: ProxyUpdate of upstream",
        ),
        ("get", "/nothing-here", None, 404, "not found"),
        ("put", "/proxies", None, 405, "method not allowed"),
    ],
)
def test_errors_have_toxiproxys_shape_and_change_nothing(api, method, path, body, status, error):
    before = api.get("/_lab/state").get_json()["proxies"]
    resp = getattr(api, method)(path, json=body) if body is not None else getattr(api, method)(path)
    assert resp.status_code == status
    payload = resp.get_json()
    assert payload["status"] == status
    assert payload["error"].startswith(error)
    assert api.get("/_lab/state").get_json()["proxies"] == before


def test_a_body_that_is_not_json_is_a_bad_request_body(api):
    resp = api.post("/proxies/agent-to-ps-01/toxics", data=b"{not json")
    assert resp.status_code == 400
    assert resp.get_json()["error"].startswith("bad request body")
    resp = api.post("/proxies/agent-to-ps-01", data=b"")
    assert resp.get_json() == {"error": "bad request body: EOF", "status": 400}


def test_a_duplicate_toxic_is_a_conflict(api):
    body = {"name": "slow", "type": "bandwidth", "attributes": {"rate": 10}}
    assert api.post("/proxies/agent-to-ps-01/toxics", json=body).status_code == 200
    resp = api.post("/proxies/agent-to-ps-01/toxics", json=body)
    assert resp.status_code == 409
    assert resp.get_json() == {"error": "toxic already exists", "status": 409}


def test_down_up_and_reset(api):
    resp = api.post("/proxies/agent-to-ps-01", json={"enabled": False})
    assert resp.status_code == 200 and resp.get_json()["enabled"] is False
    api.post("/proxies/ps-01-to-azure/toxics", json={"type": "timeout"})
    assert api.post("/reset").status_code == 204
    proxies = api.get("/proxies").get_json()
    assert all(p["enabled"] and p["toxics"] == [] for p in proxies.values())


def test_lab_reset_and_state(api):
    api.post("/proxies/agent-to-ps-01", json={"enabled": False})
    api.post("/proxies/agent-to-ps-01/toxics", json={"type": "latency"})
    state = api.get("/_lab/state").get_json()
    link = state["proxies"]["agent-to-ps-01"]
    assert link["enabled"] is False and link["toxics"][0]["type"] == "latency"
    assert link["from"] == "agent" and link["to"] == "ps-01"
    assert {"bytes_upstream", "bytes_downstream", "buffered_bytes"} <= set(link)
    assert state["limits"]["max_connections"] == 64
    assert api.post("/_lab/reset").status_code == 200
    link = api.get("/_lab/state").get_json()["proxies"]["agent-to-ps-01"]
    assert link["enabled"] is True and link["toxics"] == []


def test_fault_rules_answer_in_toxiproxys_shape(api):
    rule = {"operation": "ToxicCreate", "error": {"status": 503, "message": "busy"}}
    assert api.post("/_lab/faults", json=[rule]).status_code == 200
    resp = api.post("/proxies/agent-to-ps-01/toxics", json={"type": "latency"})
    assert resp.status_code == 503
    assert resp.get_json() == {"error": "busy", "status": 503}
    assert api.get("/proxies/agent-to-ps-01/toxics").get_json() == []


def test_version(api):
    assert "Toxiproxy API" in api.get("/version").get_json()["version"]
