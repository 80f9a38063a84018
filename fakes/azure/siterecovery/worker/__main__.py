from lab.kit import service

from .app import create_app
from .worker import SiteRecoveryWorker


def build(ctx: service.ServiceContext):
    worker = SiteRecoveryWorker(ctx).start()
    return create_app(worker), worker.stop


if __name__ == "__main__":
    service.run(build)
