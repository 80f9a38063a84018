"""`python -m fakes.azure.arm`: the ARM front with Site Recovery mounted (started by the launcher).

Seeds the vault from the topology (subscription, resource group, vault, region), writes the
vault credentials file at `<state>/services/arm/vault.credentials`, starts the job runner.
"""

from fakes.azure.siterecovery import ids
from fakes.azure.siterecovery.app import SiteRecovery
from fakes.azure.siterecovery.models.vault import CREDENTIALS_FILE, Vault
from lab.kit import service
from lab.kit.control import LabControl

from .front import ARM_AUDIENCE, ArmFront


def build(ctx: service.ServiceContext):
    azure = ctx.topology["azure"]
    scope = ids.VaultScope(
        azure["subscription_id"],
        azure["resource_group"],
        azure["vault"],
        azure.get("location", "westeurope"),
    )
    vault = Vault.open(ctx.data_dir, ctx.clock, scope)
    vault.write_credentials(ctx.data_dir / CREDENTIALS_FILE, arm_url=ctx.url(ctx.name))
    site_recovery = SiteRecovery(vault, ctx.stop_event)
    front = ArmFront(
        ctx.token_validator(ARM_AUDIENCE), authorization_uri=f"{ctx.authority}/{ctx.tenant_id}"
    )
    front.mount(site_recovery.mount())
    control = LabControl(
        name=ctx.name,
        ready=lambda: (True, "vault seeded, job runner started"),
        reset=vault.reset,
        state=vault.state,
    )
    app = front.create_app(control)
    vault.jobs.start_runner()
    return app, vault.close


if __name__ == "__main__":
    service.run(build)
