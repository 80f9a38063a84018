"""The SMTP side of the mail sink: aiosmtpd on the socket the launcher bound (127.0.0.1 only),
in its own thread and event loop, storing every accepted message in the `Mailbox`.

Plain SMTP, no STARTTLS and no AUTH: the socket is on loopback and the sink delivers nowhere;
it only keeps what it is given, for drills and tests to read back.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable

from aiosmtpd.smtp import SMTP

from .models import Mailbox

log = logging.getLogger(__name__)
# aiosmtpd logs every SMTP command at INFO; the sink logs one line per message instead.
logging.getLogger("mail.log").setLevel(logging.WARNING)

HOSTNAME = "mail.drlab.local"  # given explicitly: aiosmtpd's default is a DNS lookup of our name


class _Handler:
    def __init__(self, mailbox: Mailbox, clock: Callable[[], float]):
        self.mailbox = mailbox
        self.clock = clock

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content or b""
        try:
            message_id = self.mailbox.add(
                raw, envelope.mail_from or "", list(envelope.rcpt_tos), self.clock()
            )
        except Exception:
            log.exception("a message from %s could not be stored", envelope.mail_from)
            return "451 Requested action aborted: error in processing"
        log.info(
            "mail %s accepted from %s for %s (%d bytes)",
            message_id,
            envelope.mail_from,
            ", ".join(envelope.rcpt_tos),
            len(raw),
        )
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, mailbox: Mailbox, sock: socket.socket, clock: Callable[[], float]):
        self._handler = _Handler(mailbox, clock)
        self._sock = sock
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self._sock.getsockname()[:2]

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._run, name="smtp", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("the SMTP server did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the SMTP server did not start: {self._error}") from self._error
        log.info("SMTP listening on %s:%s", *self.address)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            server = self._loop.run_until_complete(
                self._loop.create_server(
                    lambda: SMTP(
                        self._handler, hostname=HOSTNAME, ident="drlab mail sink", loop=self._loop
                    ),  # fmt: skip
                    sock=self._sock,
                )
            )
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    def stop(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
