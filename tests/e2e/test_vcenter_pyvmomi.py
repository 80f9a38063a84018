"""A whole default lab driven by pyvmomi 9 over HTTPS (trusting the lab CA) and by `drlab vm`:
what a user's script sees of the fake vCenter, its guests and its disk files."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import ssl
from urllib.parse import urlparse

import pytest
import requests
from click.testing import CliRunner
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask, WaitForTasks
from pyVmomi import vim, vmodl

from lab import launcher
from lab.cli import main as drlab
from tests.helpers import pid_alive, wait_for

from .vcenter_lab import vcenter_topology

pytestmark = pytest.mark.e2e
GIB = 2**30


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("vcenter-lab")
    info = launcher.up(vcenter_topology(tmp_path_factory.mktemp("topology")), state_dir)
    try:
        yield info
    finally:
        launcher.down(state_dir)


def connect(lab, user=None, pwd=None):
    env = lab["env"]
    url = urlparse(env["DRLAB_VCENTER_URL"])
    return SmartConnect(
        host=url.hostname,
        port=url.port,
        user=user or env["DRLAB_VCENTER_USER"],
        pwd=pwd or env["DRLAB_VCENTER_PASSWORD"],
        sslContext=ssl.create_default_context(cafile=lab["ca_cert"]),
    )


@pytest.fixture
def si(lab):
    si = connect(lab)
    yield si
    Disconnect(si)


def vms_of(si) -> dict:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return {vm.name: vm for vm in view.view}
    finally:
        view.DestroyView()


def lab_state(lab) -> dict:
    url = lab["services"]["vcenter"]["url"]
    return requests.get(f"{url}/_lab/state", verify=lab["ca_cert"], timeout=10).json()


def guest_pid(lab, name):
    return next(vm["guest_pid"] for vm in lab_state(lab)["vms"] if vm["name"] == name)


def cli(lab, *args):
    result = CliRunner().invoke(drlab, ["vm", *args, "--state-dir", lab["state_dir"]])
    return result.exit_code, result.output


def sdk_post(lab, body: bytes, cookie: str | None = None):
    url = urlparse(lab["env"]["DRLAB_VCENTER_URL"])
    conn = http.client.HTTPSConnection(
        url.hostname, url.port, context=ssl.create_default_context(cafile=lab["ca_cert"])
    )
    headers = {"Content-Type": "text/xml", "SOAPAction": '"urn:vim25/8.0.3.0"'}
    if cookie:
        headers["Cookie"] = cookie
    with contextlib.closing(conn):
        conn.request("POST", "/sdk", body, headers)
        response = conn.getresponse()
        return response.status, response.read()


def test_env_exports_the_vcenter(lab):
    env = lab["env"]
    assert env["DRLAB_VCENTER_URL"].endswith("/sdk")
    assert env["DRLAB_VCENTER_USER"] == "administrator@vsphere.local"


def test_a_script_lists_vms_with_their_hardware_runtime_and_guest(si):
    vms = vms_of(si)
    assert set(vms) == {"win-app-01", "lin-web-01", "lin-db-01"}
    vm = vms["lin-db-01"]
    devices = vm.config.hardware.device
    assert [d.capacityInBytes for d in devices if isinstance(d, vim.vm.device.VirtualDisk)] == [
        4 * GIB,
        8 * GIB,
    ]
    assert vm.runtime.powerState == "poweredOn" and vm.runtime.host.name == "esxi-02.lab.local"
    assert vm.guest.toolsRunningStatus == "guestToolsRunning"
    assert vm.guest.ipAddress == "10.10.0.22"


def test_power_cycle_and_a_hard_power_off_kills_the_guest(lab, si):
    vms = vms_of(si)
    vm = vms["lin-web-01"]
    pid = guest_pid(lab, "lin-web-01")
    assert pid and pid_alive(pid)
    WaitForTask(vm.PowerOffVM_Task())
    assert vm.runtime.powerState == "poweredOff" and not pid_alive(pid)
    with pytest.raises(vim.fault.InvalidPowerState):
        WaitForTask(vm.PowerOffVM_Task())
    WaitForTasks([vm.PowerOnVM_Task()])
    assert vm.runtime.powerState == "poweredOn"
    assert vm.guest.toolsRunningStatus == "guestToolsRunning"
    new_pid = guest_pid(lab, "lin-web-01")
    assert new_pid != pid and pid_alive(new_pid)


def test_growing_a_disk_grows_its_file(lab, si):
    code, output = cli(lab, "resize-disk", "lin-db-01", "2", "10GiB")
    assert code == 0, output
    disk = next(vm for vm in lab_state(lab)["vms"] if vm["name"] == "lin-db-01")["disks"][1]
    assert disk["capacity"] == 10 * GIB and os.path.getsize(disk["path"]) == 10 * GIB
    vm = vms_of(si)["lin-db-01"]
    grown = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)][1]
    assert grown.capacityInKB * 1024 == grown.capacityInBytes == 10 * GIB
    code, output = cli(lab, "resize-disk", "lin-db-01", "Hard disk 2", "1GiB")
    assert code == 1 and "cannot shrink" in output


def test_application_data_checks_out_after_clean_and_hard_power_offs(lab):
    code, output = cli(lab, "power-off", "win-app-01")
    assert code == 0, output
    code, output = cli(lab, "verify", "win-app-01")
    assert code == 0 and "application data OK" in output
    assert cli(lab, "power-on", "win-app-01")[0] == 0
    code, output = cli(lab, "power-off", "--hard", "win-app-01")
    assert code == 0 and "(hard)" in output
    code, output = cli(lab, "verify", "--json", "win-app-01")
    assert code == 0 and json.loads(output)["ok"] is True
    assert cli(lab, "power-on", "win-app-01")[0] == 0
    code, output = cli(lab, "list", "--json")
    rows = {r["name"]: r for r in json.loads(output)}
    assert rows["win-app-01"]["power_state"] == "poweredOn"


def test_guest_files_go_in_with_a_put_and_come_back_with_a_get(lab, si):
    vm = vms_of(si)["lin-web-01"]
    files = si.RetrieveContent().guestOperationsManager.fileManager
    auth = vim.vm.guest.NamePasswordAuthentication(username="root", password="Guest1!linux")
    payload = os.urandom(4096)
    url = files.InitiateFileTransferToGuest(
        vm,
        auth,
        "/tmp/mobility-installer.bin",
        vim.vm.guest.FileManager.FileAttributes(),
        len(payload),
        True,
    )
    assert requests.put(url, data=payload, verify=lab["ca_cert"], timeout=30).status_code == 200
    info = files.InitiateFileTransferFromGuest(vm, auth, "/tmp/mobility-installer.bin")
    assert info.size == len(payload)
    assert requests.get(info.url, verify=lab["ca_cert"], timeout=30).content == payload


def test_bad_login_no_session_malformed_xml_and_unknown_methods(lab, si):
    with pytest.raises(vim.fault.InvalidLogin):
        connect(lab, pwd="definitely-wrong")
    envelope = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        "<soapenv:Body>{}</soapenv:Body></soapenv:Envelope>"
    )
    status, body = sdk_post(
        lab,
        envelope.format(
            '<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">'
            "ServiceInstance</_this></CurrentTime>"
        ).encode(),
    )
    assert status == 500 and b"NotAuthenticatedFault" in body
    status, body = sdk_post(lab, b"<soapenv:Envelope><unclosed")
    assert status == 500 and b"<soapenv:Fault>" in body and b"InvalidRequestFault" in body
    assert si.CurrentTime()  # still serving
    vm = vms_of(si)["lin-web-01"]
    with pytest.raises(vmodl.fault.MethodNotFound) as info:
        vm.CreateSnapshot_Task("s1", "", False, False)
    assert info.value.method == "CreateSnapshot_Task"


def test_faults_and_delays_from_the_control_api(lab, si):
    url = lab["services"]["vcenter"]["url"] + "/_lab/faults"
    rule = {
        "operation": "PowerOffVM_Task",
        "times": 1,
        "error": {"status": 500, "code": "TaskInProgress", "message": "busy"},
    }
    assert requests.post(url, json=[rule], verify=lab["ca_cert"], timeout=10).ok
    vm = vms_of(si)["lin-db-01"]
    try:
        with pytest.raises(vmodl.MethodFault, match="busy"):
            WaitForTask(vm.PowerOffVM_Task())
    finally:
        requests.delete(url, verify=lab["ca_cert"], timeout=10)
    assert vm.runtime.powerState == "poweredOn"
    wait_for(lambda: vm.guest.toolsRunningStatus == "guestToolsRunning", 10, message="tools")


OLD_PYVMOMI = "7.0.3"  # reads properties with RetrievePropertiesEx, not Fetch; API 7.0.3.0
OLD_CLIENT = """
import json, ssl, sys
from urllib.parse import urlparse
import pyVmomi
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

