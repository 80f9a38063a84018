"""Push install of the mobility service, through vSphere guest operations (pyvmomi).

As the real process server does with UnifiedAgent: copy the installer and its settings into
the guest (InitiateFileTransferToGuest + an HTTPS PUT to the URL it returns), start it
(StartProgramInGuest), and wait for its exit code (ListProcessesInGuest). Each step is
reported, so the enable-protection job can show it.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable

import requests
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

log = logging.getLogger(__name__)

INSTALLER = (
    "#!drlab-program components.mobility.installer\n"
    "# Microsoft Azure Site Recovery Unified Agent (lab)\n"
)
WINDOWS_DIR = "C:\\ProgramData\\ASRSetupFiles"
LINUX_DIR = "/tmp/ASRSetupFiles"
EXIT_TIMEOUT = 120.0


class PushInstallFailed(Exception):
    def __init__(self, step: str, message: str):
        super().__init__(f"{step}: {message}")
        self.step = step


def _paths(os_family: str) -> dict:
    if os_family == "windows":
        d = WINDOWS_DIR
        return {
            "dir": d,
            "installer": f"{d}\\UnifiedAgent.exe",
            "passphrase": f"{d}\\connection.passphrase",
            "ca": f"{d}\\lab-ca.pem",
        }
    d = LINUX_DIR
    return {
        "dir": d,
        "installer": f"{d}/install",
        "passphrase": f"{d}/connection.passphrase",
        "ca": f"{d}/lab-ca.pem",
    }


def push_install(job: dict, ca_file: str, report: Callable[[str, str], None]) -> int:
    """Install the mobility service in one VM. `job` (from the configuration server) names the
    vCenter and its account, the VM (moref), the guest account, and the configuration server's
    endpoint and passphrase. `report(step, state)` is called as steps start and end."""
    vc = job["vcenter"]
    context = ssl.create_default_context(cafile=ca_file)
    step = "Connecting to vCenter"
    report(step, "InProgress")
    try:
        si = SmartConnect(
            host=vc["host"],
            port=vc["port"],
            user=vc["user"],
            pwd=vc["password"],
            sslContext=context,
        )
    except Exception as exc:
        raise PushInstallFailed(step, f"cannot log in to vCenter {vc['host']}: {exc}") from exc
    try:
        content = si.RetrieveContent()
        vm = vim.VirtualMachine(job["vm_moref"], si._stub)
        auth = vim.vm.guest.NamePasswordAuthentication(
            username=job["guest_user"], password=job["guest_password"]
        )
        gom = content.guestOperationsManager
        paths = _paths(job["os_family"])
        report(step, "Succeeded")

        step = "Copying the mobility service installer"
        report(step, "InProgress")
        files = {
            paths["installer"]: INSTALLER.encode(),
            paths["passphrase"]: job["passphrase"].encode(),
            paths["ca"]: job["ca_pem"].encode(),
        }
        try:
            try:
                gom.fileManager.MakeDirectoryInGuest(vm, auth, paths["dir"], True)
            except vim.fault.FileAlreadyExists:
                pass
            for path, data in files.items():
                url = gom.fileManager.InitiateFileTransferToGuest(
                    vm, auth, path, vim.vm.guest.FileManager.FileAttributes(), len(data), True
                )
                resp = requests.put(url, data=data, verify=ca_file, timeout=30)
                if resp.status_code >= 300:
                    raise PushInstallFailed(step, f"upload of {path} answered {resp.status_code}")
        except vim.fault.InvalidGuestLogin as exc:
            raise PushInstallFailed(
                step, "the guest account was refused (InvalidGuestLogin)"
            ) from exc
        except vmodl_fault() as exc:
            raise PushInstallFailed(step, _fault_text(exc)) from exc
        report(step, "Succeeded")

        step = "Installing Mobility Service"
        report(step, "InProgress")
        verify_mode = "on" if job.get("verify_mode", True) else "off"
        arguments = (
            f'--cs-endpoint {job["cs_endpoint"]} --passphrase-file "{paths["passphrase"]}" '
            f'--ca-file "{paths["ca"]}" --verify-mode {verify_mode} '
            f"--journal-limit-mb {int(job.get('journal_limit_mb', 512))}"
        )
        try:
            pid = gom.processManager.StartProgramInGuest(
                vm,
                auth,
                vim.vm.guest.ProcessManager.ProgramSpec(
                    programPath=paths["installer"], arguments=arguments
                ),
            )
            exit_code = _wait_exit(gom.processManager, vm, auth, pid)
        except vmodl_fault() as exc:
            raise PushInstallFailed(step, _fault_text(exc)) from exc
        if exit_code != 0:
            raise PushInstallFailed(step, f"the installer exited with code {exit_code}")
        report(step, "Succeeded")
        return exit_code
    finally:
        try:
            Disconnect(si)
        except Exception:  # logging out of a lab vCenter that went away is not an error here
            pass


def _wait_exit(pm, vm, auth, pid: int) -> int:
    deadline = time.monotonic() + EXIT_TIMEOUT
    delay = 0.05
    while time.monotonic() < deadline:
        procs = pm.ListProcessesInGuest(vm, auth, [pid])
        if procs and procs[0].exitCode is not None and procs[0].endTime is not None:
            return int(procs[0].exitCode)
        time.sleep(delay)  # polling the guest, as real tools do; bounded by the deadline
        delay = min(delay * 2, 0.5)
    raise PushInstallFailed("Installing Mobility Service", "the installer did not finish in time")


def vmodl_fault():
    from pyVmomi import vmodl

    return vmodl.MethodFault


def _fault_text(exc) -> str:
    return f"{type(exc).__name__}: {getattr(exc, 'msg', '') or exc}"
