"""The real Azure SDKs against a running lab: azure-identity on Entra, azure-storage-blob on
Azurite with OAuth tokens (not the account key)."""

import uuid

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientSecretCredential
from azure.storage.blob import BlobServiceClient


def test_client_secret_credential_gets_a_token(shared_lab):
    token = shared_lab.credential().get_token("https://management.azure.com/.default")
    assert token.token.count(".") == 2
    assert token.expires_on > 0


def test_wrong_secret_fails_with_entras_message(shared_lab):
    cred = ClientSecretCredential(
        shared_lab.info["tenant_id"],
        shared_lab.env["AZURE_CLIENT_ID"],
        "not-the-secret",
        authority=shared_lab.url("entra"),
        disable_instance_discovery=True,
        connection_verify=shared_lab.ca,
    )
    with pytest.raises(ClientAuthenticationError) as info:
        cred.get_token("https://management.azure.com/.default")
    assert "AADSTS7000215" in str(info.value)


def test_blob_round_trip_with_oauth(shared_lab):
    service = BlobServiceClient(
        shared_lab.env["DRLAB_BLOB_URL"],
        credential=shared_lab.credential(),
        connection_verify=shared_lab.ca,
    )
    container = service.create_container(f"t-{uuid.uuid4().hex[:12]}")
    try:
        container.upload_blob("greeting", b"hello from the lab")
        assert container.download_blob("greeting").readall() == b"hello from the lab"
    finally:
        container.delete_container()


def test_blob_request_without_token_is_refused(shared_lab):
    resp = requests.get(
        f"{shared_lab.env['DRLAB_BLOB_URL']}?comp=list", verify=shared_lab.ca, timeout=10
    )
    assert resp.status_code in (401, 403)


def test_blob_token_for_another_audience_is_refused(shared_lab):
    arm_token = shared_lab.credential().get_token("https://management.azure.com/.default").token

    class Fixed:
        def get_token(self, *scopes, **kwargs):
            from azure.core.credentials import AccessToken

            return AccessToken(arm_token, 2**31)

    service = BlobServiceClient(
        shared_lab.env["DRLAB_BLOB_URL"], credential=Fixed(), connection_verify=shared_lab.ca
    )
    with pytest.raises(HttpResponseError) as info:
        service.create_container(f"t-{uuid.uuid4().hex[:12]}")
    assert info.value.status_code in (401, 403)


def test_every_endpoint_is_https_with_the_lab_ca(shared_lab):
    for name, info in shared_lab.info["services"].items():
        assert info["url"].startswith("https://127.0.0.1:"), name
    health = requests.get(f"{shared_lab.url('entra')}/_lab/health", verify=shared_lab.ca, timeout=5)
    assert health.json()["status"] == "ok"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{shared_lab.url('entra')}/_lab/health", verify=True, timeout=5)
