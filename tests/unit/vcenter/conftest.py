"""In-memory wiring for vCenter unit tests: the VCenter model and its dispatcher, driven by
real pyvmomi through a stub adapter that hands request bytes to the dispatcher (no sockets)."""

from __future__ import annotations

import contextlib

import pytest
from pyVmomi import SoapAdapter, vim

from fakes.vcenter.dispatch import Dispatcher
from fakes.vcenter.models import VCenter
from lab.kit.clock import LabClock
from lab.topology import load_topology, to_json
from tests.helpers import wait_for

from .fakes_guest import FakeGuestBackend

USER, PASSWORD = "administrator@vsphere.local", "VMware1!lab"


class InMemoryStub(SoapAdapter.SoapStubAdapterBase):
    """pyvmomi's stub, with the HTTP round trip replaced by a call into the dispatcher."""

    def __init__(self, dispatcher: Dispatcher, version: str = "vim.version.v8_0_3_0"):
        super().__init__(version=version)
        self.dispatcher = dispatcher
        self.cookie = None
        self.requestContext = None
        self.last_status = None

    def InvokeMethod(self, mo, info, args, outerStub=None):  # noqa: N802 - pyvmomi's name
        request = self.SerializeRequest(mo, info, args)
        response = self.dispatcher.handle(request, self.versionId, self.cookie)
        self.last_status = response.status
        if response.set_cookie:
            self.cookie = response.set_cookie
        obj = SoapAdapter.SoapResponseDeserializer(self).Deserialize(response.body, info.result)
        if response.status == 200:
            return obj
        raise obj


def topology_dict(name: str = "default") -> dict:
    return to_json(load_topology(name))


@pytest.fixture
def lab_dirs(tmp_path):
    state = tmp_path / "state"
    data = state / "services" / "vcenter"
    data.mkdir(parents=True)
    clock = LabClock.start(state / "clock.json", 1.0)
    return state, data, clock


@pytest.fixture
def make_vcenter(lab_dirs):
    made = []

    def make(topology: dict | None = None, backend=None) -> VCenter:
        state, data, clock = lab_dirs
        vc = VCenter(
            topology=topology or topology_dict(),
            state_dir=state,
            data_dir=data,
            clock=clock,
            public_url="https://127.0.0.1:9",
            guest_backend=backend or FakeGuestBackend(),
        )
        made.append(vc)
        return vc

    yield make
    for vc in made:
        vc.stopping.set()
        vc.tasks.wait_idle(5)
        with contextlib.suppress(Exception):
            vc.store.close()


@pytest.fixture
def vcenter(make_vcenter):
    vc = make_vcenter()
    vc.start()
    wait_for(lambda: vc.ready, 10, message="autostart")
    return vc


@pytest.fixture
def dispatcher(vcenter):
    return Dispatcher(vcenter)


@pytest.fixture
def si(dispatcher):
    """A logged-in pyvmomi ServiceInstance wired to the dispatcher in memory."""
    stub = InMemoryStub(dispatcher)
    si = vim.ServiceInstance("ServiceInstance", stub)
    si.content.sessionManager.Login(USER, PASSWORD, None)
    return si
