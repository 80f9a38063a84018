"""The one SOAP dispatcher: request bytes in, response bytes out, no HTTP framework.

In order: read the envelope (malformed -> InvalidRequest fault), find the session by cookie,
apply the lab's fault rules to the method name (a delay, or an error: a `*_Task` method gets a
task that fails with it, any other method a SOAP fault), refuse callers without a session
(NotAuthenticated) except for what vCenter allows anonymously, find `_this`
(ManagedObjectNotFound), then either read a property (`Fetch`, pyvmomi's accessor) or call the
method registered under that SOAP name on the object's type; no such method is MethodNotFound
naming it. Every fault is written in vSphere's shape with HTTP 500.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

from lab.kit.faults import FaultRules

from . import query, soap
from .errors import (
    InvalidRequest,
    MethodNotFound,
    NotAuthenticated,
    SystemError_,
    VimFault,
    injected,
)
from .registry import Call, ManagedObjectBase, current_call

log = logging.getLogger(__name__)

# Reads allowed before Login: the ServiceInstance's content (pyvmomi's WaitForTask and
# SmartConnect read it), as on a real vCenter.
ANONYMOUS_TYPES = frozenset({"ServiceInstance"})
QUIET_METHODS = frozenset(
    {
        "Fetch",
        "RetrieveProperties",
        "RetrievePropertiesEx",
        "ContinueRetrievePropertiesEx",
        "WaitForUpdates",
        "WaitForUpdatesEx",
        "CheckForUpdates",
        "CurrentTime",
        "RetrieveServiceContent",
    }
)


@functools.cache
def anonymous_methods() -> frozenset[str]:
    """SOAP methods some managed-object type registered as callable without a session."""
    found, classes = set(), list(ManagedObjectBase.__subclasses__())
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        found.update(name for name, m in cls.soap_methods.items() if m.anonymous)
    return frozenset(found)


@dataclass
class SoapResponse:
    status: int
    body: bytes
    set_cookie: str | None = None
    method: str | None = None


class Dispatcher:
    def __init__(self, vcenter, faults: FaultRules | None = None):
        self.vc = vcenter
        self.faults = faults or FaultRules()

    def handle(
        self,
        body: bytes,
        soap_action: str | None = None,
        cookie: str | None = None,
        client_ip: str = "127.0.0.1",
        user_agent: str = "",
    ) -> SoapResponse:
        version = soap.version_of(soap_action)
        try:
            request = soap.parse_request(body, version)
        except VimFault as fault:
            log.info("bad SOAP request: %s", fault.text)
            return self._fault(fault, version)
        session = self.vc.sessions.lookup(cookie, self.vc.clock.now()) if cookie else None
        call = Call(self.vc, session, version, request.method, client_ip, user_agent)
        token = current_call.set(call)
        started = time.perf_counter()
        try:
            response = self._dispatch(call, request)
        except VimFault as fault:
            response = self._fault(fault, version)
        except Exception as exc:  # a bug here must still answer in SOAP's shape
            log.exception("%s failed", request.method)
            response = self._fault(SystemError_(f"{type(exc).__name__}: {exc}"), version)
        finally:
            current_call.reset(token)
        response.method = request.method
        if call.cookie_to_set:
            response.set_cookie = call.cookie_to_set
        # Reads are many (one per property in pyvmomi 9): DEBUG; the rest and faults: INFO.
        level = logging.DEBUG if request.method in QUIET_METHODS else logging.INFO
        if response.status != 200:
            level = logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                "%s %s:%s -> %d (%.1f ms)",
                request.method,
                getattr(request.this, "_wsdlName", "-"),
                getattr(request.this, "_moId", "-"),
                response.status,
                (time.perf_counter() - started) * 1000,
            )
        return response

    def _dispatch(self, call: Call, request: soap.SoapRequest) -> SoapResponse:
        method, this = request.method, request.this
        if this is None:
            raise InvalidRequest(f"{method}: the request names no _this object")
        error = self.faults.apply(method)
        if error is not None:
            log.info("fault rule answers %s with %s", method, error.code)
            return self._injected(call, request, error)
        anonymous_read = this._wsdlName in ANONYMOUS_TYPES
        registry = self.vc.registry
        if method == "Fetch":
            if call.session is None and not anonymous_read:
                raise NotAuthenticated(this)
            prop = request.args.get("prop")
            if not prop:
                raise InvalidRequest("Fetch: required parameter prop is missing")
            with registry.lock:
                mo = registry.find(this, call.session.key if call.session else None)
                xml = query.fetch_xml(mo, prop, call.version)
            return self._result(call, method, soap.RawXml(xml), None)
        if call.session is None and not self._anonymous(method, request):
            raise NotAuthenticated(this)
        with registry.lock:
            mo = registry.find(this, call.session.key if call.session else None)
            handler = mo.soap_methods.get(method)
        if handler is None or request.info is None:
            raise MethodNotFound(mo.ref, method)
        if handler.locked:
            with registry.lock:
                result = handler.function(mo, call, **request.args)
        else:
            result = handler.function(mo, call, **request.args)
        return self._result(call, method, result, request.info.result)

    def _anonymous(self, method: str, request: soap.SoapRequest) -> bool:
        """May this call go without a session? (Handlers registered with anonymous=True;
        property retrievals only when they read nothing but the ServiceInstance.)"""
        if method not in anonymous_methods():
            return False
        if method in ("RetrieveProperties", "RetrievePropertiesEx"):
            specs = request.args.get("specSet") or []
            return all(
                o.obj._wsdlName in ANONYMOUS_TYPES and not o.selectSet
                for spec in specs
                for o in spec.objectSet or []
            )
        return True

    def _injected(self, call: Call, request: soap.SoapRequest, error) -> SoapResponse:
        fault = injected(error.code, error.message)
        if request.method.endswith("_Task") and error.status == 500 and call.session:
            with self.vc.registry.lock:
                entity = self.vc.registry.find(request.this, call.session.key)
                ref = self.vc.tasks.failed_task(
                    call, request.method, f"{entity.type_name}.{request.method}", entity, fault
                )
            return self._result(call, request.method, ref, request.info.result)
        response = self._fault(fault, call.version)
        response.status = error.status
        return response

    def _result(self, call: Call, method: str, result, result_type) -> SoapResponse:
        body = soap.response_envelope(method, result, result_type, call.version)
        return SoapResponse(200, body)

    @staticmethod
    def _fault(fault: VimFault, version: str) -> SoapResponse:
        return SoapResponse(500, soap.fault_envelope(fault.fault(), fault.text, version))
