"""Monitoring events: how lab services publish to the lab's Service Bus (the role of
*.servicebus.windows.net in the seed), and Service Bus SAS tokens.

`EventPublisher.for_lab(ctx)` gives a publisher for a topic of the lab's namespace (default
`asr-events`), signed with the topology's first SAS rule that may Send, over HTTPS with the lab
CA. `publish(event_type, data, **properties)` never blocks and never raises: it queues the event
(JSON body, Label = event type, custom properties) for a background thread that sends queued
events in batches. When the queue is full, or the service answers an error or cannot be
reached, events are dropped and logged (at most once every `LOG_EVERY` drops), and counted in
`stats()`. Monitoring must never slow or break the data path it watches.

Not here: retries (a dropped event is gone: monitoring is best effort, as the seed's is),
ordering across publishers, receiving (tests and users receive with the REST API directly).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path
from urllib.parse import quote_plus

log = logging.getLogger(__name__)

DEFAULT_TOPIC = "asr-events"
BATCH_CONTENT_TYPE = "application/vnd.microsoft.servicebus.json"
MAX_PENDING = 1000
MAX_BATCH = 50
TOKEN_LIFETIME = 3600
LOG_EVERY = 100


def sas_token(resource_uri: str, key_name: str, key: str, *, lifetime=TOKEN_LIFETIME, now=None):
    """A Service Bus `SharedAccessSignature ...` Authorization value for `resource_uri` (an
    entity URL or a namespace URL; it scopes the token), valid `lifetime` seconds."""
    expiry = str(int((now if now is not None else time.time()) + lifetime))
    sr = quote_plus(resource_uri.lower())
    digest = hmac.new(key.encode("utf-8"), f"{sr}\n{expiry}".encode(), hashlib.sha256).digest()
    sig = quote_plus(base64.b64encode(digest).decode())
    return f"SharedAccessSignature sr={sr}&sig={sig}&se={expiry}&skn={key_name}"


def _lab_sources(lab_or_ctx) -> tuple[dict, dict]:
    """(lab.json, topology) from a ServiceContext, a lab.json dict or a state directory."""
    from .labinfo import read_lab, read_topology

    if hasattr(lab_or_ctx, "lab") and hasattr(lab_or_ctx, "topology"):
        return lab_or_ctx.lab, lab_or_ctx.topology
    if isinstance(lab_or_ctx, dict):
        return lab_or_ctx, read_topology(lab_or_ctx["state_dir"])
    state_dir = Path(lab_or_ctx)
    return read_lab(state_dir), read_topology(state_dir)


class EventPublisher:
    def __init__(
        self,
        base_url: str,
        entity: str,
        key_name: str,
        key: str,
        ca_bundle: str | None,
        *,
        source: str | None = None,
        max_pending: int = MAX_PENDING,
        timeout: float = 5.0,
    ):
        self.url = f"{base_url.rstrip('/')}/{entity}/messages"
        self.resource = f"{base_url.rstrip('/')}/{entity}"
        self.entity = entity
        self.source = source
        self._key_name, self._key = key_name, key
        self._verify = ca_bundle if ca_bundle else True
        self._timeout = timeout
        self._pending: deque = deque()
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._token: tuple[str, float] | None = None
        self._session = None
        self.sent = self.dropped = self.failed = 0

    @classmethod
    def for_lab(
        cls, lab_or_ctx, topic: str = DEFAULT_TOPIC, source: str | None = None
    ) -> EventPublisher | None:
        """A publisher for a topic (or queue) of the lab's Service Bus; None when the lab has
        no Service Bus or no rule that may send (logged, never raised)."""
        try:
            lab, topology = _lab_sources(lab_or_ctx)
            spec = topology.get("servicebus")
            service = lab.get("services", {}).get("servicebus")
            if not spec or not service:
                log.info("no Service Bus in this lab: monitoring events are not published")
                return None
            rule = next(
                (r for r in spec.get("sas_rules", []) if {"Send", "Manage"} & set(r["rights"])),
                None,
            )
            if rule is None:
                log.warning("no SAS rule of the Service Bus may Send: events are not published")
                return None
            return cls(
                service["url"],
                topic,
                rule["name"],
                rule["key"],
                lab.get("ca_cert"),
                source=source or getattr(lab_or_ctx, "name", None),
            )
        except Exception:
            log.exception("monitoring publisher could not be set up; events are not published")
            return None

    # -- the caller's side: never blocks, never raises -------------------------------------------
    def publish(self, event_type: str, data=None, **properties) -> bool:
        """Queue an event; False if it was dropped (queue full or publisher closed)."""
        try:
            item = {
                "Body": json.dumps(data if data is not None else {}, default=str),
                "BrokerProperties": {"Label": event_type, "MessageId": os.urandom(16).hex()},
                "UserProperties": _user_properties(
                    {"EventType": event_type, "Source": self.source, **properties}
                ),
            }
            with self._cond:
                if self._closed or len(self._pending) >= self._max_pending:
                    self._drop(1, "the publisher's queue is full" if not self._closed else "closed")
                    return False
                self._pending.append(item)
                self._ensure_thread()
                self._cond.notify_all()
            return True
        except Exception:
            log.exception("monitoring event %s dropped", event_type)
            return False

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was sent or dropped; False at the deadline."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._session is not None:
            self._session.close()

    def stats(self) -> dict:
        with self._cond:
            return {
                "sent": self.sent,
                "dropped": self.dropped,
                "failed": self.failed,
                "pending": len(self._pending),
            }

    # -- the background side ----------------------------------------------------------------------
    def _drop(self, count: int, why: str) -> None:
        before = self.dropped
        self.dropped += count
        if before // LOG_EVERY != self.dropped // LOG_EVERY or before == 0:
            log.warning("%d monitoring event(s) dropped (%d in all): %s", count, self.dropped, why)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name=f"monitoring-{self.entity}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed and not self._pending:
                    return
                batch = [self._pending.popleft() for _ in range(min(MAX_BATCH, len(self._pending)))]
                self._in_flight = len(batch)
            error = self._send(batch)
            with self._cond:
                self._in_flight = 0
                if error is None:
                    self.sent += len(batch)
                else:
                    self.failed += len(batch)
                    self._drop(len(batch), error)
                self._cond.notify_all()

    def _authorization(self) -> str:
        now = time.time()
        if self._token is None or self._token[1] - now < 300:
            token = sas_token(self.resource, self._key_name, self._key, now=now)
            self._token = (token, now + TOKEN_LIFETIME)
        return self._token[0]

    def _send(self, batch: list[dict]) -> str | None:
        """None when sent, else why not."""
        try:
            import requests

            if self._session is None:
                self._session = requests.Session()
            response = self._session.post(
                self.url,
                data=json.dumps(batch).encode(),
                headers={
                    "Authorization": self._authorization(),
                    "Content-Type": BATCH_CONTENT_TYPE,
                },
                verify=self._verify,
                timeout=self._timeout,
            )
        except Exception as exc:  # any failure to reach the bus is a drop
            return f"Service Bus unreachable: {type(exc).__name__}: {exc}"
        if response.status_code != 201:
            return f"Service Bus answered {response.status_code}: {response.text[:200]}"
        return None


def _user_properties(properties: dict) -> dict:
    """Custom properties travel as HTTP headers: strings, numbers and booleans only."""
    out = {}
    for name, value in properties.items():
        if value is None:
            continue
        out[name] = value if isinstance(value, (str, int, float, bool)) else str(value)
    return out
