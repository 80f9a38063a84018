"""The one ordered handler chain every HTTP fake gets: request id, faults, access log, control.

Services build their Flask app with `create_app(...)` and add their own routes; they never
repeat these cross-cutting steps in their views.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from flask import Flask, Response, g, jsonify, request

from . import logs
from .control import LabControl, control_blueprint
from .faults import FaultError

log = logging.getLogger("lab.access")
_PROBES = ("/_lab/ready", "/_lab/health")

FaultResponder = Callable[[FaultError], Response]


def json_fault(error: FaultError):
    body = {"error": {"code": error.code, "message": error.message}}
    return jsonify(body), error.status


def create_app(
    import_name: str,
    control: LabControl,
    *,
    fault_response: FaultResponder = json_fault,
    operation_of: Callable[[], str | None] | None = None,
) -> Flask:
    """A Flask app with the lab's handler chain and control API mounted.

    `operation_of` names the operation of the current request for fault rules (default: the
    Flask endpoint name). Return None to let the view apply faults itself (e.g. SOAP, where
    the operation is inside the body).
    """
    app = Flask(import_name)
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False
    app.extensions["lab_control"] = control

    @app.before_request
    def _begin():
        rid = (
            request.headers.get("x-ms-client-request-id")
            or request.headers.get("x-request-id")
            or uuid.uuid4().hex
        )
        g.request_id = rid
        g.started = time.perf_counter()
        logs.request_id.set(rid[:36])
        if request.path.startswith("/_lab/"):
            return None
        operation = operation_of() if operation_of else request.endpoint
        if operation:
            error = control.faults.apply(operation)
            if error is not None:
                log.info("fault rule answers %s with %s", operation, error.code)
                return fault_response(error)
        return None

    @app.after_request
    def _end(response):
        rid = getattr(g, "request_id", None)
        if rid:
            response.headers.setdefault("x-ms-request-id", rid)
        started = getattr(g, "started", None)
        # Probes (the launcher polls readiness every few ms while starting) log at debug.
        level = logging.DEBUG if request.path in _PROBES else logging.INFO
        if started is not None and log.isEnabledFor(level):
            log.log(
                level,
                "%s %s -> %s (%.1f ms)",
                request.method,
                request.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
        return response

    app.register_blueprint(control_blueprint(control))
    return app
