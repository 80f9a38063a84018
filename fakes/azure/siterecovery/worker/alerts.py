"""Monitoring from the worker: events on the lab's Service Bus and alert e-mails.

Every event goes to the topic `asr-events` (label = event type, JSON body); RPO alerts also go
to the queue `asr-alerts` when the topology has it, and by e-mail to the mail sink. Publishing
never blocks the data path: the Service Bus publisher queues and sends from its own thread,
and e-mail is sent from a single background thread here.

Not here: deciding when to alert (`status.py`), retries (monitoring is best effort).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from lab.kit.mail import send_mail
from lab.kit.monitoring import EventPublisher

log = logging.getLogger(__name__)

EVENTS_TOPIC = "asr-events"
ALERTS_QUEUE = "asr-alerts"


class Monitor:
    def __init__(self, ctx):
        self.ctx = ctx
        self.events = EventPublisher.for_lab(ctx, EVENTS_TOPIC, source=ctx.name)
        queues = {q["name"] for q in (ctx.topology.get("servicebus") or {}).get("queues", [])}
        self.alerts = (
            EventPublisher.for_lab(ctx, ALERTS_QUEUE, source=ctx.name)
            if ALERTS_QUEUE in queues
            else None
        )
        self._mailer = ThreadPoolExecutor(1, thread_name_prefix="alert-mail")
        self.mails_sent = 0

    def publish(self, event_type: str, data: dict, **properties) -> None:
        if self.events is not None:
            self.events.publish(event_type, data, **properties)

    def alert(self, event_type: str, data: dict, subject: str, body: str, **properties) -> None:
        """An alert: the topic, the alerts queue and an e-mail."""
        self.publish(event_type, data, **properties)
        if self.alerts is not None:
            self.alerts.publish(event_type, data, **properties)
        self._mailer.submit(self._mail, subject, body, event_type)

    def _mail(self, subject: str, body: str, event_type: str) -> None:
        if send_mail(self.ctx, subject, body, headers={"X-Drlab-Event": event_type}):
            self.mails_sent += 1

    def stats(self) -> dict:
        return {
            "events": self.events.stats() if self.events else None,
            "alerts": self.alerts.stats() if self.alerts else None,
            "mails_sent": self.mails_sent,
        }

    def close(self) -> None:
        self._mailer.shutdown(wait=True, cancel_futures=False)
        for publisher in (self.events, self.alerts):
            if publisher is not None:
                publisher.close(timeout=2.0)
