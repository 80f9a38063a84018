"""replicationProtectionContainerMappings: a configuration server's container associated with a
replication policy, towards the "Microsoft Azure" container.

Associating an InMageAzureV2 policy also associates its failback policy in the other
direction (the Azure container towards the configuration server's, named
`<mapping>-failback`), as the real service does. The target may be given as the literal
"Microsoft Azure" (what the SDK's users pass for V2A) or as the Azure container's id.

Not emulated: update, removal and purge of a mapping; provider-specific mapping inputs
(A2A, VMwareCbt: 501).
"""

from __future__ import annotations

from .. import ids
from ..errors import Conflict, FabricNotRegistered, InvalidInput, ProviderNotEmulated
from .common import AZURE_FRIENDLY_NAME
from .fabrics import azure_container_name, azure_fabric_name
from .jobs import JobKind, TaskSpec
from .policies import FAILBACK_SUFFIX, policy_from_id


def check_mapping(vault, fabric: dict, container: dict, name: str, body) -> dict:
    if fabric["kind"] != "VMware":
        raise FabricNotRegistered(
            "Only a configuration server's container (a VMware fabric) can be associated with an "
            "InMageAzureV2 replication policy."
        )
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise InvalidInput('The request body must be {"properties": {"policyId": ..., ...}}.')
    psi = props.get("providerSpecificInput")
    if psi is not None:
        kind = psi.get("instanceType") if isinstance(psi, dict) else None
        raise ProviderNotEmulated(
            f"The operation 'ReplicationProtectionContainerMappings_Create' with provider input "
            f"'{kind}' is not emulated by drlab (VMware to Azure takes none).",
            target="ReplicationProtectionContainerMappings_Create",
        )
    policy = policy_from_id(vault, props.get("policyId"))
    if policy is None:
        raise InvalidInput(
            f"'properties.policyId' '{props.get('policyId')}' is not a replication policy of "
            "this vault."
        )
    if policy["instanceType"] != "InMageAzureV2":
        raise InvalidInput(
            f"The policy '{policy['name']}' is a {policy['instanceType']} (failback) policy: "
            "associate the InMageAzureV2 policy; its failback policy is associated with it."
        )
    target = props.get("targetProtectionContainerId")
    azure_fabric, azure_container = (
        azure_fabric_name(vault.scope),
        azure_container_name(vault.scope),
    )
    if target != AZURE_FRIENDLY_NAME:
        parts = vault.scope.parse(target or "")
        if (
            not parts
            or parts.get("fabric", "").lower() != azure_fabric
            or parts.get("container", "").lower() != azure_container.lower()
        ):
            raise InvalidInput(
                "'properties.targetProtectionContainerId' must be "
                f"'{AZURE_FRIENDLY_NAME}' (or the id of the Microsoft Azure container), "
                f"not '{target}'."
            )
    existing = vault.store.get("mappings", fabric["name"], container["name"], name)
    if existing is not None and existing["policy"].lower() != policy["name"].lower():
        raise Conflict(
            f"The mapping '{name}' already associates the policy '{existing['policy']}'; "
            "choose another name."
        )
    return {
        "fabric": fabric["name"],
        "container": container["name"],
        "mapping": name,
        "policy": policy["name"],
    }


def _associate(vault, job, db) -> None:
    inp = job["input"]
    doc = {
        "name": inp["mapping"],
        "fabric": inp["fabric"],
        "container": inp["container"],
        "policy": inp["policy"],
        "targetFabric": azure_fabric_name(vault.scope),
        "targetContainer": azure_container_name(vault.scope),
        "target": AZURE_FRIENDLY_NAME,
        "state": "Paired",
        "failbackMapping": inp["mapping"] + FAILBACK_SUFFIX,
    }
    vault.store.put(db, "mappings", (inp["fabric"], inp["container"], inp["mapping"]), doc)


def _associate_failback(vault, job, db) -> None:
    inp = job["input"]
    fabric, container = azure_fabric_name(vault.scope), azure_container_name(vault.scope)
    name = inp["mapping"] + FAILBACK_SUFFIX
    doc = {
        "name": name,
        "fabric": fabric,
        "container": container,
        "policy": inp["policy"] + FAILBACK_SUFFIX,
        "targetFabric": inp["fabric"],
        "targetContainer": inp["container"],
        "target": None,
        "state": "Paired",
        "failbackOf": inp["mapping"],
    }
    vault.store.put(db, "mappings", (fabric, container, name), doc)


ASSOCIATE = JobKind(
    name="AssociatePolicy",
    scenario="AssociateProtectionProfile",
    friendly_name="Associate replication policy",
    target_type="ProtectionContainer",
    tasks=(
        TaskSpec(
            "AssociateProtectionProfileTask", "Associating the replication policy", run=_associate
        ),
        TaskSpec(
            "AssociateFailbackProtectionProfileTask",
            "Associating the failback replication policy",
            run=_associate_failback,
        ),
    ),
)


def mapping_json(vault, doc: dict) -> dict:
    scope = vault.scope
    source_fabric = vault.store.get("fabrics", doc["fabric"]) or {}
    source_container = vault.store.get("containers", doc["fabric"], doc["container"]) or {}
    target_fabric = vault.store.get("fabrics", doc["targetFabric"]) or {}
    target_container = (
        vault.store.get("containers", doc["targetFabric"], doc["targetContainer"]) or {}
    )
    props = {
        "targetProtectionContainerId": doc.get("target")
        or scope.container(doc["targetFabric"], doc["targetContainer"]),
        "targetProtectionContainerFriendlyName": target_container.get("friendlyName"),
        "health": "Normal",
        "healthErrorDetails": [],
        "policyId": scope.policy(doc["policy"]),
        "state": doc["state"],
        "sourceProtectionContainerFriendlyName": source_container.get("friendlyName"),
        "sourceFabricFriendlyName": source_fabric.get("friendlyName"),
        "targetFabricFriendlyName": target_fabric.get("friendlyName"),
        "policyFriendlyName": doc["policy"],
    }
    return {
        "id": scope.mapping(doc["fabric"], doc["container"], doc["name"]),
        "name": doc["name"],
        "type": ids.T_MAPPING,
        "location": scope.location,
        "properties": {k: v for k, v in props.items() if v is not None},
    }


def mapped_policies(vault, fabric: str, container: str) -> set[str]:
    return {
        d["policy"].lower()
        for d in vault.store.docs("mappings", "fabric = ? AND container = ?", (fabric, container))
    }