lab = json.load(open(sys.argv[1]))
env = lab["env"]
url = urlparse(env["DRLAB_VCENTER_URL"])
si = SmartConnect(host=url.hostname, port=url.port, user=env["DRLAB_VCENTER_USER"],
                  pwd=env["DRLAB_VCENTER_PASSWORD"],
                  sslContext=ssl.create_default_context(cafile=lab["ca_cert"]))
content = si.RetrieveContent()
view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
out = {"module": pyVmomi.__file__, "version": si._stub.version, "vms": {}}
for vm in view.view:
    disks = [d.capacityInBytes for d in vm.config.hardware.device
             if isinstance(d, vim.vm.device.VirtualDisk)]
    out["vms"][vm.name] = {"power": str(vm.runtime.powerState), "disks": disks}
vm = [v for v in view.view if v.name == "lin-web-01"][0]
WaitForTask(vm.PowerOffVM_Task())
WaitForTask(vm.PowerOnVM_Task())
out["after"] = str(vm.runtime.powerState)
Disconnect(si)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def old_pyvmomi(tmp_path_factory):
    """pyvmomi 7.0.3 installed apart (pip --target), or a skip when pip cannot fetch it."""
    import subprocess
    import sys

    target = tmp_path_factory.mktemp("pyvmomi-old")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-warn-conflicts",
            "--target",
            str(target),
            f"pyvmomi=={OLD_PYVMOMI}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.skip(f"pip cannot install pyvmomi {OLD_PYVMOMI}: {proc.stderr.strip()[-300:]}")
    return target


def test_an_older_pyvmomi_major_works_too(lab, old_pyvmomi, tmp_path):
    import subprocess
    import sys

    script = tmp_path / "client.py"
    script.write_text(OLD_CLIENT)
    lab_json = tmp_path / "lab.json"
    lab_json.write_text(json.dumps(lab))
    # -S: no site-packages, so the only pyvmomi on the path is the old one.
    proc = subprocess.run(
        [sys.executable, "-S", str(script), str(lab_json)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(old_pyvmomi)},
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["module"].startswith(str(old_pyvmomi))
    assert out["version"] == "vim.version.v7_0_3_0"
    assert out["vms"]["lin-db-01"]["disks"][0] == 4 * GIB
    assert out["after"] == "poweredOn"
