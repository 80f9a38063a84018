"""`python -m fakes.vcenter`: the fake vCenter/ESXi as a lab service."""

from lab.kit import service

from .app import create_app
from .models import VCenter


def build(ctx: service.ServiceContext):
    vcenter = VCenter(
        topology=ctx.topology,
        state_dir=ctx.state_dir,
        data_dir=ctx.data_dir,
        clock=ctx.clock,
        public_url=ctx.service["url"],
    )
    app = create_app(vcenter)
    vcenter.start()
    return app, vcenter.stop


if __name__ == "__main__":
    service.run(build)
