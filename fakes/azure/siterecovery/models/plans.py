"""replicationRecoveryPlans: groups of protected items that fail over together, in boot order,
with manual and script actions around each group.

A plan is created from `CreateRecoveryPlanInput` and checked as the real service does before
anything is stored: the primary fabric is this vault's configuration server, the recovery
fabric is Azure, every item is a protected item of that fabric and appears once, items sit
only in Boot groups, action names are unique in the plan. The Shutdown and Failover groups
are always there (the service adds them); Boot groups keep the order given: group 1 boots
first.

Actions: `ManualActionDetails` (the plan's job pauses until resumed) and `ScriptActionDetails`
(a lab script, run with the plan's context; see plan_actions.py). Azure Automation runbooks
(`AutomationRunbookActionDetails`) are not emulated: 501.

What a plan allows follows its items: a test failover waiting for cleanup allows only
TestFailoverCleanup; items failed over and pending commit allow FailoverCommit and
CancelFailover; a plan whose items are still replicating allows the three failovers.
"""

from __future__ import annotations

from .. import ids
from ..errors import InvalidInput, NotFound, OperationNotAllowed, ProviderNotEmulated
from . import failover
from .common import AZURE_FRIENDLY_NAME, compact, iso
from .jobs import JobKind, TaskSpec

GROUP_TYPES = ("Shutdown", "Failover", "Boot")
FAILOVER_TYPES = (
    "TestFailover",
    "PlannedFailover",
    "UnplannedFailover",
)
ACTION_KINDS = ("ManualActionDetails", "ScriptActionDetails")
MAX_GROUPS = 8  # the real service allows up to 7 boot groups plus the fixed ones

IDLE_OPERATIONS = ["PlannedFailover", "UnplannedFailover", "TestFailover"]
PENDING_OPERATIONS = ["FailoverCommit", "CancelFailover"]

# The operation each plan action needs (as the plan's allowedOperations names it).
ACTION_OPERATION = {
    "testFailover": "TestFailover",
    "testFailoverCleanup": "TestFailoverCleanup",
    "plannedFailover": "PlannedFailover",
    "unplannedFailover": "UnplannedFailover",
    "failoverCommit": "FailoverCommit",
    "failoverCancel": "CancelFailover",
}


def require_plan(vault, name: str) -> dict:
    doc = vault.store.get("recovery_plans", name)
    if doc is None:
        raise NotFound(ids.T_RECOVERY_PLAN, name, vault.scope.resource_group)
    return doc


def items_of(vault, plan: dict) -> list[dict]:
    """The plan's protected items, in boot order: [{fabric, container, item, group}]."""
    out = []
    for index, group in enumerate(plan["groups"]):
        for entry in group["replicationProtectedItems"]:
            parts = vault.scope.parse(entry["id"]) or {}
            out.append(
                {
                    "fabric": parts.get("fabric"),
                    "container": parts.get("container"),
                    "item": parts.get("protected_item"),
                    "group": index,
                }
            )
    return out


# -- checking the input --------------------------------------------------------------------------
def _action(raw, seen: set[str]) -> dict:
    if not isinstance(raw, dict) or not isinstance(raw.get("actionName"), str):
        raise InvalidInput("Each action needs 'actionName'.")
    name = raw["actionName"].strip()
    if not name or len(name) > 64:
        raise InvalidInput("'actionName' must be 1 to 64 characters.")
    if name.lower() in seen:
        raise InvalidInput(f"The action name '{name}' is used twice in the recovery plan.")
    seen.add(name.lower())
    types = raw.get("failoverTypes") or list(FAILOVER_TYPES)
    if not isinstance(types, list) or any(t not in FAILOVER_TYPES for t in types):
        raise InvalidInput(
            f"Action '{name}': 'failoverTypes' must list some of {', '.join(FAILOVER_TYPES)}."
        )
    directions = raw.get("failoverDirections") or ["PrimaryToRecovery"]
    if not isinstance(directions, list) or any(
        d not in ("PrimaryToRecovery", "RecoveryToPrimary") for d in directions
    ):
        raise InvalidInput(
            f"Action '{name}': 'failoverDirections' must be PrimaryToRecovery/RecoveryToPrimary."
        )
    details = raw.get("customDetails")
    kind = details.get("instanceType") if isinstance(details, dict) else None
    if kind == "AutomationRunbookActionDetails":
        raise ProviderNotEmulated(
            f"Action '{name}': Azure Automation runbooks (AutomationRunbookActionDetails) are "
            "not emulated by drlab; use a script action (ScriptActionDetails).",
            target="customDetails",
        )
    if kind not in ACTION_KINDS:
        raise InvalidInput(
            f"Action '{name}': 'customDetails.instanceType' must be one of "
            f"{', '.join(ACTION_KINDS)}."
        )
    custom = {"instanceType": kind}
    if kind == "ManualActionDetails":
        custom["description"] = str(details.get("description") or "")
    else:
        path = details.get("path")
        if not isinstance(path, str) or not path.strip():
            raise InvalidInput(f"Action '{name}': a script action needs 'path'.")
        custom["path"] = path.strip()
        custom["timeout"] = details.get("timeout")
        custom["fabricLocation"] = details.get("fabricLocation") or "Recovery"
        if custom["fabricLocation"] not in ("Primary", "Recovery"):
            raise InvalidInput(f"Action '{name}': 'fabricLocation' is Primary or Recovery.")
    return {
        "actionName": name,
        "failoverTypes": list(types),
        "failoverDirections": list(directions),
        "customDetails": custom,
    }


