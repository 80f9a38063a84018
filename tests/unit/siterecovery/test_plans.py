"""Recovery plans without sockets: input checks as the real service makes them, what a plan
allows from its items' states, the shared point of a multi-VM group, the tasks a plan's job is
expanded into, script action timeouts and paths."""

from __future__ import annotations

import pytest

from fakes.azure.siterecovery.errors import (
    InvalidInput,
    OperationNotAllowed,
    ProviderNotEmulated,
    SiteRecoveryError,
)
from fakes.azure.siterecovery.models import failover, plan_actions, plan_jobs, plan_points, plans

from .conftest import SCOPE

FABRIC, CONTAINER = "cs1", "cloud_cs1"


def _item(vault, name, group=None, state="Protected", **extra):
    doc = {
        "name": name,
        "fabric": FABRIC,
        "container": CONTAINER,
        "friendlyName": f"vm-{name}",
        "protectableItemName": f"uuid-{name}",
        "protectionState": state,
        "enableInput": {"multiVmGroupName": group} if group else {},
        **extra,
    }
    with vault.store.transaction() as db:
        vault.store.put(db, "protected_items", (FABRIC, CONTAINER, name), doc)
    return SCOPE.protected_item(FABRIC, CONTAINER, name)


def _point(vault, item, name, time, type_="CrashConsistent", tag=None, group=False):
    with vault.store.transaction() as db:
        vault.store.put(
            db,
            "recovery_points",
            (FABRIC, CONTAINER, item, name),
            {
                "name": name,
                "fabric": FABRIC,
                "container": CONTAINER,
                "item": item,
                "time": time,
                "type": type_,
                "multiVmSyncPoint": group,
                "details": {"tag_id": tag or name},
            },
            time=time,
        )


@pytest.fixture
def site(vault):
    with vault.store.transaction() as db:
        vault.store.put(db, "fabrics", (FABRIC,), {"name": FABRIC, "kind": "VMware"}, kind="VMware")
    return {"a": _item(vault, "a"), "b": _item(vault, "b"), "c": _item(vault, "c")}


def _body(groups, **props):
    return {
        "properties": {
            "primaryFabricId": SCOPE.fabric(FABRIC),
            "recoveryFabricId": "Microsoft Azure",
            "groups": groups,
            **props,
        }
    }


def _boot(*ids, end=()):
    return {
        "groupType": "Boot",
        "replicationProtectedItems": [{"id": i} for i in ids],
        "endGroupActions": list(end),
    }


def _manual(name, types=None):
    return {
        "actionName": name,
        "failoverTypes": types or ["TestFailover", "UnplannedFailover"],
        "failoverDirections": ["PrimaryToRecovery"],
        "customDetails": {"instanceType": "ManualActionDetails", "description": "check it"},
    }


def test_a_plan_gets_its_fixed_groups_and_keeps_the_boot_order(vault, site):
    doc = plans.check_create_input(
        vault, "p", _body([_boot(site["b"]), _boot(site["a"], end=[_manual("m1")])])
    )
    assert [g["groupType"] for g in doc["groups"]] == ["Shutdown", "Failover", "Boot", "Boot"]
    assert [e["item"] for e in plans.items_of(vault, doc)] == ["b", "a"]
    assert [e["group"] for e in plans.items_of(vault, doc)] == [2, 3]
    assert doc["groups"][3]["endGroupActions"][0]["customDetails"]["description"] == "check it"


@pytest.mark.parametrize(
    "groups, error, words",
    [
        ([], InvalidInput, "groups"),
        ([_boot()], InvalidInput, "at least one"),
        ([{"groupType": "Later"}], InvalidInput, "groupType"),
        (
            [{"groupType": "Shutdown", "replicationProtectedItems": [{"id": "x"}]}],
            InvalidInput,
            "Boot groups",
        ),
        ([_boot("/subscriptions/x/nothing")], InvalidInput, "not a replication protected item"),
    ],
)
def test_bad_groups_are_refused(vault, site, groups, error, words):
    with pytest.raises(error) as err:
        plans.check_create_input(vault, "p", _body(groups))
    assert words in str(err.value)


def test_an_item_twice_a_name_twice_and_runbooks_are_refused(vault, site):
    with pytest.raises(InvalidInput, match="in two groups"):
        plans.check_create_input(vault, "p", _body([_boot(site["a"]), _boot(site["a"])]))
    with pytest.raises(InvalidInput, match="used twice"):
        plans.check_create_input(
            vault, "p", _body([_boot(site["a"], end=[_manual("m"), _manual("M")])])
        )
    runbook = {
        "actionName": "rb",
        "failoverTypes": ["TestFailover"],
        "failoverDirections": ["PrimaryToRecovery"],
        "customDetails": {"instanceType": "AutomationRunbookActionDetails", "runbookId": "x"},
    }
    with pytest.raises(ProviderNotEmulated) as err:
        plans.check_create_input(vault, "p", _body([_boot(site["a"], end=[runbook])]))
    assert err.value.status == 501
    with pytest.raises(ProviderNotEmulated):
        plans.check_create_input(
            vault, "p", _body([_boot(site["a"])], recoveryFabricId="/elsewhere")
        )


