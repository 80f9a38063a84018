"""$filter clauses and skip-token paging, without HTTP."""

import pytest

from fakes.azure.arm.errors import ArmError, InvalidFilter
from fakes.azure.arm.front import ArmRequest
from fakes.azure.arm.paging import paged
from fakes.azure.siterecovery.models.filters import FilterSpec, apply_filter

SPEC = FilterSpec({"JobStatus": "state", "JobName": "scenarioName"}, times={"StartTime": "start"})
DOCS = [
    {"state": "Succeeded", "scenarioName": "EnableDr", "start": 100.0},
    {"state": "Failed", "scenarioName": "EnableDr", "start": 200.0},
    {"state": "Succeeded", "scenarioName": "AddProtectionProfile", "start": 300.0},
]


def test_eq_and_time_clauses():
    assert len(apply_filter(SPEC, "JobStatus eq 'succeeded'", DOCS)) == 2
    assert apply_filter(SPEC, "jobname eq 'EnableDr' and JobStatus ne 'Succeeded'", DOCS) == [
        DOCS[1]
    ]
    assert apply_filter(SPEC, "StartTime ge '1970-01-01T00:03:20Z'", DOCS) == DOCS[1:]
    assert apply_filter(SPEC, None, DOCS) == DOCS


@pytest.mark.parametrize(
    "text",
    [
        "Colour eq 'red'",
        "JobStatus gt 'x'",
        "JobStatus eq",
        "StartTime ge 'yesterday'",
        "JobStatus eq 'a' or JobName eq 'b'",
    ],
)
def test_bad_filters_are_400(text):
    with pytest.raises(InvalidFilter) as info:
        apply_filter(SPEC, text, DOCS)
    assert info.value.status == 400


def req(**query):
    return ArmRequest(
        "GET", "/things", "Things_List", {}, query, b"", "https://arm.test", "2025-08-01"
    )


def test_pages_follow_the_sort_key_and_carry_the_query():
    items = [{"name": f"n{i:03d}"} for i in range(250)]
    first = paged(req(**{"$filter": "x"}), items, key=lambda d: d["name"], render=dict).body
    assert len(first["value"]) == 100 and first["nextLink"].startswith(
        "https://arm.test/things?api-version=2025-08-01"
    )
    assert "%24filter=x" in first["nextLink"] or "$filter=x" in first["nextLink"]
    token = first["nextLink"].split("skipToken=")[1]
    items.insert(0, {"name": "a-new-first"})  # inserted before the boundary: no repeat, no gap
    second = paged(req(**{"$skipToken": token}), items, key=lambda d: d["name"], render=dict).body
    assert second["value"][0]["name"] == "n100"
    small = paged(req(**{"$take": "2"}), items, key=lambda d: d["name"], render=dict).body
    assert len(small["value"]) == 2


def test_bad_skip_token_is_400():
    with pytest.raises(ArmError) as info:
        paged(req(**{"$skipToken": "!!"}), [], key=lambda d: d, render=dict)
    assert info.value.code == "InvalidSkipToken"


def test_protected_items_page_straight_from_the_index(vault):
    from fakes.azure.arm.paging import paged_query
    from fakes.azure.siterecovery.models.protected_items import page_of_items

    with vault.store.transaction() as db:
        for fabric, n in (("cs-A", 3), ("cs-b", 4)):
            for i in range(n):
                doc = {"name": f"Vm{i}", "fabric": fabric, "container": "c"}
                vault.store.put(db, "protected_items", (fabric, "c", f"Vm{i}"), doc)

    def key(d):
        return (d["fabric"].lower(), d["container"].lower(), d["name"].lower())

    seen, token = [], None
    while True:
        query = {"$take": "2", **({"$skipToken": token} if token else {})}
        body = paged_query(
            req(**query),
            lambda after, limit: page_of_items(vault, after, limit),
            key=key,
            render=dict,
        ).body
        seen += [(d["fabric"], d["name"]) for d in body["value"]]
        if "nextLink" not in body:
            break
        token = body["nextLink"].split("skipToken=")[1]
    assert len(seen) == 7 and len(set(seen)) == 7
    assert seen[0] == ("cs-A", "Vm0") and seen[-1] == ("cs-b", "Vm3")
    assert [d["name"] for d in page_of_items(vault, None, 10, "cs-b", "c")] == [
        f"Vm{i}" for i in range(4)
    ]
