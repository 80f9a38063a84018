"""lab.kit.links: where a link listens, and which URL a role uses for a service."""

import pytest

from lab.kit import links

LAB = {
    "state_dir": "/nonexistent",
    "services": {
        "ps-01": {"url": "https://127.0.0.1:9443", "port": 9443},
        "azurite": {"url": "https://127.0.0.1:10000", "port": 10000},
        "links": {"ports": {"agent-to-ps-01": 41001, "ps-01-to-azure": 41002}},
    },
}
TOPOLOGY = {
    "links": {
        "proxies": [
            {"name": "agent-to-ps-01", "from": "agent", "to": "ps-01"},
            {"name": "ps-01-to-azure", "from": "ps-01", "to": "azurite"},
        ]
    }
}


def test_link_url():
    assert links.link_url(LAB, "ps-01-to-azure") == "https://127.0.0.1:41002"
    with pytest.raises(KeyError, match="agent-to-ps-01"):
        links.link_url(LAB, "vpn")


def test_link_for_and_route():
    assert links.link_for(LAB, "agent", "ps-01", TOPOLOGY) == "agent-to-ps-01"
    assert links.link_for(LAB, "ps-01", "ps-01", TOPOLOGY) is None
    assert links.route(LAB, "ps-01", "azurite", TOPOLOGY) == "https://127.0.0.1:41002"
    # No link for that pair: the service's own URL.
    assert links.route(LAB, "cs-01", "ps-01", TOPOLOGY) == "https://127.0.0.1:9443"


def test_a_lab_without_links_routes_directly():
    lab = {"services": {"ps-01": {"url": "https://127.0.0.1:9443"}}}
    assert links.links_of(lab) == []
    assert links.route(lab, "agent", "ps-01") == "https://127.0.0.1:9443"
