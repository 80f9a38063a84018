"""The ARM front of a running ARM process: tokens, api-version, routing, 501, LRO headers,
paging, faults, the provider channel's authorization and registration."""

from __future__ import annotations

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.mgmt.recoveryservicessiterecovery import SiteRecoveryManagementClient

from .conftest import make_cs, unique
from .openapi_check import Record
from .test_sdk_vmware_to_azure import policy_input

API = "api-version=2025-08-01"


def vault_path(lab) -> str:
    i = lab.info
    return (
        f"/subscriptions/{i['subscription_id']}/resourceGroups/{i['resource_group']}"
        f"/providers/Microsoft.RecoveryServices/vaults/{i['vault']}"
    )


def token(lab, principal="operator", scope="https://management.azure.com/.default") -> str:
    return lab.credential(principal).get_token(scope).token


def get(lab, path, responses, tok=None, **kw):
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    resp = requests.get(f"{lab.arm_url}{path}", headers=headers, verify=lab.ca, timeout=10, **kw)
    responses.append(Record("GET", resp.url, resp.status_code, resp.content))
    return resp


class FixedToken:
    def __init__(self, value):
        self.value = value

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.value, 2**31)


def test_no_token_is_401_with_a_challenge(arm_lab, responses):
    resp = get(arm_lab, f"{vault_path(arm_lab)}/replicationFabrics?{API}", responses)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "AuthenticationFailed"
    challenge = resp.headers["WWW-Authenticate"]
    assert (
        challenge.startswith("Bearer authorization_uri=") and arm_lab.info["tenant_id"] in challenge
    )


def test_token_for_another_audience_is_refused(arm_lab, vault, responses):
    storage = token(arm_lab, scope="https://storage.azure.com/.default")
    resp = get(arm_lab, f"{vault_path(arm_lab)}/replicationFabrics?{API}", responses, tok=storage)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    client = SiteRecoveryManagementClient(
        FixedToken(storage),
        arm_lab.info["subscription_id"],
        base_url=arm_lab.arm_url,
        connection_verify=arm_lab.ca,
    )
    with pytest.raises(ClientAuthenticationError):
        list(client.replication_fabrics.list(*vault))


def test_a_tampered_token_is_refused(arm_lab, responses):
    good = token(arm_lab)
    head, payload, sig = good.split(".")
    bad = f"{head}.{payload}.{sig[:-4]}AAAA"
    resp = get(arm_lab, f"{vault_path(arm_lab)}/replicationFabrics?{API}", responses, tok=bad)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_unsupported_api_version(arm_lab, vault):
    client = SiteRecoveryManagementClient(
        arm_lab.credential(),
        arm_lab.info["subscription_id"],
        base_url=arm_lab.arm_url,
        connection_verify=arm_lab.ca,
        api_version="2016-08-10",
    )
    with pytest.raises(HttpResponseError) as info:
        list(client.replication_fabrics.list(*vault))
    assert info.value.status_code == 400
    assert info.value.error.code == "InvalidApiVersionParameter"
    assert "2025-08-01" in info.value.error.message


def test_an_operation_not_emulated_answers_501_with_its_name(sdk, vault):
    with pytest.raises(HttpResponseError) as info:
        sdk.replication_recovery_plans.begin_reprotect(*vault, "plan").result()
    assert info.value.status_code == 501
    assert info.value.error.code == "NotImplemented"
    assert "ReplicationRecoveryPlans_Reprotect" in info.value.error.message
    with pytest.raises(HttpResponseError) as info:
        sdk.replication_network_mappings.get(*vault, "f", "n", "m")
    assert "ReplicationNetworkMappings_Get" in info.value.error.message


def test_unknown_path_and_method(arm_lab, responses):
    tok = token(arm_lab)
    resp = get(arm_lab, f"{vault_path(arm_lab)}/replicationNothing?{API}", responses, tok=tok)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "InvalidResourceType"
    resp = requests.delete(
        f"{arm_lab.arm_url}{vault_path(arm_lab)}/replicationJobs?{API}",
        headers={"Authorization": f"Bearer {tok}"},
        verify=arm_lab.ca,
        timeout=10,
    )
    assert resp.status_code == 405 and resp.json()["error"]["code"] == "HttpMethodNotAllowed"


def test_another_vault_or_group_is_404(sdk, vault):
    rg, _ = vault
    with pytest.raises(HttpResponseError) as info:
        list(sdk.replication_fabrics.list(rg, "no-such-vault"))
    assert info.value.status_code == 404
    with pytest.raises(HttpResponseError) as info:
        list(sdk.replication_fabrics.list("no-such-group", vault[1]))
    assert info.value.error.code == "ResourceGroupNotFound"


