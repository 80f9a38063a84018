"""Link proxies and toxics as data: Toxiproxy's defaults, checks and errors, no sockets."""

import pytest

from fakes.links import errors
from fakes.links.models import Links, Proxy, Toxic, parse_toxic, updated_toxic


def make_proxy(**kwargs) -> Proxy:
    return Proxy("agent-to-ps-01", "agent", "ps-01", 40001, 40002, **kwargs)


def test_a_toxic_gets_toxiproxys_defaults():
    toxic = parse_toxic({"type": "latency", "attributes": {"latency": 100}})
    assert toxic.to_json() == {
        "attributes": {"latency": 100, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    }


def test_the_default_name_follows_the_stream():
    toxic = parse_toxic({"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 5}})
    assert toxic.name == "bandwidth_upstream"


@pytest.mark.parametrize(
    "body, error, message",
    [
        ({"type": "latency", "stream": "sideways"}, errors.InvalidStream, "stream was invalid"),
        ({"type": "packet_loss"}, errors.InvalidToxicType, "invalid toxic type"),
        ({"attributes": {"latency": 1}}, errors.InvalidToxicType, "invalid toxic type"),
        ({"type": "latency", "toxicity": 1.5}, errors.BadRequestBody, "between 0 and 1"),
        ({"type": "latency", "toxicity": "all"}, errors.BadRequestBody, "toxicity must be"),
        ({"type": "latency", "attributes": {"latncy": 1}}, errors.BadRequestBody, "latncy"),
        ({"type": "latency", "attributes": {"latency": -1}}, errors.BadRequestBody, "latency"),
        ({"type": "latency", "attributes": {"latency": 1.5}}, errors.BadRequestBody, "integer"),
        ({"type": "latency", "attributes": [1]}, errors.BadRequestBody, "JSON object"),
        (
            {"type": "slicer", "attributes": {"average_size": 10, "size_variation": 10}},
            errors.BadRequestBody,
            "size_variation",
        ),
        ([1, 2], errors.BadRequestBody, "JSON object"),
    ],
)
def test_bad_toxics_are_refused_with_toxiproxys_errors(body, error, message):
    with pytest.raises(error) as info:
        parse_toxic(body)
    assert message in info.value.text
    assert info.value.body() == {"error": info.value.text, "status": error.status}


def test_a_toxic_name_is_unique_per_proxy_and_nothing_changes_on_conflict():
    proxy = make_proxy()
    proxy.add_toxic({"type": "latency", "attributes": {"latency": 10}})
    with pytest.raises(errors.ToxicAlreadyExists) as info:
        proxy.add_toxic({"type": "latency", "attributes": {"latency": 99}})
    assert info.value.status == 409
    assert [t["latency"] for t in proxy.toxics] == [10]


def test_updating_a_toxic_merges_attributes_and_keeps_its_identity():
    toxic = parse_toxic({"type": "latency", "attributes": {"latency": 100, "jitter": 5}})
    updated = updated_toxic(toxic, {"attributes": {"latency": 200}})
    assert updated.attributes == {"latency": 200, "jitter": 5}
    assert updated.uid == toxic.uid  # connections keep their toxicity draw
    redrawn = updated_toxic(toxic, {"toxicity": 0.5})
    assert redrawn.toxicity == 0.5 and redrawn.uid != toxic.uid


def test_unknown_toxics_and_proxies_are_not_found():
    proxy = make_proxy()
    with pytest.raises(errors.ToxicNotFound):
        proxy.remove_toxic("latency_downstream")
    with pytest.raises(errors.ProxyNotFound) as info:
        Links([proxy]).get("vpn")
    assert info.value.body() == {"error": "proxy not found", "status": 404}


def test_a_proxy_has_toxiproxys_shape_and_the_labs_state():
    proxy = make_proxy()
    proxy.add_toxic({"type": "timeout", "attributes": {"timeout": 0}})
    assert proxy.to_json() == {
        "name": "agent-to-ps-01",
        "listen": "127.0.0.1:40001",
        "upstream": "127.0.0.1:40002",
        "enabled": True,
        "toxics": [proxy.toxics[0].to_json()],
    }
    state = proxy.state()
    assert state["from"] == "agent" and state["to"] == "ps-01"
    assert state["url"] == "https://127.0.0.1:40001"
    assert state["bytes_upstream"] == 0 and state["connections_active"] == 0


def test_only_enabled_may_change_on_a_lab_proxy():
    proxy = make_proxy()
    assert proxy.update({"enabled": False}) is False
    assert proxy.update({"enabled": True, "listen": "127.0.0.1:40001"}) is True
    with pytest.raises(errors.NotImplementedInLab) as info:
        proxy.update({"upstream": "127.0.0.1:9"})
    assert info.value.status == 501 and "ProxyUpdate of upstream" in info.value.text
    with pytest.raises(errors.BadRequestBody):
        proxy.update({"enabled": "no"})


def test_toxicity_is_a_draw_per_connection():
    class Fixed:
        def __init__(self, value):
            self.value = value

        def random(self):
            return self.value

    toxic = Toxic("t", "latency", toxicity=0.25, attributes={"latency": 1, "jitter": 0})
    assert toxic.applies(Fixed(0.1)) is True
    assert toxic.applies(Fixed(0.9)) is False
    never = Toxic("n", "latency", toxicity=0.0, attributes={"latency": 1, "jitter": 0})
    assert never.applies(Fixed(0.0)) is False
