"""HTTP routes of the fake vCenter: thin views over the dispatcher and the VCenter model.

POST /sdk, /sdk/vimService     vSphere SOAP (the dispatcher)
GET  /sdk/vimServiceVersions.xml   the API versions pyvmomi negotiates from
PUT/GET /guestFile?id=&token=  guest file transfers (InitiateFileTransferTo/FromGuest)
POST /_lab/vms/<name>/verify   the VM's application data check (drlab vm verify)
POST /_lab/sessions/expire     every session times out now (to test re-login)
/_lab/*                        the control API every fake has
"""

from __future__ import annotations

from flask import Response, jsonify, request
from werkzeug.http import HTTP_STATUS_CODES, parse_cookie

from lab.kit.control import LabControl
from lab.kit.faults import FaultRules
from lab.kit.web import create_app as create_lab_app

from . import soap
from .dispatch import Dispatcher
from .errors import injected
from .models import VCenter
from .sessions import COOKIE

XML = "text/xml; charset=utf-8"
STATUS = {code: f"{code} {HTTP_STATUS_CODES.get(code, 'Error')}" for code in range(100, 600)}


def _soap_fault(error):
    fault = injected(error.code, error.message)
    return Response(
        soap.fault_envelope(fault.fault(), fault.text), status=error.status, content_type=XML
    )


def _operation():
    # SOAP names its operation inside the body: the dispatcher applies fault rules itself.
    return None if request.path.startswith("/sdk") else request.endpoint


class SoapEndpoint:
    """WSGI middleware: POST /sdk (and /sdk/vimService) to the dispatcher, the rest to Flask."""

    PATHS = ("/sdk", "/sdk/vimService")

    def __init__(self, dispatcher: Dispatcher, app):
        self.dispatcher = dispatcher
        self.app = app

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] != "POST" or environ.get("PATH_INFO") not in self.PATHS:
            return self.app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))
        result = self.dispatcher.handle(
            body,
            environ.get("HTTP_SOAPACTION"),
            cookies.get(COOKIE),
            environ.get("REMOTE_ADDR") or "127.0.0.1",
            environ.get("HTTP_USER_AGENT", ""),
        )
        headers = [("Content-Type", XML), ("Content-Length", str(len(result.body)))]
        if result.set_cookie:
            # One Set-Cookie header: pyvmomi sends the whole value back verbatim.
            headers.append(
                ("Set-Cookie", f'{COOKIE}="{result.set_cookie}"; Path=/; HttpOnly; Secure;')
            )
        start_response(STATUS[result.status], headers)
        return [result.body]


def create_app(vcenter: VCenter):
    faults = FaultRules()
    control = LabControl(
        name="vcenter",
        ready=lambda: (vcenter.ready, vcenter.ready_detail),
        reset=vcenter.reset,
        state=vcenter.state,
        faults=faults,
    )
    app = create_lab_app(__name__, control, fault_response=_soap_fault, operation_of=_operation)
    dispatcher = Dispatcher(vcenter, faults)

    # SOAP goes straight to the dispatcher, around Flask's request machinery: it is the hot
    # path (pyvmomi 9 makes one call per property read) and needs nothing of it (the
    # dispatcher applies fault rules and logs calls by method name).
    app.wsgi_app = SoapEndpoint(dispatcher, app.wsgi_app)

    @app.route("/sdk", methods=["GET", "PUT", "DELETE"])
    def sdk_not_post():
        return Response(
            "the vSphere API takes SOAP over POST\n",
            status=405,
            content_type="text/plain",
            headers={"Allow": "POST"},
        )

    @app.get("/sdk/vimServiceVersions.xml")
    def service_versions():
        return Response(soap.service_versions_xml(), content_type=XML)

    @app.put("/guestFile")
    def guest_file_put():
        status, message = vcenter.guest_ops.upload(
            request.args.get("id", ""), request.args.get("token", ""), request.get_data()
        )
        return Response(message, status=status, content_type="text/plain")

    @app.get("/guestFile")
    def guest_file_get():
        data = vcenter.guest_ops.download(request.args.get("id", ""), request.args.get("token", ""))
        if data is None:
            return Response("unknown or expired transfer", status=404, content_type="text/plain")
        return Response(data, content_type="application/octet-stream")

    @app.post("/_lab/vms/<name>/verify")
    def verify_vm(name):
        vm = vcenter.vm_by_name(name)
        if vm is None:
            body = {"error": {"code": "VmNotFound", "message": f"no VM named {name!r}"}}
            return jsonify(body), 404
        result = vcenter.guests.verify(vm)
        return jsonify({"vm": name, "power_state": vm.power_state, **result})

    @app.post("/_lab/sessions/expire")
    def expire_sessions():
        return jsonify({"expired": vcenter.sessions.expire_all()})

    return app