def test_long_running_answer_carries_both_headers_and_retry_after_1(arm_lab, responses):
    tok = token(arm_lab)
    body = {
        "properties": {
            "providerSpecificInput": {
                "instanceType": "InMageAzureV2",
                "multiVmSyncStatus": "Disable",
            }
        }
    }
    resp = requests.put(
        f"{arm_lab.arm_url}{vault_path(arm_lab)}/replicationPolicies/{unique('policy')}?{API}",
        json=body,
        headers={"Authorization": f"Bearer {tok}"},
        verify=arm_lab.ca,
        timeout=10,
    )
    responses.append(Record("PUT", resp.url, resp.status_code, resp.content))
    assert resp.status_code == 202
    assert resp.headers["Retry-After"] == "1"
    assert "/replicationOperationStatus/" in resp.headers["Azure-AsyncOperation"]
    job = resp.headers["Location"].split("/operationresults/")[1].split("?")[0]
    assert (
        resp.headers["Azure-AsyncOperation"]
        .split("/replicationOperationStatus/")[1]
        .startswith(job)
    )
    status = get(
        arm_lab,
        resp.headers["Azure-AsyncOperation"].replace(arm_lab.arm_url, ""),
        responses,
        tok=tok,
    ).json()
    assert status["name"] == job and status["status"] in ("InProgress", "Succeeded")
    job_resp = get(
        arm_lab, f"{vault_path(arm_lab)}/replicationJobs/{job}?{API}", responses, tok=tok
    )
    assert job_resp.json()["properties"]["scenarioName"] == "AddProtectionProfile"


def test_lists_page_with_next_links(sdk, vault, arm_lab, responses):
    rg, name = vault
    for _ in range(3):
        sdk.replication_policies.begin_create(rg, name, unique("page"), policy_input()).result()
    tok = token(arm_lab)
    first = get(
        arm_lab, f"{vault_path(arm_lab)}/replicationPolicies?{API}&$take=2", responses, tok=tok
    ).json()
    assert len(first["value"]) == 2 and "nextLink" in first
    second = get(arm_lab, first["nextLink"].replace(arm_lab.arm_url, ""), responses, tok=tok).json()
    assert {p["name"] for p in first["value"]}.isdisjoint(p["name"] for p in second["value"])
    everything = {p.name for p in sdk.replication_policies.list(rg, name)}
    assert {p["name"] for p in first["value"] + second["value"]} <= everything


def test_fault_rules_answer_by_operation_id_in_arm_error_json(sdk, vault, arm_lab):
    url = f"{arm_lab.arm_url}/_lab/faults"
    rule = {
        "operation": "ReplicationFabrics_List",
        "error": {"status": 503, "code": "ServiceUnavailable", "message": "injected"},
        "times": 5,
    }
    assert requests.post(url, json=[rule], verify=arm_lab.ca, timeout=10).status_code == 200
    try:
        with pytest.raises(HttpResponseError) as info:
            list(sdk.replication_fabrics.list(*vault, retry_total=0))
        assert info.value.status_code == 503
        assert info.value.error.code == "ServiceUnavailable"
        assert (
            list(sdk.replication_policies.list(*vault)) is not None
        )  # other operations unaffected
    finally:
        requests.delete(url, verify=arm_lab.ca, timeout=10)


def test_registration_with_a_wrong_key_creates_nothing(arm_lab, sdk, vault, responses):
    server = make_cs(arm_lab, responses)
    resp = server.register(key="not-the-key")
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "InvalidRegistrationKey"
    assert server.fabric not in {f.name for f in sdk.replication_fabrics.list(*vault)}


def test_the_provider_channel_answers_only_the_registered_server(arm_lab, cs, responses):
    operator = token(arm_lab)
    resp = cs.call("POST", f"{cs.channel}/heartbeat", {"health": "Normal"}, token=operator)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "AuthorizationFailed"
    resp = cs.call("POST", f"{cs.channel}/heartbeat", {"health": "Sunny"})
    assert resp.status_code == 400 and "health" in resp.json()["error"]["message"]


def test_vault_credentials_file(arm_lab):
    import json

    creds = json.loads(arm_lab.credentials_file.read_text())
    assert creds["vaultName"] == arm_lab.info["vault"]
    assert creds["vaultId"].endswith(f"/vaults/{arm_lab.info['vault']}")
    assert creds["armUrl"] == arm_lab.arm_url
    assert len(creds["registrationKey"]) >= 32
    assert arm_lab.credentials_file.stat().st_mode & 0o077 == 0
