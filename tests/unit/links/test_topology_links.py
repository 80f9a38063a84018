"""The `links:` section of a topology, its defaults, and the service that gets one port per link."""

import pytest
import yaml

from lab.errors import TopologyError
from lab.services import enabled_services
from lab.topology import load_topology, to_json


def write(tmp_path, text: str):
    base = load_topology("default")
    data = to_json(base)
    path = tmp_path / "t.yaml"
    extra = yaml.safe_load(text) if text else {}
    data.pop("links")
    data.update(extra)
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_default_topology_has_the_seeds_links():
    topo = load_topology("default")
    assert [(p.name, p.from_, p.to) for p in topo.links.proxies] == [
        ("agent-to-ps-01", "agent", "ps-01"),
        ("ps-01-to-azure", "ps-01", "azurite"),
        ("vpn", "azure", "mt-01"),
    ]
    dumped = to_json(topo)["links"]["proxies"][0]
    assert dumped == {"name": "agent-to-ps-01", "from": "agent", "to": "ps-01"}


def test_the_links_service_gets_one_extra_port_per_link():
    services = {s.name: s for s in enabled_services(load_topology("default"))}
    assert services["links"].extra_ports == ("agent-to-ps-01", "ps-01-to-azure", "vpn")
    assert services["mail"].extra_ports == ("smtp",)


def test_links_can_be_listed_by_hand(tmp_path):
    path = write(tmp_path, "links: {proxies: [{name: wan, from: agent, to: ps-01}]}")
    topo = load_topology(str(path))
    assert [p.name for p in topo.links.proxies] == ["wan"]
    services = {s.name: s for s in enabled_services(topo)}
    assert services["links"].extra_ports == ("wan",)


def test_no_links_no_service(tmp_path):
    topo = load_topology(str(write(tmp_path, "links: {proxies: []}")))
    assert "links" not in {s.name for s in enabled_services(topo)}


@pytest.mark.parametrize(
    "text, field",
    [
        ("links: {proxies: [{name: Bad_Name, from: agent, to: ps-01}]}", "links.proxies.0.name"),
        ("links: {proxies: [{name: wan, to: ps-01}]}", "links.proxies.0.from"),
        ("links: {proxies: [{name: a, from: x, to: y}, {name: a, from: x, to: y}]}", "links"),
        ("links: {max_connections: 0}", "links.max_connections"),
        ("links: {proxies: [{name: wan, from: agent, to: ps-01, via: x}]}", "links.proxies.0.via"),
    ],
)
def test_bad_links_are_refused_naming_the_field(tmp_path, text, field):
    with pytest.raises(TopologyError) as info:
        load_topology(str(write(tmp_path, text)))
    assert field in str(info.value)
