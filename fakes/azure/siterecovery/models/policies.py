"""replicationPolicies: InMageAzureV2 replication policies and their InMage failback twins.

Validated as the real service does, before anything is created: a non-zero app-consistent
frequency under 60 minutes is error 15040; the recovery point retention is at most 15 days
(21 600 minutes, managed disks); `multiVmSyncStatus` is required (Enable/Disable). Creating
`<name>` also creates the failback policy `<name>-failback` (instanceType InMage) with the
same retention, RPO threshold and app-consistent frequency, as the real service does for
VMware-to-Azure. A PUT on an existing policy replaces its settings.

Defaults for fields left out: RPO threshold 60 min, retention 1 440 min (24 h),
app-consistent 0 (off), crash-consistent 5 min (fixed in the seed).

Not emulated: policies of other providers (A2A, HyperVReplicaAzure, InMageRcm, VMwareCbt...:
501), update (PATCH) and delete.
"""

from __future__ import annotations

from .. import ids
from ..errors import (
    AppConsistentFrequencyTooLow,
    InvalidInput,
    ProviderNotEmulated,
    RetentionTooLong,
)
from .jobs import JobKind, TaskSpec

MAX_RETENTION_MINUTES = 15 * 24 * 60
MAX_APP_CONSISTENT_MINUTES = 12 * 60
DEFAULTS = {
    "recoveryPointThresholdInMinutes": 60,
    "recoveryPointHistory": 24 * 60,
    "crashConsistentFrequencyInMinutes": 5,
    "appConsistentFrequencyInMinutes": 0,
}
FAILBACK_SUFFIX = "-failback"


def _int_field(inp: dict, field: str) -> int:
    value = inp.get(field, DEFAULTS[field])
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(
            f"'providerSpecificInput.{field}' must be a non-negative integer (minutes)."
        )
    return value


def check_policy_input(body) -> dict:
    """The policy settings from a CreatePolicyInput body, or the real service's error."""
    props = body.get("properties") if isinstance(body, dict) else None
    inp = props.get("providerSpecificInput") if isinstance(props, dict) else None
    if not isinstance(inp, dict) or not inp.get("instanceType"):
        raise InvalidInput("'properties.providerSpecificInput.instanceType' is required.")
    if inp["instanceType"] != "InMageAzureV2":
        raise ProviderNotEmulated(
            f"The operation 'ReplicationPolicies_Create' with instanceType '{inp['instanceType']}' "
            "is not emulated by drlab (only InMageAzureV2, VMware to Azure).",
            target="ReplicationPolicies_Create",
        )
    sync = inp.get("multiVmSyncStatus")
    if sync not in ("Enable", "Disable"):
        raise InvalidInput(
            "'providerSpecificInput.multiVmSyncStatus' is required: 'Enable' or 'Disable'."
        )
    settings = {field: _int_field(inp, field) for field in DEFAULTS}
    app = settings["appConsistentFrequencyInMinutes"]
    if 0 < app < 60:
        raise AppConsistentFrequencyTooLow(app)
    if app > MAX_APP_CONSISTENT_MINUTES:
        raise InvalidInput(
            "The app consistent snapshot frequency can't be more than 12 hours "
            f"(given: {app} minutes)."
        )
    history = settings["recoveryPointHistory"]
    if history > MAX_RETENTION_MINUTES:
        raise RetentionTooLong(history)
    if app and app > history:
        raise InvalidInput(
            f"The app consistent snapshot frequency ({app} minutes) can't be more than the "
            f"recovery point retention ({history} minutes)."
        )
    if settings["crashConsistentFrequencyInMinutes"] == 0:
        settings["crashConsistentFrequencyInMinutes"] = DEFAULTS[
            "crashConsistentFrequencyInMinutes"
        ]
    settings["multiVmSyncStatus"] = sync
    return settings


def _create(vault, job, db) -> None:
    name, settings = job["input"]["policy"], job["input"]["settings"]
    doc = {
        "name": name,
        "friendlyName": name,
        "instanceType": "InMageAzureV2",
        "settings": settings,
        "failbackPolicy": name + FAILBACK_SUFFIX,
    }
    vault.store.put(db, "policies", (name,), doc)


def _create_failback(vault, job, db) -> None:
    name, settings = job["input"]["policy"], job["input"]["settings"]
    failback = name + FAILBACK_SUFFIX
    inmage = {k: v for k, v in settings.items() if k != "crashConsistentFrequencyInMinutes"}
    doc = {
        "name": failback,
        "friendlyName": failback,
        "instanceType": "InMage",
        "settings": inmage,
        "failbackOf": name,
    }
    vault.store.put(db, "policies", (failback,), doc)


CREATE_POLICY = JobKind(
    name="CreatePolicy",
    scenario="AddProtectionProfile",
    friendly_name="Create replication policy",
    target_type="ProtectionProfile",
    tasks=(
        TaskSpec("CreateProtectionProfileTask", "Creating the replication policy", run=_create),
        TaskSpec(
            "CreateFailbackProtectionProfileTask",
            "Creating the failback replication policy",
            run=_create_failback,
        ),
    ),
)


def policy_json(vault, doc: dict) -> dict:
    details = {"instanceType": doc["instanceType"], **doc["settings"]}
    return {
        "id": vault.scope.policy(doc["name"]),
        "name": doc["name"],
        "type": ids.T_POLICY,
        "location": vault.scope.location,
        "properties": {"friendlyName": doc["friendlyName"], "providerSpecificDetails": details},
    }


def policy_from_id(vault, policy_id) -> dict | None:
    if not isinstance(policy_id, str):
        return None
    parts = vault.scope.parse(policy_id)
    if not parts or set(parts) != {"policy"}:
        return None
    return vault.store.get("policies", parts["policy"])
