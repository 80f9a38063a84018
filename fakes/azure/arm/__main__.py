"""`python -m fakes.azure.arm`: the ARM front with Site Recovery, Compute and Network mounted
(started by the launcher).

Seeds the vault from the topology (subscription, resource group, vault, region), writes the
vault credentials file at `<state>/services/arm/vault.credentials`, starts the job runner.
Opens Compute and Network on `<state>/services/arm/resources.db`, seeds the topology's
virtual networks, and re-adopts (or powers back on) the VMs recorded running. Starts the
automatic resync scheduler with the topology's `replication.resync_window`.
"""

from fakes.azure.arm.resource_ids import ResourceScope
from fakes.azure.arm.resource_store import ResourceStore
from fakes.azure.compute import app as compute_app
from fakes.azure.compute.compute import Compute
from fakes.azure.compute.disk_storage import DiskStorage
from fakes.azure.compute.guests import GuestDefaults
from fakes.azure.network import app as network_app
from fakes.azure.network.network import Network
from fakes.azure.siterecovery import ids
from fakes.azure.siterecovery.app import SiteRecovery
from fakes.azure.siterecovery.models.resync_schedule import ResyncScheduler
from fakes.azure.siterecovery.models.vault import CREDENTIALS_FILE, Vault
from lab.kit import service
from lab.kit.control import LabControl

from .front import ARM_AUDIENCE, ArmFront

RESOURCES_DB = "resources.db"


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
    resources = ResourceStore(ctx.data_dir / RESOURCES_DB)
    resource_scope = ResourceScope.from_topology(ctx.topology)
    network = Network.open(resources, resource_scope, azure.get("networks") or [])
    compute = Compute(
        resources,
        resource_scope,
        network,
        DiskStorage.for_lab(ctx),
        ctx.clock,
        ctx.state_dir,
        GuestDefaults.from_topology(ctx.topology),
    )
    # Failover (Site Recovery's handlers) drives Compute and Network in-process.
    vault.compute, vault.network = compute, network
    vault.state_dir = ctx.state_dir  # plans' script actions: <state>/scripts
    front = ArmFront(
        ctx.token_validator(ARM_AUDIENCE), authorization_uri=f"{ctx.authority}/{ctx.tenant_id}"
    )
    front.mount(site_recovery.mount())
    front.mount(compute_app.mount(compute))
    front.mount(network_app.mount(network))

    def reset():
        vault.reset()
        compute.reset()  # VMs hold NICs: compute first
        network.reset()

    def state():
        return {**vault.state(), "compute": compute.state(), "network": network.state()}

    def stop():
        compute.close()  # guests keep running; the next start re-adopts them
        vault.close()
        resources.close()

    control = LabControl(
        name=ctx.name,
        ready=lambda: (True, "vault seeded, job runner started"),
        reset=reset,
        state=state,
    )
    app = front.create_app(control)
    vault.jobs.start_runner()
    # Automatic resync in the topology's off-hours window of lab time.
    vault.resync_scheduler = ResyncScheduler.from_topology(vault, ctx.topology)
    vault.resync_scheduler.start()
    compute.start()
    return app, stop


if __name__ == "__main__":
    service.run(build)