def check_groups(vault, fabric: str, groups) -> list[dict]:
    """The plan's groups from the input, checked; Shutdown and Failover groups first."""
    if not isinstance(groups, list) or not groups:
        raise InvalidInput("'properties.groups' must list the plan's groups.")
    if len(groups) > MAX_GROUPS:
        raise InvalidInput(f"A recovery plan has at most {MAX_GROUPS} groups.")
    seen_items: set[str] = set()
    seen_actions: set[str] = set()
    boot = []
    fixed = {t: {"groupType": t, "replicationProtectedItems": []} for t in GROUP_TYPES[:2]}
    for raw in groups:
        if not isinstance(raw, dict) or raw.get("groupType") not in GROUP_TYPES:
            raise InvalidInput(f"'groupType' must be one of {', '.join(GROUP_TYPES)}.")
        entries = raw.get("replicationProtectedItems") or []
        if raw["groupType"] != "Boot" and entries:
            raise InvalidInput("Protected items belong in Boot groups.")
        items = []
        for entry in entries:
            arm_id = entry.get("id") if isinstance(entry, dict) else None
            parts = vault.scope.parse(arm_id or "") or {}
            if "protected_item" not in parts or parts.get("fabric", "").lower() != fabric.lower():
                raise InvalidInput(
                    f"'{arm_id}' is not a replication protected item of the primary fabric."
                )
            doc = vault.store.get(
                "protected_items", parts["fabric"], parts["container"], parts["protected_item"]
            )
            if doc is None:
                raise InvalidInput(f"The protected item '{arm_id}' does not exist.")
            if doc["name"].lower() in seen_items:
                raise InvalidInput(f"The protected item '{doc['friendlyName']}' is in two groups.")
            seen_items.add(doc["name"].lower())
            items.append(
                {
                    "id": vault.scope.protected_item(doc["fabric"], doc["container"], doc["name"]),
                    "virtualMachineId": doc.get("protectableItemName"),
                }
            )
        group = {
            "groupType": raw["groupType"],
            "replicationProtectedItems": items,
            "startGroupActions": [
                _action(a, seen_actions) for a in raw.get("startGroupActions") or []
            ],
            "endGroupActions": [_action(a, seen_actions) for a in raw.get("endGroupActions") or []],
        }
        if raw["groupType"] == "Boot":
            boot.append(group)
        else:
            fixed[raw["groupType"]] = group
    if not seen_items:
        raise InvalidInput("A recovery plan needs at least one replication protected item.")
    for group in fixed.values():
        group.setdefault("startGroupActions", [])
        group.setdefault("endGroupActions", [])
    return [fixed["Shutdown"], fixed["Failover"], *boot]


def check_create_input(vault, name: str, body) -> dict:
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise InvalidInput('The request body must be {"properties": {...}}.')
    primary = vault.scope.parse(props.get("primaryFabricId") or "") or {}
    fabric = primary.get("fabric")
    if not fabric or len(primary) != 1 or vault.store.get("fabrics", fabric) is None:
        raise InvalidInput(
            "'primaryFabricId' must be the ARM id of this vault's configuration server fabric."
        )
    recovery = props.get("recoveryFabricId") or ""
    if recovery.lower() not in ("microsoft azure", "azure") and not recovery.lower().endswith(
        "/replicationfabrics/azure"
    ):
        raise ProviderNotEmulated(
            f"Recovery to '{recovery}' is not emulated: VMware to Azure plans recover to "
            "'Microsoft Azure'.",
            target="recoveryFabricId",
        )
    model = props.get("failoverDeploymentModel") or "ResourceManager"
    if model not in ("ResourceManager", "NotApplicable"):
        raise ProviderNotEmulated(f"The deployment model '{model}' is not emulated.")
    return {
        "name": name,
        "fabric": vault.store.get("fabrics", fabric)["name"],
        "failoverDeploymentModel": "ResourceManager",
        "groups": check_groups(vault, fabric, props.get("groups")),
    }


# -- state ----------------------------------------------------------------------------------------
def item_docs(vault, plan: dict) -> list[dict]:
    docs = []
    for entry in items_of(vault, plan):
        doc = vault.store.get("protected_items", entry["fabric"], entry["container"], entry["item"])
        if doc is not None:
            docs.append(doc)
    return docs


