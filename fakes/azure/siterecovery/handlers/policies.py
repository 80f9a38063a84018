"""replicationPolicies: InMageAzureV2 policies (and their InMage failback twins)."""

from __future__ import annotations

from .. import ids
from ..errors import InvalidInput, NotFound
from ..models import policies
from . import operation
from .common import accepted_job, ok, paged


@operation("ReplicationPolicies_Get")
def get_policy(service, req):
    doc = service.vault.store.get("policies", req.params["policyName"])
    if doc is None:
        raise NotFound(ids.T_POLICY, req.params["policyName"], service.vault.scope.resource_group)
    return ok(policies.policy_json(service.vault, doc))


@operation("ReplicationPolicies_List")
def list_policies(service, req):
    docs = service.vault.store.docs("policies", order="name")
    return paged(
        req,
        docs,
        key=lambda d: d["name"].lower(),
        render=lambda d: policies.policy_json(service.vault, d),
    )


@operation("ReplicationPolicies_Create")
def create_policy(service, req):
    vault = service.vault
    name = req.params["policyName"]
    settings = policies.check_policy_input(req.json())
    existing = vault.store.get("policies", name)
    if existing is not None and existing["instanceType"] != "InMageAzureV2":
        raise InvalidInput(
            f"The policy '{name}' is a failback policy; it follows '{existing.get('failbackOf')}'."
        )
    job = vault.jobs.start(
        "CreatePolicy",
        input={"policy": name, "settings": settings},
        target_id=vault.scope.policy(name),
        target_name=name,
        result_path=vault.scope.policy(name),
    )
    return accepted_job(service, req, job)
