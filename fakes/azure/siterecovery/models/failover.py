"""Failover of a protected item: test failover and its cleanup, unplanned and planned
failover, commit, cancel, and changing the recovery point before commit.

States and allowed operations follow the real service (its examples): a test failover leaves
the item Protected with `testFailoverState` WaitingForCompletion and only TestFailoverCleanup
allowed; an unplanned failover moves it to UnplannedFailoverCommitPendingStatesBegin
("Failover completed") and a planned one to PlannedFailoverCommitRequired, both with
activeLocation Recovery and Commit / ChangePit / CancelFailover allowed; commit ends the
choice of recovery point (the points are deleted). An operation the state does not allow is
refused with the allowed ones named, and changes nothing.

The Azure work (managed disks copied from the point's snapshots, a VM that boots a guest on
them) runs as `azure` tasks, outside the database transaction: see `failover_vm.py`.
"""

from __future__ import annotations

from ..errors import InvalidInput, NotFound, OperationNotAllowed
from . import recovery_points as points

PROTECTED = "Protected"
UNPLANNED_PENDING = "UnplannedFailoverCommitPendingStatesBegin"
PLANNED_PENDING = "PlannedFailoverCommitRequired"
PLANNED_COMMITTED = "PlannedFailoverStatesBegin"
UNPLANNED_COMMITTED = "UnplannedFailoverCommitted"

# The item runs in Azure: replication has ended (the worker leaves it alone, its points stay
# as they are until commit deletes them).
FAILED_OVER = (UNPLANNED_PENDING, PLANNED_PENDING, PLANNED_COMMITTED, UNPLANNED_COMMITTED)

# The scenario names of the jobs that choose a recovery point (models/failover_jobs.py).
FAILOVER_JOBS = ("TestFailover", "UnplannedFailover", "PlannedFailover", "ChangePit")

TEST_NONE, TEST_WAITING, TEST_CLEANING = "None", "WaitingForCompletion", "MarkedForDeletion"

DESCRIPTIONS = {
    UNPLANNED_PENDING: "Failover completed",
    PLANNED_PENDING: "Planned failover finished",
    PLANNED_COMMITTED: "Planned failover committed",
    UNPLANNED_COMMITTED: "Failover committed",
}
PENDING_COMMIT_OPERATIONS = ["Commit", "DisableProtection", "ChangePit", "CancelFailover"]
COMMITTED_OPERATIONS = ["DisableProtection"]  # ReverseReplicate (failback) is not emulated

# The operation (as `allowedOperations` names it) each action needs.
ACTION_OPERATION = {
    "testFailover": "TestFailover",
    "testFailoverCleanup": "TestFailoverCleanup",
    "unplannedFailover": "UnplannedFailover",
    "plannedFailover": "PlannedFailover",
    "failoverCommit": "Commit",
    "failoverCancel": "CancelFailover",
    "applyRecoveryPoint": "ChangePit",
}

# Recovery point choices: the SDK's recoveryPointId, and the plans' recovery point types.
LATEST = "Latest"  # process what the service has received, then its newest point
LATEST_PROCESSED = "LatestProcessed"
LATEST_APP = "LatestApplicationConsistent"
LATEST_CRASH = "LatestCrashConsistent"
POINT_TYPES = (LATEST, LATEST_PROCESSED, LATEST_APP, LATEST_CRASH)


def allowed_operations(doc: dict, base: list[str]) -> list[str]:
    """What the item allows, given the replication states' own list (`base`)."""
    state = doc["protectionState"]
    if state in (UNPLANNED_PENDING, PLANNED_PENDING):
        return list(PENDING_COMMIT_OPERATIONS)
    if state in (PLANNED_COMMITTED, UNPLANNED_COMMITTED):
        return list(COMMITTED_OPERATIONS)
    if doc.get("testFailoverState") == TEST_WAITING:
        return ["TestFailoverCleanup"]
    if doc.get("testFailoverState") == TEST_CLEANING or doc.get("currentJob"):
        return []
    out = list(base)
    if state == PROTECTED and "PlannedFailover" not in out:
        out.insert(0, "PlannedFailover")
    return out


def description(doc: dict) -> str | None:
    return DESCRIPTIONS.get(doc["protectionState"])


def check_allowed(doc: dict, action: str, base: list[str]) -> None:
    operation = ACTION_OPERATION[action]
    allowed = allowed_operations(doc, base)
    if operation not in allowed:
        raise OperationNotAllowed(
            f"The operation '{operation}' is not allowed for the protected item "
            f"'{doc['friendlyName']}' in its current state ({doc['protectionState']}, test "
            f"failover {doc.get('testFailoverState', TEST_NONE)}). Allowed operations: "
            f"{', '.join(allowed) or 'none while a job runs'}."
        )


def point_name(recovery_point_id: str | None) -> str | None:
    """The point's name from an ARM id or a bare name."""
    if not recovery_point_id:
        return None
    return recovery_point_id.rstrip("/").rsplit("/", 1)[-1]


def choose_point(vault, doc: dict, choice: str | None) -> dict:
    """The recovery point a failover uses: a name/id, or one of POINT_TYPES (None = the
    latest processed, as the real service does without a recoveryPointId)."""
    all_points = points.list_points(vault, doc["fabric"], doc["container"], doc["name"])
    if not all_points:
        raise InvalidInput(
            f"The protected item '{doc['friendlyName']}' has no recovery point yet: wait "
            "for initial replication to complete."
        )
    choice = choice or LATEST_PROCESSED
    if choice in (LATEST, LATEST_PROCESSED):
        return all_points[0]
    if choice in (LATEST_APP, LATEST_CRASH):
        wanted = "AppConsistent" if choice == LATEST_APP else "CrashConsistent"
        for p in all_points:
            if p["type"] == wanted:
                return p
        raise InvalidInput(
            f"The protected item '{doc['friendlyName']}' has no {wanted} recovery point."
        )
    name = point_name(choice)
    for p in all_points:
        if p["name"].lower() == name.lower():
            return p
    raise NotFound("replicationProtectedItems/recoveryPoints", f"{doc['name']}/{name}")
