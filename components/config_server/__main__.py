from lab.kit import service

from .app import create_app
from .server import ConfigServer


def build(ctx: service.ServiceContext):
    server = ConfigServer(ctx).start()
    return create_app(server), server.stop


if __name__ == "__main__":
    service.run(build)
