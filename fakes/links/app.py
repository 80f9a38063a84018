"""HTTP API of the link proxies: Toxiproxy's routes, bodies and errors, thin views over
`LinkService`. Each route's endpoint is Toxiproxy's handler name (ProxyIndex, ToxicCreate, ...):
that is the operation name `/_lab/faults` rules match.

`/_lab/reset` is Toxiproxy's `POST /reset`; `/_lab/state` lists every link with its toxics and
byte counters.

Not emulated (501, named): creating, deleting or bulk-populating proxies, and changing a
proxy's listen or upstream address: the lab's links are declared in the topology.
"""

from __future__ import annotations

from flask import Response, jsonify, request

from lab.kit.control import LabControl
from lab.kit.faults import FaultError
from lab.kit.web import create_app as create_lab_app

from . import errors
from .engine import LinkService

VERSION = "drlab-links 1 (Toxiproxy API 2)"


def _toxiproxy_fault(error: FaultError):
    return jsonify({"error": error.message, "status": error.status}), error.status


def _body():
    """The JSON body, or Toxiproxy's `bad request body` error."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise errors.BadRequestBody("EOF")
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise errors.BadRequestBody("the body is not valid JSON")
    return body


def create_app(links: LinkService):
    def ready():
        return True, f"{len(links.links.proxies)} link(s) listening"

    control = LabControl(name="links", ready=ready, reset=links.reset, state=links.state)
    app = create_lab_app(__name__, control, fault_response=_toxiproxy_fault)

    @app.errorhandler(errors.LinkApiError)
    def _api_error(exc: errors.LinkApiError):
        return jsonify(exc.body()), exc.status

    @app.errorhandler(404)
    def _not_found(exc):
        return _api_error(errors.NotFound(request.path))

    @app.errorhandler(405)
    def _not_allowed(exc):
        return _api_error(errors.MethodNotAllowed(f"{request.method} {request.path}"))

    # -- proxies --------------------------------------------------------------------------------
    @app.get("/proxies", endpoint="ProxyIndex")
    def proxy_index():
        return jsonify(links.proxies())

    @app.post("/proxies", endpoint="ProxyCreate")
    def proxy_create():
        raise errors.NotImplementedInLab(
            "ProxyCreate (the lab's links are declared in the topology, under links.proxies)"
        )

    @app.post("/populate", endpoint="Populate")
    def populate():
        raise errors.NotImplementedInLab(
            "Populate (the lab's links are declared in the topology, under links.proxies)"
        )

    @app.get("/proxies/<name>", endpoint="ProxyShow")
    def proxy_show(name):
        return jsonify(links.proxy(name))

    @app.route("/proxies/<name>", methods=["POST", "PATCH"], endpoint="ProxyUpdate")
    def proxy_update(name):
        return jsonify(links.update_proxy(name, _body()))

    @app.delete("/proxies/<name>", endpoint="ProxyDelete")
    def proxy_delete(name):
        links.proxy(name)  # 404 for an unknown proxy first, as Toxiproxy would
        raise errors.NotImplementedInLab(
            'ProxyDelete (a lab link is taken down with {"enabled": false}, not deleted)'
        )

    @app.post("/reset", endpoint="ResetState")
    def reset_state():
        links.reset()
        return Response(status=204)

    @app.get("/version", endpoint="Version")
    def version():
        return jsonify({"version": VERSION})

    # -- toxics ---------------------------------------------------------------------------------
    @app.get("/proxies/<name>/toxics", endpoint="ToxicIndex")
    def toxic_index(name):
        return jsonify(links.toxics(name))

    @app.post("/proxies/<name>/toxics", endpoint="ToxicCreate")
    def toxic_create(name):
        links.proxy(name)  # proxy not found before a bad body, as Toxiproxy checks
        return jsonify(links.add_toxic(name, _body()))

    @app.get("/proxies/<name>/toxics/<toxic>", endpoint="ToxicShow")
    def toxic_show(name, toxic):
        return jsonify(links.toxic(name, toxic))

    @app.route("/proxies/<name>/toxics/<toxic>", methods=["POST", "PATCH"], endpoint="ToxicUpdate")
    def toxic_update(name, toxic):
        links.toxic(name, toxic)
        return jsonify(links.update_toxic(name, toxic, _body()))

    @app.delete("/proxies/<name>/toxics/<toxic>", endpoint="ToxicDelete")
    def toxic_delete(name, toxic):
        links.remove_toxic(name, toxic)
        return Response(status=204)

    return app
