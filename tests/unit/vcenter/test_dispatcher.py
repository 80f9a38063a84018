"""The dispatcher in memory: sessions, faults in vSphere's shape, MethodNotFound by name, the
lab's fault rules. pyvmomi is the client; its requests reach the dispatcher without sockets."""

from __future__ import annotations

import pytest
from pyVim.task import WaitForTask
from pyVmomi import SoapAdapter, vim, vmodl

from lab.kit.faults import FaultRules

from .conftest import PASSWORD, USER, InMemoryStub

ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{}</soapenv:Body>'
    "</soapenv:Envelope>"
)


def raw_call(dispatcher, cookie, body: str):
    response = dispatcher.handle(ENVELOPE.format(body).encode(), '"urn:vim25/8.0.3.0"', cookie)
    parsed = SoapAdapter.SoapResponseDeserializer(None).Deserialize(response.body, object)
    return response, parsed


def first_vm(si):
    content = si.RetrieveContent()
    return content.rootFolder.childEntity[0].vmFolder.childEntity[0]


def test_login_with_the_topology_credentials_sets_the_session_cookie(dispatcher):
    stub = InMemoryStub(dispatcher)
    si = vim.ServiceInstance("ServiceInstance", stub)
    session = si.content.sessionManager.Login(USER, PASSWORD, None)
    assert session.userName == USER and stub.cookie
    assert si.content.sessionManager.currentSession.key == session.key


def test_a_wrong_password_is_invalid_login(dispatcher):
    si = vim.ServiceInstance("ServiceInstance", InMemoryStub(dispatcher))
    with pytest.raises(vim.fault.InvalidLogin, match="incorrect user name or password"):
        si.content.sessionManager.Login(USER, "wrong-password", None)


def test_without_a_session_only_the_service_content_is_readable(dispatcher):
    si = vim.ServiceInstance("ServiceInstance", InMemoryStub(dispatcher))
    content = si.RetrieveContent()
    assert content.about.apiType == "VirtualCenter"
    with pytest.raises(vim.fault.NotAuthenticated):
        content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    with pytest.raises(vim.fault.NotAuthenticated):
        content.rootFolder.childEntity  # noqa: B018 - a property read is a Fetch


def test_logout_ends_the_session(si):
    content = si.RetrieveContent()
    content.sessionManager.Logout()
    with pytest.raises(vim.fault.NotAuthenticated):
        si.CurrentTime()


def test_an_idle_session_expires(si, vcenter):
    assert si.CurrentTime()
    now = vcenter.sessions._now()
    vcenter.sessions._now = lambda: now + vcenter.sessions.timeout + 1
    with pytest.raises(vim.fault.NotAuthenticated):
        si.CurrentTime()


def test_an_unknown_method_is_method_not_found_naming_it(si, dispatcher):
    vm = first_vm(si)
    response, fault = raw_call(
        dispatcher,
        si._stub.cookie,
        f'<FrobnicateVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">{vm._moId}</_this>'
        "</FrobnicateVM_Task>",
    )
    assert response.status == 500
    assert isinstance(fault, vmodl.fault.MethodNotFound)
    assert fault.method == "FrobnicateVM_Task" and "FrobnicateVM_Task" in fault.msg


def test_a_real_method_this_fake_does_not_emulate_is_method_not_found(si):
    vm = first_vm(si)
    with pytest.raises(vmodl.fault.MethodNotFound) as info:
        vm.SuspendVM_Task()
    assert info.value.method == "SuspendVM_Task"
    assert "does not implement: SuspendVM_Task" in info.value.msg


def test_an_unknown_property_is_invalid_property(si, dispatcher):
    vm = first_vm(si)
    response, fault = raw_call(
        dispatcher,
        si._stub.cookie,
        f'<Fetch xmlns="urn:vim25"><_this type="VirtualMachine">{vm._moId}</_this>'
        "<prop>bogusProperty</prop></Fetch>",
    )
    assert isinstance(fault, vmodl.query.InvalidProperty) and fault.name == "bogusProperty"


def test_a_deleted_object_is_managed_object_not_found(si):
    ghost = vim.VirtualMachine("vm-999", si._stub)
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        ghost.name  # noqa: B018


def test_malformed_xml_is_a_soap_fault_and_the_next_call_works(si, dispatcher):
    response = dispatcher.handle(b"<soapenv:Envelope><oops", None, si._stub.cookie)
    assert response.status == 500 and b"<soapenv:Fault>" in response.body
    fault = SoapAdapter.SoapResponseDeserializer(None).Deserialize(response.body, object)
    assert isinstance(fault, vmodl.fault.InvalidRequest) and "malformed" in fault.msg
    assert si.CurrentTime()


def test_a_fault_rule_fails_a_task(si, dispatcher):
    dispatcher.faults.replace(
        FaultRules.parse_list(
            [
                {
                    "operation": "PowerOffVM_Task",
                    "error": {"status": 500, "code": "InvalidState", "message": "injected"},
                }
            ]
        )
    )
    vm = first_vm(si)
    task = vm.PowerOffVM_Task()
    with pytest.raises(vim.fault.InvalidState, match="injected"):
        WaitForTask(task)
    assert vm.runtime.powerState == "poweredOn"


def test_a_fault_rule_answers_other_methods_with_a_soap_fault(si, dispatcher):
    dispatcher.faults.replace(
        FaultRules.parse_list(
            [
                {
                    "operation": "CurrentTime",
                    "times": 1,
                    "error": {"status": 500, "code": "Throttled", "message": "slow down"},
                }
            ]
        )
    )
    with pytest.raises(vmodl.fault.SystemError, match="Throttled: slow down"):
        si.CurrentTime()
    assert si.CurrentTime()  # `times: 1`: the rule is spent


def test_a_fault_rule_with_another_status_answers_that_status(si, dispatcher):
    dispatcher.faults.replace(
        FaultRules.parse_list(
            [{"operation": "Fetch", "error": {"status": 503, "code": "Busy", "message": "x"}}]
        )
    )
    response, _ = raw_call(
        dispatcher,
        si._stub.cookie,
        '<Fetch xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this>'
        "<prop>content</prop></Fetch>",
    )
    assert response.status == 503


def test_a_delay_rule_matches_its_method(si, dispatcher):
    dispatcher.faults.replace(FaultRules.parse_list([{"operation": "Retrieve*", "delay_ms": 1}]))
    si.RetrieveContent()
    assert dispatcher.faults.list()[0]["hits"] == 1
