"""The SOAP codec in memory: requests as pyvmomi writes them, responses and faults as pyvmomi
reads them."""

from __future__ import annotations

import pytest
from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl

from fakes.vcenter import soap
from fakes.vcenter.errors import InvalidLogin, InvalidRequest, MethodNotFound

from .conftest import InMemoryStub

V8 = "vim.version.v8_0_3_0"


def request_bytes(mo, method: str, *args, version: str = V8) -> bytes:
    stub = InMemoryStub(dispatcher=None, version=version)
    info = VmomiSupport.GetWsdlMethod("urn:vim25", method).info
    return stub.SerializeRequest(mo, info, args)


def test_reads_a_login_as_pyvmomi_sends_it():
    body = request_bytes(vim.SessionManager("SessionManager"), "Login", "admin", "secret", None)
    request = soap.parse_request(body, V8)
    assert request.method == "Login"
    assert request.this._moId == "SessionManager" and request.this._wsdlName == "SessionManager"
    assert request.args == {"userName": "admin", "password": "secret"}


def test_reads_list_parameters_item_by_item():
    folder = vim.Folder("group-d1")
    body = request_bytes(
        vim.view.ViewManager("ViewManager"),
        "CreateContainerView",
        folder,
        [vim.VirtualMachine, vim.HostSystem],
        True,
    )
    request = soap.parse_request(body, V8)
    assert request.args["container"]._moId == "group-d1"
    assert request.args["type"] == [vim.VirtualMachine, vim.HostSystem]
    assert request.args["recursive"] is True


def test_reads_polymorphic_data_objects():
    disk = vim.vm.device.VirtualDisk(key=2000, capacityInKB=1024, controllerKey=1000, unitNumber=0)
    spec = vim.vm.ConfigSpec(
        deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)]
    )
    request = soap.parse_request(request_bytes(vim.VirtualMachine("vm-1"), "ReconfigVM_Task", spec))
    change = request.args["spec"].deviceChange[0]
    assert isinstance(change.device, vim.vm.device.VirtualDisk)
    assert change.device.capacityInKB == 1024 and change.operation == "edit"


def test_fetch_is_read_although_not_in_the_wsdl():
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        b'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        b'<Fetch xmlns="urn:vim25"><_this type="VirtualMachine">vm-7</_this>'
        b'<prop versionId="8.0.3.0">config</prop></Fetch></soapenv:Body></soapenv:Envelope>'
    )
    request = soap.parse_request(body)
    assert request.method == "Fetch" and request.args == {"prop": "config"}
    assert request.this._moId == "vm-7"


def test_an_unknown_method_still_names_its_target():
    body = (
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        b'<soapenv:Body><FrobnicateVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">'
        b"vm-3</_this><knob><deep>1</deep></knob></FrobnicateVM_Task></soapenv:Body>"
        b"</soapenv:Envelope>"
    )
    request = soap.parse_request(body)
    assert request.method == "FrobnicateVM_Task" and request.info is None
    assert request.this._moId == "vm-3"


@pytest.mark.parametrize(
    "body",
    [
        b"<not xml",
        b"<soapenv:Envelope xmlns:soapenv='http://schemas.xmlsoap.org/soap/envelope/'>",
        b"<Envelope><Body><Login/></Body></Envelope>",
        b"<soapenv:Envelope xmlns:soapenv='http://schemas.xmlsoap.org/soap/envelope/'>"
        b"<soapenv:Body/></soapenv:Envelope>",
    ],
)
def test_malformed_requests_are_invalid_request(body):
    with pytest.raises(InvalidRequest):
        soap.parse_request(body)


def test_an_unknown_parameter_or_a_missing_one_is_invalid_request():
    body = request_bytes(vim.SessionManager("SessionManager"), "Login", "a", "b", None)
    with pytest.raises(InvalidRequest, match="no parameter named"):
        soap.parse_request(
            body.replace(b"<password", b"<passwort").replace(b"</password", b"</passwort")
        )
    stripped = body.split(b"<password")[0] + b"</Login>" + body.split(b"</Login>")[1]
    with pytest.raises(InvalidRequest, match="password is missing"):
        soap.parse_request(stripped)


def test_the_client_version_comes_from_soapaction():
    assert soap.version_of('"urn:vim25/8.0.3.0"') == "vim.version.v8_0_3_0"
    assert soap.version_of('"urn:vim25/7.0.3.0"') == "vim.version.v7_0_3_0"
    assert soap.version_of(None) == soap.DEFAULT_VERSION
    assert soap.version_of('"urn:vim25/99.0"') == soap.DEFAULT_VERSION


def test_service_versions_offer_pyvmomi_7_8_and_9_a_match():
    xml = soap.service_versions_xml()
    for version in ("8.0.3.0", "8.0.2.0", "7.0.3.0", "7.0.0.0", "6.7.3"):
        assert f"<version>{version}</version>" in xml
    assert xml.split("<namespaces", 1)[1].startswith(' version="1.0"')


def test_a_response_reads_back_in_pyvmomi():
    task = vim.Task("task-9")
    body = soap.response_envelope("PowerOnVM_Task", task, vim.Task, V8)
    stub = InMemoryStub(dispatcher=None)
    back = SoapAdapter.SoapResponseDeserializer(stub).Deserialize(body, vim.Task)
    assert back._moId == "task-9"


def test_an_empty_result_reads_back_as_none():
    body = soap.response_envelope("RetrievePropertiesEx", soap.RawXml(""), None, V8)
    result_type = vmodl.query.PropertyCollector.RetrieveResult
    assert SoapAdapter.SoapResponseDeserializer(None).Deserialize(body, result_type) is None


@pytest.mark.parametrize(
    "fault,expected",
    [
        (InvalidLogin(), vim.fault.InvalidLogin),
        (MethodNotFound(vim.VirtualMachine("vm-2"), "Frob"), vmodl.fault.MethodNotFound),
    ],
)
def test_faults_read_back_as_the_same_pyvmomi_type(fault, expected):
    body = soap.fault_envelope(fault.fault(), fault.text)
    back = SoapAdapter.SoapResponseDeserializer(None).Deserialize(body, object)
    assert isinstance(back, expected)
    assert back.msg == fault.text
    if expected is vmodl.fault.MethodNotFound:
        assert back.method == "Frob" and back.receiver._moId == "vm-2"


def test_property_values_carry_xsi_types_in_an_any():
    xml = soap.serialize(vim.VirtualMachine.PowerState.poweredOff, "val", object, V8)
    assert 'xsi:type="VirtualMachinePowerState"' in xml and ">poweredOff<" in xml
    xml = soap.serialize(vim.HostSystem.Array([vim.HostSystem("host-1")]), "val", object, V8)
    assert 'xsi:type="ArrayOfManagedObjectReference"' in xml and 'type="HostSystem"' in xml
