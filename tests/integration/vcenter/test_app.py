"""The vCenter's HTTP surface through Flask's test client: SOAP over POST /sdk, the versions
document pyvmomi negotiates from, guest file transfers, the control API (faults, state, reset,
ready), the verify route."""

from __future__ import annotations

import pytest
from pyVmomi import SoapAdapter, vim, vmodl

from fakes.vcenter.app import create_app
from tests.helpers import wait_for
from tests.unit.vcenter.conftest import (  # noqa: F401 - fixtures
    PASSWORD,
    USER,
    lab_dirs,
    make_vcenter,
)
from tests.unit.vcenter.fakes_guest import FakeGuestBackend

ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>{}'
    "</soapenv:Body></soapenv:Envelope>"
)
LOGIN = (
    '<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this>'
    "<userName>{}</userName><password>{}</password></Login>"
)
CURRENT_TIME = (
    '<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this>'
    "</CurrentTime>"
)


@pytest.fixture
def vcenter(make_vcenter):  # noqa: F811
    vc = make_vcenter(backend=FakeGuestBackend())
    vc.start()
    wait_for(lambda: vc.ready, 10, message="autostart")
    return vc


@pytest.fixture
def client(vcenter):
    return create_app(vcenter).test_client(use_cookies=False)  # cookies only as sent


def soap(client, body: str, cookie: str | None = None):
    headers = {"SOAPAction": '"urn:vim25/8.0.3.0"', "Content-Type": "text/xml; charset=UTF-8"}
    if cookie:
        headers["Cookie"] = cookie
    return client.post("/sdk", data=ENVELOPE.format(body), headers=headers)


def fault_of(response):
    return SoapAdapter.SoapResponseDeserializer(None).Deserialize(response.data, object)


def login(client) -> str:
    response = soap(client, LOGIN.format(USER, PASSWORD))
    assert response.status_code == 200
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith('vmware_soap_session="') and "HttpOnly" in cookie
    return cookie  # pyvmomi sends the whole value back, attributes and all


def test_versions_document_for_pyvmomi(client):
    response = client.get("/sdk/vimServiceVersions.xml")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "<name>urn:vim25</name>" in text and "<version>8.0.3.0</version>" in text


def test_a_session_cookie_sent_back_verbatim_is_accepted(client):
    cookie = login(client)
    assert soap(client, CURRENT_TIME, cookie).status_code == 200
    response = soap(client, CURRENT_TIME)
    assert response.status_code == 500
    assert isinstance(fault_of(response), vim.fault.NotAuthenticated)


def test_bad_login_is_an_http_500_invalid_login(client):
    response = soap(client, LOGIN.format(USER, "not-the-password"))
    assert response.status_code == 500 and response.content_type.startswith("text/xml")
    assert "Set-Cookie" not in response.headers
    assert isinstance(fault_of(response), vim.fault.InvalidLogin)


def test_malformed_xml_is_a_soap_fault_and_the_service_keeps_serving(client):
    response = client.post("/sdk", data=b"<soapenv:Envelope><broken", content_type="text/xml")
    assert response.status_code == 500
    assert isinstance(fault_of(response), vmodl.fault.InvalidRequest)
    assert soap(client, CURRENT_TIME, login(client)).status_code == 200


def test_sdk_takes_post_only(client):
    assert client.get("/sdk").status_code == 405


def test_fault_rules_through_the_control_api(client):
    cookie = login(client)
    rules = [
        {
            "operation": "CurrentTime",
            "error": {"status": 500, "code": "InvalidState", "message": "injected by a test"},
        }
    ]
    assert client.post("/_lab/faults", json=rules).status_code == 200
    response = soap(client, CURRENT_TIME, cookie)
    fault = fault_of(response)
    assert response.status_code == 500 and isinstance(fault, vim.fault.InvalidState)
    assert fault.msg == "injected by a test"
    client.delete("/_lab/faults")
    assert soap(client, CURRENT_TIME, cookie).status_code == 200


def test_state_lists_inventory_and_power_states(client):
    state = client.get("/_lab/state").get_json()
    assert state["service"] == "vcenter" and state["ready"] is True
    vms = {vm["name"]: vm for vm in state["vms"]}
    assert set(vms) == {"win-app-01", "lin-web-01", "lin-db-01"}
    assert vms["win-app-01"]["power_state"] == "poweredOn"
    assert vms["win-app-01"]["disks"][0]["path"].endswith("win-app-01/win-app-01-flat.vmdk")
    assert state["datacenters"][0]["datastores"][0]["capacity"] == 2 * 2**40


def test_ready_and_reset(client, vcenter):
    assert client.get("/_lab/ready").status_code == 200
    vcenter.vm_by_name("lin-web-01").power_state = "poweredOff"
    assert client.post("/_lab/reset").status_code == 200
    assert vcenter.vm_by_name("lin-web-01").power_state == "poweredOn"
    assert client.get("/_lab/ready").status_code == 200


def test_verify_route(client):
    assert client.post("/_lab/vms/nope/verify").status_code == 404
    body = client.post("/_lab/vms/lin-web-01/verify").get_json()
    assert body["ok"] is True and body["vm"] == "lin-web-01"


def test_expiring_sessions(client):
    cookie = login(client)
    assert client.post("/_lab/sessions/expire").get_json()["expired"] == 1
    assert isinstance(fault_of(soap(client, CURRENT_TIME, cookie)), vim.fault.NotAuthenticated)


def test_guest_file_transfer_urls(client, vcenter):
    from fakes.vcenter.guest_operations import Transfer

    vm = vcenter.vm_by_name("lin-web-01")
    handle = vcenter.guests.handle(vm)
    transfer = Transfer("to_guest", vm.moid, "root", "Guest1!linux", "/tmp/x", True, 5, "tok", 1e12)
    url = vcenter.guest_ops.ticket(transfer)
    path = url.split("127.0.0.1:9", 1)[1]
    assert client.put(path.replace("tok", "bad"), data=b"hello").status_code == 404
    assert client.put(path, data=b"hello").status_code == 200
    assert handle.files["/tmp/x"] == b"hello"
