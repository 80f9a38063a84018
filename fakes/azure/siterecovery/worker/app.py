"""HTTP side of the worker: the lab's control API plus its own lab routes (thin views).

GET  /_lab/state       per VM: epoch, streams (applied, pending, gaps), initial
                       replication, RPO, last recovery point
GET  /_lab/ready       503 until the cache and disks storage accounts answer
POST /_lab/verify      {"vm", "point": "<name>|latest", "application": "auto|required|skip"}
POST /_lab/verify-ledger {"sender": {"vm", "point"|"failover"}, "receiver": {...}}: the
                       ledger pair's invariant at two VMs' points (multi-VM consistency)
GET|PUT /_lab/settings the worker's intervals and grace periods
POST /_lab/faults      rules by the worker's own operation names: list, download, apply,
                       snapshot, record, delete, resize, create_seed, recovery_point,
                       prune, verify
"""

from __future__ import annotations

from flask import jsonify, request

from lab.kit.control import LabControl
from lab.kit.web import create_app as create_lab_app

from .errors import BadRequest, InjectedFault, WorkerError
from .point_check import verify_ledger_pair, verify_recovery_point


def create_app(worker):
    control = LabControl(
        name=worker.ctx.name,
        ready=worker.ready,
        reset=worker.reset,
        state=worker.state,
        faults=worker.faults,
    )
    # The lab routes below are the only HTTP surface; fault rules name the worker's own steps.
    app = create_lab_app(__name__, control, operation_of=lambda: None)

    @app.errorhandler(WorkerError)
    def _worker_error(exc: WorkerError):
        return jsonify(exc.body()), exc.status

    @app.errorhandler(InjectedFault)
    def _injected(exc: InjectedFault):
        return jsonify(exc.body()), exc.status

    def _body() -> dict:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return body

    @app.post("/_lab/verify")
    def verify():
        return jsonify(verify_recovery_point(worker, _body()))

    @app.post("/_lab/verify-ledger")
    def verify_ledger():
        """Multi-VM consistency: a ledger pair's invariant at two VMs' points."""
        return jsonify(verify_ledger_pair(worker, _body()))

    @app.post("/_lab/flush")
    def flush():
        """Send every seed disk's pending changes to its page blob now (they go at each
        recovery point and every few seconds anyway)."""
        if worker.seeds is None:
            raise BadRequest("the storage accounts are not connected yet")
        before = worker.seeds.flushed_bytes
        worker.seeds.flush_all()
        return jsonify({"flushed_bytes": worker.seeds.flushed_bytes - before})

    @app.get("/_lab/settings")
    def settings_get():
        return jsonify(worker.settings.to_json())

    @app.route("/_lab/settings", methods=["PUT", "PATCH"])
    def settings_put():
        worker.settings.update(_body(), persist=worker.progress)
        return jsonify(worker.settings.to_json())

    return app
