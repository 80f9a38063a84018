"""HTTP routes of the fake Service Bus: the REST runtime API, thin views over `Broker`.

Entities are path-based on the service's own port: `https://127.0.0.1:<port>/<queue>`,
`/<topic>/subscriptions/<name>`, `/<entity>/$DeadLetterQueue`. The operation is the routing
key: `resolve()` turns a method and path into one of the runtime operations, named as in the
REST reference; fault rules at `/_lab/faults` match those names. Entity management (ATOM
create/get/delete/list) answers 501 naming the operation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Response, request

from lab.kit.control import LabControl
from lab.kit.faults import FaultError
from lab.kit.web import create_app as create_lab_app

from . import codec, errors
from .auth import Authorizer
from .models import Broker, Delivery

log = logging.getLogger(__name__)

XML = "application/xml; charset=utf-8"


@dataclass(frozen=True)
class Call:
    operation: str
    entity: str = ""
    right: str = "Listen"
    message_ref: str | None = None
    lock_token: str | None = None


def resolve(method: str, path: str, content_type: str | None) -> Call | None:
    """The runtime operation a request is, or None for an address nothing is hosted at."""
    parts = [p for p in path.split("/") if p]
    low = [p.lower() for p in parts]
    if len(parts) >= 2 and low[-1] == "messages" and method == "POST":
        batch = (content_type or "").split(";")[0].strip().lower() == codec.BATCH_CONTENT_TYPE
        operation = "SendMessageBatch" if batch else "SendMessage"
        return Call(operation, "/".join(parts[:-1]), "Send")
    if len(parts) >= 3 and low[-2:] == ["messages", "head"]:
        entity = "/".join(parts[:-2])
        if method == "POST":
            return Call("PeekLockMessage", entity)
        if method == "DELETE":
            return Call("ReceiveAndDeleteMessage", entity)
    if len(parts) >= 4 and low[-3] == "messages":
        operation = {"DELETE": "DeleteMessage", "PUT": "UnlockMessage", "POST": "RenewLock"}.get(
            method
        )
        if operation:
            return Call(operation, "/".join(parts[:-3]), "Listen", parts[-2], parts[-1])
    if parts and "messages" not in low:
        if parts[0].lower() == "$resources":
            return Call("ListEntities", "", "Manage")
        operation = {"GET": "GetEntity", "PUT": "CreateOrUpdateEntity", "DELETE": "DeleteEntity"}
        if method in operation:
            return Call(operation[method], "/".join(parts), "Manage")
    return None


def _current_call() -> Call | None:
    return resolve(request.method, request.path, request.content_type)


def create_app(broker: Broker, authorizer: Authorizer):
    control = LabControl(
        name="servicebus",
        reset=broker.reset,
        state=lambda: {**broker.state(), "endpoint": request.host_url.rstrip("/")},
    )

    def tracker() -> str:
        call = _current_call()
        return f"{broker.host}:{call.entity if call else request.path.strip('/')}"

    def xml_error(exc: errors.ServiceBusError) -> Response:
        return Response(exc.xml(tracker()), exc.status, content_type=XML)

    def fault_response(fault: FaultError) -> Response:
        error = errors.ServiceBusError(f"{fault.code}: {fault.message}")
        error.status = fault.status
        return xml_error(error)

    def operation_of() -> str:
        call = _current_call()
        return call.operation if call else "Unknown"

    app = create_lab_app(
        __name__, control, fault_response=fault_response, operation_of=operation_of
    )
    app.errorhandler(errors.ServiceBusError)(xml_error)

    def message_response(delivery: Delivery, status: int, call: Call) -> Response:
        response = Response(
            delivery.body,
            status,
            content_type=delivery.content_type or "application/octet-stream",
        )
        response.headers["BrokerProperties"] = codec.broker_properties_header(delivery)
        for name, value in delivery.user_properties.items():
            response.headers[name] = codec.custom_property_header(value)
        if delivery.lock_token:
            base = request.host_url.rstrip("/")
            response.headers["Location"] = (
                f"{base}/{call.entity}/messages/{delivery.sequence_number}/{delivery.lock_token}"
            )
        return response

    # -- one handler per runtime operation ----------------------------------------------------
    def send_message(call: Call):
        message = codec.message_from_request(
            request.get_data(), request.content_type, request.headers
        )
        broker.send(call.entity, [message])
        return Response(status=201)

    def send_message_batch(call: Call):
        broker.send(call.entity, codec.messages_from_batch(request.get_data()))
        return Response(status=201)

    def peek_lock(call: Call):
        timeout = codec.receive_timeout(request.args.get("timeout"))
        delivery = broker.receive(call.entity, lock=True, timeout=timeout)
        if delivery is None:
            return Response(status=204)
        return message_response(delivery, 201, call)

    def receive_and_delete(call: Call):
        timeout = codec.receive_timeout(request.args.get("timeout"))
        delivery = broker.receive(call.entity, lock=False, timeout=timeout)
        if delivery is None:
            return Response(status=204)
        return message_response(delivery, 200, call)

    def delete_message(call: Call):
        broker.complete(call.entity, call.message_ref, call.lock_token)
        return Response(status=200)

    def unlock_message(call: Call):
        broker.unlock(call.entity, call.message_ref, call.lock_token)
        return Response(status=200)

    def renew_lock(call: Call):
        broker.renew_lock(call.entity, call.message_ref, call.lock_token)
        return Response(status=200)

    def not_implemented(call: Call):
        raise errors.NotImplementedOperation(call.operation)

    handlers = {
        "SendMessage": send_message,
        "SendMessageBatch": send_message_batch,
        "PeekLockMessage": peek_lock,
        "ReceiveAndDeleteMessage": receive_and_delete,
        "DeleteMessage": delete_message,
        "UnlockMessage": unlock_message,
        "RenewLock": renew_lock,
        "ListEntities": not_implemented,
        "GetEntity": not_implemented,
        "CreateOrUpdateEntity": not_implemented,
        "DeleteEntity": not_implemented,
    }

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def dispatch(path: str):
        call = _current_call()
        if call is None:
            raise errors.NoSuchResource(f"https://{broker.host}/{path}")
        authorizer.authorize(
            request.headers.get("Authorization"), request.host, call.entity, call.right
        )
        return handlers[call.operation](call)

    return app
