"""What `drlab env` exports: the variables users' scripts and the Azure SDKs read.

Computed once from the lab's topology and endpoints when the lab comes up, and stored in
lab.json, so a script sees exactly what the lab serves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .topology import Topology


def lab_environment(
    topology: Topology, state_dir: str, bundle: str, urls: dict, extra_ports: dict | None = None
) -> dict:
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
    if "arm" in urls:
        env["DRLAB_ARM_URL"] = urls["arm"]
    if "azurite" in urls:
        env["DRLAB_BLOB_URL"] = f"{urls['azurite']}/{topology.cache_account().name}"
    if "azurite-disks" in urls and topology.disks_account() is not None:
        env["DRLAB_DISKS_BLOB_URL"] = f"{urls['azurite-disks']}/{topology.disks_account().name}"
    if "servicebus" in urls:
        env["DRLAB_SERVICEBUS_URL"] = urls["servicebus"]
    if "links" in urls:
        env["DRLAB_LINKS_URL"] = urls["links"]  # the link proxies' API (Toxiproxy's)
    if "mail" in urls:
        env["DRLAB_MAIL_URL"] = urls["mail"]
        smtp = (extra_ports or {}).get("mail", {}).get("smtp")
        if smtp:
            env["DRLAB_SMTP_HOST"] = "127.0.0.1"
            env["DRLAB_SMTP_PORT"] = str(smtp)
    if "vcenter" in urls and topology.vcenter is not None:
        env["DRLAB_VCENTER_URL"] = f"{urls['vcenter']}/sdk"
        env["DRLAB_VCENTER_USER"] = topology.vcenter.user
        env["DRLAB_VCENTER_PASSWORD"] = topology.vcenter.password
    return env