def _store(vault, doc):
    with vault.store.transaction() as db:
        vault.store.put(db, "recovery_plans", (doc["name"],), doc)
    return doc


def test_what_a_plan_allows_follows_its_items(vault, site):
    doc = _store(vault, plans.check_create_input(vault, "p", _body([_boot(site["a"], site["b"])])))
    assert plans.allowed_operations(vault, doc) == plans.IDLE_OPERATIONS
    plans.check_allowed(vault, doc, "testFailover")
    with pytest.raises(OperationNotAllowed, match="FailoverCommit"):
        plans.check_allowed(vault, doc, "failoverCommit")
    _item(vault, "a", testFailoverState=failover.TEST_WAITING)
    assert plans.allowed_operations(vault, doc) == ["TestFailoverCleanup"]
    _item(vault, "a", state=failover.UNPLANNED_PENDING)
    _item(vault, "b", state=failover.PLANNED_PENDING)
    assert plans.allowed_operations(vault, doc) == plans.PENDING_OPERATIONS
    _item(vault, "b")  # one item back on-premises, the other in Azure: nothing is allowed
    assert plans.allowed_operations(vault, doc) == []


def test_a_group_fails_over_to_its_newest_shared_point(vault, site):
    _item(vault, "a", group="g")
    _item(vault, "b", group="g")
    _item(vault, "c")
    _point(vault, "a", "a1", 100, tag="g-1", group=True)
    _point(vault, "b", "b1", 100, tag="g-1", group=True)
    _point(vault, "a", "a2", 200, tag="g-2", group=True)  # b never got g-2
    _point(vault, "b", "b3", 300, tag="g-3", group=True)
    _point(vault, "c", "c1", 250)
    docs = [vault.store.get("protected_items", FABRIC, CONTAINER, n) for n in "abc"]
    chosen = plan_points.choose(vault, docs, "LatestCrashConsistent", None)
    assert chosen == {"a": "a1", "b": "b1", "c": "c1"}
    independent = plan_points.choose(vault, docs, "LatestProcessed", False)
    assert independent == {"a": "a2", "b": "b3", "c": "c1"}
    with pytest.raises(InvalidInput, match="no common AppConsistent"):
        plan_points.choose(vault, docs[:2], "LatestApplicationConsistent", True)
    with pytest.raises(InvalidInput, match="recoveryPointType"):
        plan_points.choose(vault, docs, "Oldest", True)


def test_a_plan_job_is_expanded_in_boot_order_with_its_actions(vault, site):
    script = {
        "actionName": "s",
        "failoverTypes": ["TestFailover"],
        "failoverDirections": ["PrimaryToRecovery"],
        "customDetails": {"instanceType": "ScriptActionDetails", "path": "x.sh"},
    }
    doc = _store(
        vault,
        plans.check_create_input(
            vault,
            "p",
            _body(
                [
                    _boot(site["a"], end=[_manual("m", ["PlannedFailover"])]),
                    _boot(site["b"], end=[script]),
                ]
            ),
        ),
    )
    tasks = plan_jobs.expand(vault, {"plan": "p", "action": "testFailover"})
    assert [t["spec"] for t in tasks] == [
        "PlanPrerequisitesTask",
        "ChoosePointsTask",
        "BootGroupTask",  # the manual action is for planned failovers only
        "BootGroupTask",
        "ScriptActionTask",
    ]
    planned = plan_jobs.expand(vault, {"plan": "p", "action": "plannedFailover"})
    assert [t["spec"] for t in planned][:5] == [
        "PlanPrerequisitesTask",
        "ShutdownVmsTask",
        "FinalSyncTask",
        "ChoosePointsTask",
        "BootGroupTask",
    ]
    manual = next(t for t in planned if t["spec"] == "ManualActionTask")
    assert manual["instructions"] == "check it"
    assert len({t["name"] for t in planned}) == len(planned)  # task names are unique
    assert [
        t["spec"] for t in plan_jobs.expand(vault, {"plan": "p", "action": "failoverCommit"})
    ] == [
        "PlanPrerequisitesTask",
        "CommitItemsTask",
    ]
    assert doc["groups"][2]["replicationProtectedItems"]


@pytest.mark.parametrize(
    "text, seconds",
    [
        (None, 600),
        ("PT5M", 300),
        ("PT1M2.5S", 62.5),
        ("PT2H", 3600),
        ("P1D", 3600),
        ("PT0.5S", 0.5),
    ],
)
def test_script_timeouts_are_iso_8601_durations_capped_at_an_hour(text, seconds):
    assert plan_actions.parse_timeout(text) == seconds


def test_a_bad_timeout_and_a_script_outside_the_folders_are_refused(tmp_path):
    with pytest.raises(SiteRecoveryError, match="ISO 8601"):
        plan_actions.parse_timeout("5 minutes")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "ok.sh").write_text("exit 0\n")
    (tmp_path / "outside.sh").write_text("exit 0\n")
    assert plan_actions.resolve(tmp_path, "ok.sh").name == "ok.sh"
    with pytest.raises(SiteRecoveryError) as err:
        plan_actions.resolve(tmp_path, "../outside.sh")
    assert err.value.code == "ScriptNotFound"
    assert plan_actions.resolve(tmp_path, "record-plan-context.py").is_file()  # the checkout's
