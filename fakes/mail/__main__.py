"""The lab's mail sink: SMTP (aiosmtpd) on the launcher's extra `smtp` socket, HTTPS on its own
port for `/messages` and `/_lab/*`. Messages are kept in SQLite in the service's data directory.

Limits: plain SMTP on loopback (no STARTTLS, no AUTH), nothing is relayed, no IMAP/POP.
"""

from lab.kit import service

from .app import create_app
from .models import Mailbox
from .smtp import SmtpSink


def build(ctx: service.ServiceContext):
    mailbox = Mailbox(ctx.data_dir / "mail.sqlite3")
    sink = SmtpSink(mailbox, service.listening_socket("smtp"), clock=ctx.clock.time)
    sink.start()

    def stop():
        sink.stop()
        mailbox.close()

    return create_app(mailbox, sink.address), stop


if __name__ == "__main__":
    service.run(build)
