"""Route tables of Compute and Network, derived from the SDKs' request builders."""

from __future__ import annotations

import importlib.metadata
import re

import pytest

from fakes.azure.arm import sdk_routes
from fakes.azure.arm.sdk_routes import parse_table, route_table, rows_from_source
from fakes.azure.compute import app as compute_app
from fakes.azure.compute import sdk_routes as compute_rows
from fakes.azure.compute.handlers import all_handlers as compute_handlers
from fakes.azure.network import sdk_routes as network_rows
from fakes.azure.network.handlers import all_handlers as network_handlers
from fakes.azure.siterecovery.app import route_table as site_recovery_routes

SOURCE = """
def build_widgets_get_request(name: str, **kwargs):
    api_version: str = kwargs.pop("api_version", _params.pop("api-version", "2030-01-01"))
    _url = "/subscriptions/{subscriptionId}/providers/Lab.Widgets/widgets/{name}"
    return HttpRequest(method="GET", url=_url, params=_params, headers=_headers, **kwargs)


def build_widgets_create_or_update_request(name: str, **kwargs):
    api_version: str = kwargs.pop("api_version", _params.pop("api-version", "2030-01-01"))
    _url = "/subscriptions/{subscriptionId}/providers/Lab.Widgets/widgets/{name}"
    return HttpRequest(method="PUT", url=_url, params=_params, headers=_headers, **kwargs)


class WidgetsOperations:
    def get(self, name) -> "_models.Widget":
        _request = build_widgets_get_request(name)

    def list_all(self) -> ItemPaged["_models.Widget"]:
        _request = build_widgets_get_request("x")

    def _create_or_update_initial(self, name):
        _request = build_widgets_create_or_update_request(name)

    def begin_create_or_update(self, name) -> LROPoller["_models.Widget"]:
        return self._create_or_update_initial(name)
"""


def test_rows_come_from_the_builders():
    rows = rows_from_source(SOURCE)
    assert (
        "PUT",
        "/subscriptions/{subscriptionId}/providers/Lab.Widgets/widgets/{name}",
        "Widgets_CreateOrUpdate",
        "2030-01-01",
        True,
        False,
    ) in rows
    get = next(r for r in rows if r[0] == "GET")
    assert get[2] in ("Widgets_Get", "Widgets_ListAll")


@pytest.mark.parametrize(
    ("module", "dist"),
    [(compute_rows, "azure-mgmt-compute"), (network_rows, "azure-mgmt-network")],
)
def test_the_generated_tables_are_of_the_installed_sdks(module, dist):
    """After upgrading an SDK, regenerate its table (this fails until then):
    python -m fakes.azure.arm.sdk_routes azure.mgmt.compute fakes/azure/compute/sdk_routes.py"""
    assert f"{dist} {importlib.metadata.version(dist)}" == module.SOURCE
    assert f"`python -m fakes.azure.arm.sdk_routes {dist.replace('-', '.')} " in module.__doc__


def test_each_route_carries_the_version_its_sdk_sends():
    table = route_table(
        parse_table(compute_rows.TABLE), compute_rows.SOURCE, compute_app.EXTENSION_ROUTES
    )
    assert table.by_operation("VirtualMachines_Get").api_versions == ("2026-04-01",)
    assert table.by_operation("Disks_Get").api_versions == ("2026-03-02",)
    assert table.by_operation("ComputeOperations_Get").source == "drlab extension"
    network = route_table(parse_table(network_rows.TABLE), network_rows.SOURCE)
    assert network.by_operation("Subnets_Get").api_versions == ("2026-03-01",)
    assert sdk_routes.parse_table(compute_rows.TABLE)[0][0] in (
        "GET",
        "PUT",
        "POST",
        "DELETE",
        "PATCH",
        "HEAD",
    )


def _sample(template: str) -> str:
    return re.sub(r"\{[^}/]+\}", "p1", template)


def test_every_route_is_reached_through_the_whole_front():
    """SR, then Compute, then Network, as the ARM front mounts them: a request for any row's
    path finds that row (no row hides another)."""
    tables = [
        site_recovery_routes(),
        route_table(
            parse_table(compute_rows.TABLE), compute_rows.SOURCE, compute_app.EXTENSION_ROUTES
        ),
        route_table(parse_table(network_rows.TABLE), network_rows.SOURCE),
    ]
    for table in tables[1:]:
        for route in table:
            path = _sample(route.template)
            found = next(m for t in tables if (m := t.match(route.method, path)) is not None)
            assert found.route.operation_id == route.operation_id, (route.template, found.route)


def test_handlers_name_known_operations():
    compute_ops = {r[2] for r in parse_table(compute_rows.TABLE)} | {"ComputeOperations_Get"}
    assert set(compute_handlers()) <= compute_ops
    assert set(network_handlers()) <= {r[2] for r in parse_table(network_rows.TABLE)}
