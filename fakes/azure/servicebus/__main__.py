"""Fake Azure Service Bus: send, batch send, peek-lock, receive-and-delete, complete, unlock and
renew lock over the REST runtime API, with SAS and Entra bearer auth. Messages are kept in
SQLite in the service's data directory and survive a restart.

Limits: see models.py (no sessions, filters, transactions, deferral, entity management).
"""

from lab.kit import service

from .app import create_app
from .auth import AUDIENCE, Authorizer
from .models import Broker


def build(ctx: service.ServiceContext):
    spec = ctx.topology["servicebus"]
    broker = Broker(spec, ctx.data_dir / "messages.sqlite3")
    authorizer = Authorizer(
        spec["namespace"],
        spec.get("sas_rules", []),
        bearer=ctx.token_validator(AUDIENCE, AUDIENCE + "/"),
    )
    return create_app(broker, authorizer), broker.close


if __name__ == "__main__":
    service.run(build)