def allowed_operations(vault, plan: dict) -> list[str]:
    if plan.get("currentJob"):
        return []
    docs = item_docs(vault, plan)
    if not docs:
        return []
    if any(d.get("testFailoverState") == failover.TEST_WAITING for d in docs):
        return ["TestFailoverCleanup"]
    states = {d["protectionState"] for d in docs}
    if states <= {failover.UNPLANNED_PENDING, failover.PLANNED_PENDING}:
        return list(PENDING_OPERATIONS)
    if states <= {failover.UNPLANNED_COMMITTED, failover.PLANNED_COMMITTED}:
        return []  # re-protection (failback) is not emulated
    if states == {"Protected"} and not any(d.get("currentJob") for d in docs):
        return list(IDLE_OPERATIONS)
    return []


def check_allowed(vault, plan: dict, action: str) -> None:
    operation = ACTION_OPERATION[action]
    allowed = allowed_operations(vault, plan)
    if operation not in allowed:
        states = sorted({d["protectionState"] for d in item_docs(vault, plan)})
        raise OperationNotAllowed(
            f"The operation '{operation}' is not allowed for the recovery plan '{plan['name']}' "
            f"(its items: {', '.join(states)}). Allowed operations: "
            f"{', '.join(allowed) or 'none until every item is Protected and idle'}."
        )


def plan_json(vault, plan: dict) -> dict:
    scope = vault.scope
    current = plan.get("currentJob")
    last = plan.get("lastJob") or {}
    return {
        "id": scope.recovery_plan(plan["name"]),
        "name": plan["name"],
        "type": ids.T_RECOVERY_PLAN,
        "location": scope.location,
        "properties": compact(
            {
                "friendlyName": plan["name"],
                "primaryFabricId": scope.fabric(plan["fabric"]),
                "primaryFabricFriendlyName": plan["fabric"],
                "recoveryFabricId": AZURE_FRIENDLY_NAME,
                "recoveryFabricFriendlyName": AZURE_FRIENDLY_NAME,
                "failoverDeploymentModel": plan["failoverDeploymentModel"],
                "replicationProviders": ["InMageAzureV2"],
                "allowedOperations": allowed_operations(vault, plan),
                "lastPlannedFailoverTime": iso(plan.get("lastPlannedFailoverTime")),
                "lastUnplannedFailoverTime": iso(plan.get("lastUnplannedFailoverTime")),
                "lastTestFailoverTime": iso(plan.get("lastTestFailoverTime")),
                "currentScenario": {
                    "scenarioName": current["scenarioName"],
                    "jobId": scope.job(current["name"]),
                    "startTime": iso(current["start"]),
                }
                if current
                else None,
                "currentScenarioStatus": "InProgress" if current else last.get("state"),
                "currentScenarioStatusDescription": "In progress" if current else last.get("state"),
                "groups": plan["groups"],
                "providerSpecificDetails": [],
            }
        ),
    }


# -- create, update, delete (jobs, as the real service runs them) ---------------------------------
def _store_plan(vault, job, db) -> None:
    doc = job["input"]["doc"]
    existing = vault.store.get("recovery_plans", doc["name"])
    if existing is not None:
        doc = {**existing, "groups": doc["groups"]}
    vault.store.put(db, "recovery_plans", (doc["name"],), doc)


def _delete_plan(vault, job, db) -> None:
    plan = require_plan(vault, job["input"]["plan"])
    if plan.get("currentJob"):
        raise OperationNotAllowed(
            f"The recovery plan '{plan['name']}' has a job in progress; delete it afterwards."
        )
    vault.store.delete(db, "recovery_plans", plan["name"])


def _check_idle(vault, job, db) -> None:
    plan = vault.store.get("recovery_plans", job["input"].get("plan") or "")
    if plan is not None and plan.get("currentJob"):
        raise OperationNotAllowed(
            f"The recovery plan '{plan['name']}' has a job in progress "
            f"({plan['currentJob']['scenarioName']})."
        )


CREATE = JobKind(
    name="CreateRecoveryPlan",
    scenario="CreateRecoveryPlan",
    friendly_name="Create recovery plan",
    target_type="RecoveryPlan",
    tasks=(TaskSpec("CreateRecoveryPlanTask", "Create the recovery plan", run=_store_plan),),
    on_create=_check_idle,
)
UPDATE = JobKind(
    name="UpdateRecoveryPlan",
    scenario="UpdateRecoveryPlan",
    friendly_name="Update recovery plan",
    target_type="RecoveryPlan",
    tasks=(TaskSpec("UpdateRecoveryPlanTask", "Update the recovery plan", run=_store_plan),),
    on_create=_check_idle,
)
DELETE = JobKind(
    name="DeleteRecoveryPlan",
    scenario="DeleteRecoveryPlan",
    friendly_name="Delete recovery plan",
    target_type="RecoveryPlan",
    tasks=(TaskSpec("DeleteRecoveryPlanTask", "Delete the recovery plan", run=_delete_plan),),
    on_create=_check_idle,
)
KINDS = (CREATE, UPDATE, DELETE)
