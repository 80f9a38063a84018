"""The SOAP codec of the fake vCenter: request envelopes in, response and fault envelopes out.

It does no I/O and knows nothing of the inventory. Types come from pyvmomi's own type system
(`VmomiSupport`), so a request is read exactly as pyvmomi wrote it and a response is written
the way pyvmomi reads it back: parameters are deserialised one element at a time with
pyvmomi's `SoapDeserializer`, results are written with its `SoapSerializer` for the API
version the client negotiated (the SOAPAction header), which drops properties newer than that
version. Hot paths (property reads) hand in pre-serialised fragments as `RawXml`.

Not emulated: SOAP headers (request contexts, SAML tokens are ignored), MTOM, gzip responses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from io import StringIO
from typing import Any
from xml.parsers.expat import ExpatError, ParserCreate

from pyVmomi import SoapAdapter, VmomiSupport, vmodl
from pyVmomi.SoapAdapter import (
    NS_SEP,
    SOAP_NSMAP,
    ExpatDeserializerNSHandlers,
    SoapDeserializer,
    SoapSerializer,
    XmlEscape,
)
from pyVmomi.VmomiSupport import F_OPTIONAL, ManagedObject, Object

from .errors import InvalidRequest

VIM_NS = "urn:vim25"
SOAPENV_NS = SoapAdapter.XMLNS_SOAPENV

# The API versions this vCenter answers, newest first; /sdk/vimServiceVersions.xml lists them
# so that pyvmomi 7.x, 8.x and 9.x each find one they speak.
CURRENT_VERSION_ID = "8.0.3.0"
PRIOR_VERSION_IDS = (
    "8.0.2.0",
    "8.0.1.0",
    "8.0.0.2",
    "8.0.0.1",
    "8.0.0.0",
    "7.0.3.2",
    "7.0.3.1",
    "7.0.3.0",
    "7.0.2.1",
    "7.0.2.0",
    "7.0.1.1",
    "7.0.1.0",
    "7.0.0.2",
    "7.0.0.0",
    "6.9.1",
    "6.8.7",
    "6.7.3",
    "6.7.2",
    "6.7.1",
    "6.7",
    "6.5",
    "6.0",
    "5.5",
)

_VERSION_BY_ID = {
    vid: name
    for name, vid in VmomiSupport.versionIdMap.items()
    if name.startswith("vim.version.") and vid
}
DEFAULT_VERSION = _VERSION_BY_ID[CURRENT_VERSION_ID]

NSMAP = dict(SOAP_NSMAP)
NSMAP[VIM_NS] = ""

ENVELOPE_START = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<soapenv:Envelope xmlns:soapenc="{SoapAdapter.XMLNS_SOAPENC}" '
    f'xmlns:soapenv="{SOAPENV_NS}" '
    f'xmlns:xsd="{VmomiSupport.XMLNS_XSD}" xmlns:xsi="{VmomiSupport.XMLNS_XSI}">\n'
    "<soapenv:Body>\n"
)
ENVELOPE_END = "\n</soapenv:Body>\n</soapenv:Envelope>"

# Fetch is pyvmomi's private property accessor (every `mo.prop` read in pyvmomi 8+); it is not
# in the WSDL, so its one parameter is declared here.
FETCH_PARAMS = (Object(name="prop", type=str, version=DEFAULT_VERSION, flags=0),)
_THIS = Object(name="_this", type=ManagedObject, version=DEFAULT_VERSION, flags=0)


def version_of(soap_action: str | None) -> str:
    """The pyvmomi version name a client speaks, from `SOAPAction: "urn:vim25/8.0.3.0"`."""
    if soap_action:
        action = soap_action.strip().strip('"')
        _, _, vid = action.partition("/")
        version = _VERSION_BY_ID.get(vid)
        if version:
            return version
    return DEFAULT_VERSION


def service_versions_xml() -> str:
    priors = "".join(f"<version>{v}</version>" for v in PRIOR_VERSION_IDS)
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        '<namespaces version="1.0">\n'
        f"  <namespace>\n    <name>{VIM_NS}</name>\n"
        f"    <version>{CURRENT_VERSION_ID}</version>\n"
        f"    <priorVersions>{priors}</priorVersions>\n  </namespace>\n"
        "</namespaces>\n"
    )


# -- requests -----------------------------------------------------------------------------------
@dataclass
class SoapRequest:
    method: str  # the WSDL method name, e.g. "PowerOffVM_Task"
    this: Any  # a pyvmomi ManagedObject (moref) or None
    args: dict[str, Any] = field(default_factory=dict)
    info: Any = None  # pyvmomi method info, None for an unknown method or Fetch
    version: str = DEFAULT_VERSION


def method_info(name: str):
    """pyvmomi's info for a WSDL method name, or None when the WSDL has no such method."""
    try:
        return VmomiSupport.GetWsdlMethod(VIM_NS, name).info
    except KeyError:
        return None


