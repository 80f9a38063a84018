"""HTTPS side of the mail sink: read back what was sent. Thin views over `Mailbox`.

GET /messages (oldest first; `?since=<id>` for only newer ones, `?limit=N`),
GET /messages/<id>, GET /messages/<id>/raw (message/rfc822), DELETE /messages[/<id>].
"""

from __future__ import annotations

from flask import Response, jsonify, request

from lab.kit.control import LabControl
from lab.kit.web import create_app as create_lab_app

from .models import Mailbox


def _error(status: int, code: str, message: str):
    return jsonify({"error": {"code": code, "message": message}}), status


class BadArgument(ValueError):
    pass


def _int_arg(name: str, default):
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise BadArgument(f"{name} must be a non-negative integer, not {raw!r}")
    return int(raw)


def create_app(mailbox: Mailbox, smtp_address: tuple[str, int] | None = None):
    def state() -> dict:
        info = {"messages": mailbox.count()}
        if smtp_address:
            info["smtp"] = {"host": smtp_address[0], "port": smtp_address[1]}
        return info

    control = LabControl(name="mail", reset=lambda: mailbox.delete(), state=state)
    app = create_lab_app(__name__, control)

    @app.errorhandler(BadArgument)
    def _bad_argument(exc):
        return _error(400, "InvalidArgument", str(exc))

    @app.errorhandler(404)
    def _not_found(exc):
        return _error(404, "NotFound", f"nothing at {request.path}")

    @app.errorhandler(405)
    def _not_allowed(exc):
        return _error(405, "MethodNotAllowed", f"{request.method} is not served at {request.path}")

    def _message_or_404(message_id: int):
        message = mailbox.get(message_id)
        if message is None:
            return None, _error(404, "MessageNotFound", f"no message with id {message_id}")
        return message, None

    @app.get("/messages")
    def list_messages():
        return jsonify(mailbox.list(since=_int_arg("since", 0), limit=_int_arg("limit", None)))

    @app.get("/messages/<int:message_id>")
    def get_message(message_id: int):
        message, error = _message_or_404(message_id)
        return error or jsonify(message)

    @app.get("/messages/<int:message_id>/raw")
    def get_raw(message_id: int):
        raw = mailbox.raw(message_id)
        if raw is None:
            return _error(404, "MessageNotFound", f"no message with id {message_id}")
        return Response(raw, content_type="message/rfc822")

    @app.delete("/messages")
    def delete_messages():
        return jsonify({"deleted": mailbox.delete()})

    @app.delete("/messages/<int:message_id>")
    def delete_message(message_id: int):
        if not mailbox.delete(message_id):
            return _error(404, "MessageNotFound", f"no message with id {message_id}")
        return jsonify({"deleted": 1})

    return app
