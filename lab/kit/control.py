"""The control API every fake mounts: /_lab/health, ready, reset, state, faults.

A service hands in a `LabControl` (what "ready", "reset" and "state" mean for it) and its
`FaultRules`; this module owns the HTTP side so that every fake answers the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Blueprint, jsonify, request

from .faults import FaultRuleError, FaultRules


@dataclass
class LabControl:
    """What the control API asks of a service; every hook is optional."""

    name: str
    ready: Callable[[], tuple[bool, str]] = lambda: (True, "ready")
    reset: Callable[[], None] = lambda: None
    state: Callable[[], dict] = dict
    health: Callable[[], dict] = dict
    faults: FaultRules = field(default_factory=FaultRules)


def control_blueprint(control: LabControl) -> Blueprint:
    bp = Blueprint("lab_control", __name__, url_prefix="/_lab")

    @bp.get("/health")
    def health():
        return jsonify({"service": control.name, "status": "ok", **control.health()})

    @bp.get("/ready")
    def ready():
        ok, detail = control.ready()
        body = {"service": control.name, "ready": ok, "detail": detail}
        return jsonify(body), 200 if ok else 503

    @bp.post("/reset")
    def reset():
        control.faults.clear()
        control.reset()
        return jsonify({"service": control.name, "reset": True})

    @bp.get("/state")
    def state():
        return jsonify({"service": control.name, **control.state()})

    @bp.get("/faults")
    def faults_get():
        return jsonify({"rules": control.faults.list()})

    @bp.route("/faults", methods=["POST", "PUT", "PATCH"])
    def faults_set():
        try:
            rules = FaultRules.parse_list(request.get_json(force=True, silent=False))
        except FaultRuleError as exc:
            return jsonify({"error": {"code": "InvalidFaultRule", "message": str(exc)}}), 400
        except Exception:
            return jsonify(
                {"error": {"code": "InvalidJson", "message": "the body is not valid JSON"}}
            ), 400
        if request.method == "PATCH":
            control.faults.extend(rules)
        else:
            control.faults.replace(rules)
        return jsonify({"rules": control.faults.list()})

    @bp.delete("/faults")
    def faults_delete():
        operation = request.args.get("operation")
        control.faults.clear(operation)
        return jsonify({"rules": control.faults.list()})

    return bp