class _RequestReader(ExpatDeserializerNSHandlers):
    """Walks Envelope/Body/<Method>/<param>, handing each parameter to pyvmomi's deserializer."""

    def __init__(self, version: str):
        super().__init__()
        self.version = version
        self.depth = 0
        self.skip_depth = 0  # >0 while inside an element whose content is ignored
        self.method: str | None = None
        self.info = None
        self.params: dict[str, Any] = {}
        self.pending: list[tuple[str, bool, SoapDeserializer]] = []
        self.saw_body = False

    def parse(self, body: bytes) -> SoapRequest:
        parser = ParserCreate(namespace_separator=NS_SEP)
        parser.buffer_text = True
        self.parser = parser
        (
            parser.StartElementHandler,
            parser.EndElementHandler,
            parser.StartNamespaceDeclHandler,
            parser.EndNamespaceDeclHandler,
        ) = (
            self.StartElementHandler,
            self.EndElementHandler,
            self.StartNamespaceDeclHandler,
            self.EndNamespaceDeclHandler,
        )
        parser.Parse(body, True)
        if self.method is None:
            raise InvalidRequest("the SOAP body names no method")
        args: dict[str, Any] = {}
        for name, is_list, deser in self.pending:
            value = deser.GetResult()
            if is_list:
                args.setdefault(name, []).append(value)
            else:
                args[name] = value
        this = args.pop("_this", None)
        return SoapRequest(self.method, this, args, self.info, self.version)

    def StartElementHandler(self, tag, attrs):
        if self.skip_depth:
            self.skip_depth += 1
            return
        self.depth += 1
        ns, _, name = tag.rpartition(NS_SEP)
        if self.depth == 1:
            if ns != SOAPENV_NS or name != "Envelope":
                raise InvalidRequest("the request is not a SOAP envelope")
        elif self.depth == 2:
            if ns == SOAPENV_NS and name == "Body":
                self.saw_body = True
            else:
                self.skip_depth = 1  # a Header: request contexts are not emulated
                self.depth -= 1
        elif self.depth == 3:
            if self.method is not None:
                raise InvalidRequest("the SOAP body holds more than one method")
            self.method = name
            if name == "Fetch":
                self.param_types = {p.name: p for p in FETCH_PARAMS}
            else:
                self.info = method_info(name)
                params = self.info.params if self.info is not None else ()
                self.param_types = {p.name: p for p in params}
            self.param_types["_this"] = _THIS
        elif self.depth == 4:
            param = self.param_types.get(name)
            if param is None:
                if self.info is None and self.method != "Fetch":
                    # An unknown method: only _this matters (for MethodNotFound).
                    self.skip_depth = 1
                    self.depth -= 1
                    return
                raise InvalidRequest(f"{self.method} has no parameter named {name!r}")
            is_list = issubclass(param.type, list)
            item_type = param.type.Item if is_list else param.type
            deser = SoapDeserializer(version=self.version)
            deser.Deserialize(self.parser, item_type, False, self.nsMap)
            self.pending.append((name, is_list, deser))
            self.depth -= 1  # the deserializer consumes this element's end tag
            deser.StartElementHandler(tag, attrs)

    def EndElementHandler(self, tag):
        if self.skip_depth:
            self.skip_depth -= 1
            return
        self.depth -= 1


def parse_request(body: bytes, version: str = DEFAULT_VERSION) -> SoapRequest:
    """Read a SOAP request; malformed XML or an unknown parameter raises InvalidRequest."""
    reader = _RequestReader(version)
    try:
        request = reader.parse(body)
    except InvalidRequest:
        raise
    except ExpatError as exc:
        raise InvalidRequest(f"malformed XML in the request: {exc}") from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InvalidRequest(f"the request does not match the vSphere API: {exc!r}") from None
    if request.info is not None:
        for param in request.info.params:
            if not param.flags & F_OPTIONAL and param.name not in request.args:
                raise InvalidRequest(
                    f"{request.method}: required parameter {param.name} is missing"
                )
    return request


# -- responses ----------------------------------------------------------------------------------
class RawXml(str):
    """A result that is already serialised (the `returnval` elements), written as is."""


def serialize(value, name: str, typ, version: str, flags: int = F_OPTIONAL) -> str:
    """One value as XML with pyvmomi's serializer; `typ=object` writes xsi:type (anyType)."""
    writer = StringIO()
    serializer = SoapSerializer(writer, version, NSMAP)
    serializer.outermostAttrs = ""  # no versionId attribute: the envelope already says it
    serializer._Serialize(value, Object(name=name, type=typ, version=version, flags=flags), VIM_NS)
    return writer.getvalue()


def moref_xml(name: str, type_name: str, moid: str) -> str:
    return f'<{name} type="{type_name}">{XmlEscape(moid)}</{name}>'


def response_body(method: str, returnval: str) -> str:
    return f'<{method}Response xmlns="{VIM_NS}">{returnval}</{method}Response>'


def response_envelope(method: str, result, result_type, version: str) -> bytes:
    """The envelope for a method's result; `result` is a pyvmomi value or RawXml."""
    if isinstance(result, RawXml):
        returnval = str(result)
    elif result is None or result_type is None:
        returnval = ""
    else:
        returnval = serialize(result, "returnval", result_type, version)
    return (ENVELOPE_START + response_body(method, returnval) + ENVELOPE_END).encode()


def fault_envelope(fault: vmodl.MethodFault, message: str, version: str = DEFAULT_VERSION) -> bytes:
    """A soapenv:Fault whose detail pyvmomi turns back into the same fault type."""
    import copy

    fault = copy.copy(fault)
    fault.msg = None  # the message travels in faultstring
    wsdl = VmomiSupport.GetWsdlName(type(fault))
    writer = StringIO()
    serializer = SoapSerializer(writer, version, NSMAP)
    serializer.outermostAttrs = ""
    info = Object(name=f"{wsdl}Fault", type=object, version=version, flags=0)
    serializer._SerializeDataObject(fault, info, f' xmlns="{VIM_NS}"', VIM_NS)
    body = (
        "<soapenv:Fault><faultcode>ServerFaultCode</faultcode>"
        f"<faultstring>{XmlEscape(message)}</faultstring>"
        f"<detail>{writer.getvalue()}</detail></soapenv:Fault>"
    )
    return (ENVELOPE_START + body + ENVELOPE_END).encode()
