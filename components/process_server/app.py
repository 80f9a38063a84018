"""HTTPS routes of the process server (the role of its port 9443), for mobility agents."""

from __future__ import annotations

import json
import time

from azure.core.exceptions import AzureError, ResourceNotFoundError
from flask import Response, jsonify, request

from components import agent_tokens
from components import resync as resync_names
from lab.kit import wire
from lab.kit.control import LabControl
from lab.kit.web import create_app as create_lab_app

from .cache import CacheFull
from .uploader import MANIFEST_DISK


def _error(status: int, code: str, message: str, retry_after: float | None = None):
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    if retry_after is not None:
        resp.headers["Retry-After"] = str(retry_after)
    return resp


def create_app(server):
    control = LabControl(name=server.name, ready=server.ready, state=server.health)
    app = create_lab_app(__name__, control)

    def _agent():
        if server.agent_token_key is None:
            return None, _error(503, "NotRegistered", "the process server is not registered yet", 1)
        try:
            return agent_tokens.from_header(
                server.agent_token_key, request.headers.get("Authorization")
            ), None
        except agent_tokens.AgentTokenError as exc:
            return None, _error(401, "AgentNotAuthenticated", str(exc))

    @app.post("/v1/differentials")
    def differentials():
        agent, err = _agent()
        if err is not None:
            return err
        body = request.get_data()
        try:
            message = wire.decode(body)
        except wire.WireError as exc:
            # A damaged differential is refused with the reason; the agent still has it.
            return _error(400, "CorruptDifferential", f"{type(exc).__name__}: {exc}")
        if message.vm_id != agent.vm_id:
            return _error(403, "WrongVm", "an agent may only send its own VM's differentials")
        try:
            server.cache.admit(
                message.vm_id, message.disk_id, message.first_sequence, message.last_sequence, body
            )
        except CacheFull as exc:
            # Back-pressure: nothing is dropped, the agent waits and sends again.
            return _error(503, "CacheFull", str(exc), retry_after=1)
        server.vms_seen.add(message.vm_id)
        server.uploader.notify()
        return jsonify(
            {
                "acknowledged": [message.first_sequence, message.last_sequence],
                "disk_id": message.disk_id,
            }
        )

    @app.post("/v1/manifests")
    def manifests():
        """Control records for the Azure side (docs/data-path.md): initial replication plans
        and verify-mode manifests, uploaded as JSON next to the logs."""
        agent, err = _agent()
        if err is not None:
            return err
        body = request.get_json(silent=True)
        kinds = ("ir-plan", "rs-plan", "manifest")
        if not isinstance(body, dict) or body.get("kind") not in kinds:
            return _error(400, "BadManifest", f"a control record's kind is one of {kinds}")
        if body.get("vm_id") != agent.vm_id:
            return _error(403, "WrongVm", "an agent may only send its own VM's records")
        if body["kind"] == "rs-plan" and (
            not isinstance(body.get("generation"), int) or body["generation"] < 1
        ):
            return _error(400, "BadManifest", "a resync plan has a generation of 1 or more")
        name = {
            "ir-plan": f"ir-plan-{body.get('epoch')}",
            "rs-plan": f"rs-plan-{body.get('epoch')}-{body.get('generation')}",
        }.get(body["kind"], body.get("tag_id"))
        if not name or not body.get("epoch") or "/" in name:
            return _error(400, "BadManifest", "an epoch (and a tag_id for a manifest) is needed")
        body["name"] = name
        seq = time.time_ns()  # orders control records among themselves
        try:
            server.cache.admit(agent.vm_id, MANIFEST_DISK, seq, seq, json.dumps(body).encode())
        except CacheFull as exc:
            return _error(503, "CacheFull", str(exc), retry_after=1)
        server.uploader.notify()
        return jsonify({"acknowledged": name})

    # -- resync: the Azure side's checksums, read for the agent -------------------------------
    def _read_blob(name: str):
        try:
            return server.uploader.container.download_blob(name).readall(), None
        except ResourceNotFoundError:
            return None, None
        except AzureError as exc:  # the link to Azure is down, or storage is away
            return None, _error(503, "StorageUnavailable", f"the cache storage account: {exc}", 1)

    @app.get("/v1/resync/<epoch>/<int:generation>")
    def resync_index(epoch: str, generation: int):
        agent, err = _agent()
        if err is not None:
            return err
        data, err = _read_blob(resync_names.index_blob(agent.vm_id, epoch, generation))
        if err is not None:
            return err
        if data is None:
            return _error(404, "ResyncNotReady", "the Azure side has not published its checksums")
        return Response(data, mimetype="application/json")

    @app.get("/v1/resync/<epoch>/<int:generation>/disks/<int:disk>/sums/<int:first>")
    def resync_sums(epoch: str, generation: int, disk: int, first: int):
        agent, err = _agent()
        if err is not None:
            return err
        name = resync_names.sums_blob(agent.vm_id, epoch, generation, disk, first)
        data, err = _read_blob(name)
        if err is not None:
            return err
        if data is None:
            return _error(404, "ChecksumsNotFound", f"no checksum batch {name}")
        return Response(data, mimetype="application/octet-stream")

    return app
