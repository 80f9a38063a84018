"""What `drlab env` exports: the variables users' scripts and the Azure SDKs read.

Computed once from the lab's topology and endpoints when the lab comes up, and stored in
lab.json, so a script sees exactly what the lab serves.
"""

from __future__ import annotations

from .topology import Topology


def lab_environment(topology: Topology, state_dir: str, bundle: str, urls: dict) -> dict:
    operator = next(p for p in topology.entra.principals if p.name == topology.azure.operator)
    env = {
        "DRLAB_STATE_DIR": state_dir,
        "REQUESTS_CA_BUNDLE": bundle,
        "SSL_CERT_FILE": bundle,
        "AZURE_AUTHORITY_HOST": urls["entra"],
        "AZURE_TENANT_ID": topology.entra.tenant_id,
        "AZURE_CLIENT_ID": operator.client_id,
        "AZURE_CLIENT_SECRET": operator.secret,
        "AZURE_SUBSCRIPTION_ID": topology.azure.subscription_id,
        "DRLAB_RESOURCE_GROUP": topology.azure.resource_group,
        "DRLAB_VAULT": topology.azure.vault,
        "DRLAB_ENTRA_URL": urls["entra"],
    }
    if "azurite" in urls:
        env["DRLAB_BLOB_URL"] = f"{urls['azurite']}/{topology.cache_account().name}"
    return env
