"""Logging for lab services: one line per event, the request id on every line.

A service's stdout and stderr go to `<state>/logs/<service>.log` (the launcher opens it), so
logging to stderr is logging to the file. Secrets never go into a log: log names and ids.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure(service: str) -> None:
    level = os.environ.get("DRLAB_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        logging.Formatter(
            f"%(asctime)s %(levelname)s {service} %(name)s [%(request_id)s] %(message)s"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Client libraries are chatty at INFO (every HTTP request and header); keep them quiet.
    for noisy in ("azure", "urllib3", "msal", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
