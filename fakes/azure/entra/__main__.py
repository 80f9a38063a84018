from lab.kit import service

from .app import create_app
from .models import Directory


def build(ctx: service.ServiceContext):
    directory = Directory(ctx.topology["entra"], ctx.pki.signing_key())
    return create_app(directory), None


if __name__ == "__main__":
    service.run(build)
