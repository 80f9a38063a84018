from lab.kit import service

from .app import create_app
from .server import ProcessServer


def build(ctx: service.ServiceContext):
    server = ProcessServer(ctx).start()
    return create_app(server), server.stop


if __name__ == "__main__":
    service.run(build)
