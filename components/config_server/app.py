"""HTTPS routes of the configuration server (the role of its port 443): thin views."""

from __future__ import annotations

from flask import jsonify, request

from lab.kit.control import LabControl
from lab.kit.web import create_app as create_lab_app

from .registrar import BadRequest, NotRegistered, RegistrationRefused


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def create_app(server):
    """`server` is the ConfigServer (see service.py)."""
    control = LabControl(
        name=server.name, ready=server.ready, state=server.state, reset=server.reset
    )
    app = create_lab_app(__name__, control)
    registrar = server.registrar

    @app.errorhandler(BadRequest)
    @app.errorhandler(NotRegistered)
    @app.errorhandler(RegistrationRefused)
    def _error(exc):
        return jsonify({"error": {"code": exc.code, "message": str(exc)}}), exc.status

    @app.post("/v1/process-servers/register")
    def register_process_server():
        reply = registrar.register_server("process_servers", _body())
        server.heartbeat_soon()
        return jsonify(reply)

    @app.post("/v1/process-servers/<server_id>/health")
    def process_server_health(server_id):
        registrar.server_health(
            "process_servers", server_id, request.headers.get("Authorization"), _body()
        )
        return jsonify({"ok": True})

    @app.get("/v1/process-servers/<server_id>/work")
    def process_server_work(server_id):
        registrar.authenticate_server(
            "process_servers", server_id, request.headers.get("Authorization")
        )
        try:
            wait = min(max(float(request.args.get("wait", "0")), 0.0), 30.0)
        except ValueError:
            raise BadRequest("'wait' is a number of seconds") from None
        items = server.ps_work.claim(server_id, wait, server.stop_event)
        return jsonify({"items": items})

    @app.post("/v1/process-servers/<server_id>/work/<item_id>")
    def process_server_work_report(server_id, item_id):
        registrar.authenticate_server(
            "process_servers", server_id, request.headers.get("Authorization")
        )
        body = _body()
        if not body.get("step") or body.get("state") not in ("InProgress", "Succeeded", "Failed"):
            raise BadRequest("a report has a 'step' and a 'state' (InProgress|Succeeded|Failed)")
        if not server.ps_work.report(
            server_id, item_id, body["step"], body["state"], body.get("error")
        ):
            return jsonify(
                {
                    "error": {
                        "code": "UnknownWorkItem",
                        "message": f"no work item {item_id} for this server",
                    }
                }
            ), 404
        return jsonify({"ok": True})

    @app.post("/v1/master-targets/register")
    def register_master_target():
        reply = registrar.register_server("master_targets", _body())
        server.heartbeat_soon()
        return jsonify(reply)

    @app.post("/v1/master-targets/<server_id>/health")
    def master_target_health(server_id):
        registrar.server_health(
            "master_targets", server_id, request.headers.get("Authorization"), _body()
        )
        return jsonify({"ok": True})

    @app.post("/v1/agents/register")
    def register_agent():
        reply = registrar.register_agent(_body())
        server.heartbeat_soon()
        return jsonify(reply)

    @app.post("/v1/agents/<agent_id>/heartbeat")
    def agent_heartbeat(agent_id):
        agent, reply = registrar.agent_heartbeat(request.headers.get("Authorization"), _body())
        if agent["id"] != agent_id:
            raise NotRegistered("the token belongs to another agent")
        reply["replication"] = server.replication_for(agent)
        return jsonify(reply)

    @app.get("/v1/agents/<agent_id>/commands")
    def agent_commands(agent_id):
        agent = registrar.authenticate_agent(request.headers.get("Authorization"))
        if agent["id"] != agent_id:
            raise NotRegistered("the token belongs to another agent")
        try:
            wait = min(max(float(request.args.get("wait", "0")), 0.0), 30.0)
        except ValueError:
            raise BadRequest("'wait' is a number of seconds") from None
        return jsonify(
            {"commands": server.groups.commands.claim(agent_id, wait, server.stop_event)}
        )

    @app.post("/v1/agents/<agent_id>/commands/<command_id>")
    def agent_command_answer(agent_id, command_id):
        agent = registrar.authenticate_agent(request.headers.get("Authorization"))
        if agent["id"] != agent_id:
            raise NotRegistered("the token belongs to another agent")
        if not server.groups.commands.answer(agent_id, command_id, _body()):
            return jsonify(
                {
                    "error": {
                        "code": "UnknownCommand",
                        "message": f"no command {command_id} for this agent",
                    }
                }
            ), 404
        return jsonify({"ok": True})

    return app
