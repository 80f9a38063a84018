"""The route table derived from the OpenAPI document, and the lab's extension rows."""

from fakes.azure.arm.routes import RouteTable, make_route
from fakes.azure.siterecovery import spec
from fakes.azure.siterecovery.app import EXTENSION_ROUTES, route_table
from fakes.azure.siterecovery.handlers import all_handlers

V = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/v"


def test_every_operation_of_the_document_is_a_row():
    table = RouteTable.from_openapi(spec.document())
    assert len(table) == 154
    assert {r.source for r in table} == {"SiteRecoveryManagementClient 2025-08-01"}
    create = table.by_operation("ReplicationProtectedItems_Create")
    assert create.method == "PUT" and create.long_running


def test_match_is_case_insensitive_and_decodes_parameters():
    table = route_table()
    m = table.match(
        "get",
        V.lower().replace("resourcegroups", "RESOURCEGROUPS") + "/replicationPolicies/my%20policy",
    )
    assert m.route.operation_id == "ReplicationPolicies_Get"
    assert m.params["policyName"] == "my policy"
    assert (
        table.match("GET", V + "/replicationPolicies/p/").route.operation_id
        == "ReplicationPolicies_Get"
    )


def test_literal_segments_win_over_parameters():
    table = route_table()
    assert (
        table.match("POST", V + "/replicationJobs/export").route.operation_id
        == "ReplicationJobs_Export"
    )
    assert (
        table.match("POST", V + "/replicationJobs/j1/cancel").route.operation_id
        == "ReplicationJobs_Cancel"
    )
    assert (
        table.match("GET", V + "/replicationFabrics/f/drlabProvider/workItems").route.operation_id
        == "DrlabProvider_ListWorkItems"
    )


def test_methods_at_tells_405_from_404():
    table = route_table()
    assert table.match("DELETE", V + "/replicationJobs") is None
    assert table.methods_at(V + "/replicationJobs") == ["GET"]
    assert table.methods_at(V + "/nothing") == []


def test_duplicate_operation_ids_are_refused():
    table = RouteTable([make_route("GET", "/a", "Op")])
    try:
        table.add(make_route("GET", "/b", "Op"))
    except ValueError as exc:
        assert "Op" in str(exc)
    else:
        raise AssertionError("a duplicate operationId was accepted")


def test_handlers_name_only_operations_of_the_table():
    table = route_table()
    handlers = all_handlers()
    assert set(handlers) <= table.operation_ids()
    assert {op for _, _, op in EXTENSION_ROUTES} <= set(handlers)
    missing = table.operation_ids() - set(handlers)
    assert "ReplicationRecoveryPlans_Reprotect" in missing  # answers 501, by name
    assert "ReplicationProtectedItems_Create" not in missing
