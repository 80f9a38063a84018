from lab.kit import service
from lab.kit.control import LabControl
from lab.kit.web import create_app

from .server import MasterTarget


def build(ctx: service.ServiceContext):
    mt = MasterTarget(ctx).start()
    control = LabControl(name=ctx.name, ready=mt.ready, state=mt.health)
    return create_app(__name__, control), mt.stop


if __name__ == "__main__":
    service.run(build)
