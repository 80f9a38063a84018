"""GuestOperationsManager: programs and files inside a running guest, through its tools.

StartProgramInGuest / ListProcessesInGuest run and watch programs; InitiateFileTransferToGuest
returns a one-time URL on this vCenter's own HTTPS port (`/guestFile?id=...&token=...`) to
which the client PUTs the bytes, and InitiateFileTransferFromGuest one to GET them, as ESXi
does. MakeDirectoryInGuest and ValidateCredentialsInGuest are served too. Credentials are a
NamePasswordAuthentication checked by the guest OS; a powered-off VM answers InvalidPowerState,
a guest whose tools do not answer GuestOperationsUnavailable.

Not emulated: TerminateProcessInGuest, ReadEnvironmentVariableInGuest, file listing, moving
and deleting, temporary files, aliases, the Windows registry, SSPI/SAML/ticket authentication.
A transfer URL is valid for one use within 10 minutes.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pyVmomi import vim

from .errors import (
    GuestOperationsUnavailable,
    InvalidArgument,
    InvalidGuestLogin,
    InvalidPowerState,
)
from .guests import fault_of
from .registry import Call, ManagedObjectBase, soap_method, typed_array

TICKET_SECONDS = 600


@dataclass
class Transfer:
    """A pending guest file transfer, redeemed once through /guestFile."""

    direction: str  # "to_guest" | "from_guest"
    vm_moid: str
    user: str
    password: str
    guest_path: str
    overwrite: bool
    size: int
    token: str
    expires: float
    data: bytes | None = None


class GuestOperations:
    """What the guest managers share: finding a VM's running guest and checking credentials."""

    def __init__(self, vcenter):
        self.vc = vcenter
        self.transfers: dict[str, Transfer] = {}
        self._lock = threading.Lock()

    def guest(self, call: Call, vm_ref, auth):
        """(vm, handle, user, password) for a guest operation, or the fault vCenter gives."""
        registry = self.vc.registry
        with registry.lock:
            vm = registry.find(vm_ref, call.session.key if call.session else None)
            if not isinstance(vm, self.vc.vm_class):
                raise InvalidArgument("vm")
            if vm.power_state != "poweredOn":
                raise InvalidPowerState(vm.power_state, "poweredOn")
            tools = vm.tools_running
        if not isinstance(auth, vim.vm.guest.NamePasswordAuthentication):
            raise InvalidArgument("auth", "only NamePasswordAuthentication is supported")
        if not auth.username or auth.password is None:
            raise InvalidGuestLogin()
        handle = self.vc.guests.handle(vm)
        if handle is None or not tools:
            raise GuestOperationsUnavailable()
        return vm, handle, auth.username, auth.password

    def run(self, fn, *args, path=None):
        try:
            return fn(*args)
        except self.vc.guests.backend.GuestError as exc:
            raise fault_of(exc, path) from None

    # -- file transfer tickets ----------------------------------------------------------------
    def ticket(self, transfer: Transfer) -> str:
        ticket_id = secrets.token_hex(8)
        with self._lock:
            now = time.monotonic()
            for key in [k for k, t in self.transfers.items() if t.expires < now]:
                del self.transfers[key]
            self.transfers[ticket_id] = transfer
        return f"{self.vc.public_url}/guestFile?id={ticket_id}&token={transfer.token}"

    def redeem(self, ticket_id: str, token: str, direction: str) -> Transfer | None:
        with self._lock:
            transfer = self.transfers.get(ticket_id)
            if (
                transfer is None
                or transfer.direction != direction
                or transfer.expires < time.monotonic()
                or not secrets.compare_digest(transfer.token, token or "")
            ):
                return None
            del self.transfers[ticket_id]
            return transfer

    def upload(self, ticket_id: str, token: str, data: bytes) -> tuple[int, str]:
        """PUT /guestFile: write the bytes into the guest. (HTTP status, message)."""
        transfer = self.redeem(ticket_id, token, "to_guest")
        if transfer is None:
            return 404, "unknown or expired transfer"
        if transfer.size and len(data) != transfer.size:
            return 400, f"expected {transfer.size} bytes, got {len(data)}"
        handle = self._handle_of(transfer)
        if handle is None:
            return 503, "the guest is not running"
        try:
            handle.put_file(
                transfer.user, transfer.password, transfer.guest_path, data, transfer.overwrite
            )
        except self.vc.guests.backend.GuestError as exc:
            status = {"file_exists": 409, "file_not_found": 404, "invalid_login": 401}
            return status.get(exc.kind, 500), exc.message
        return 200, ""

    def download(self, ticket_id: str, token: str) -> bytes | None:
        transfer = self.redeem(ticket_id, token, "from_guest")
        return transfer.data if transfer is not None else None

    def _handle_of(self, transfer: Transfer):
        vm = self.vc.vms.get(transfer.vm_moid)
        return self.vc.guests.handle(vm) if vm is not None else None


class GuestOperationsManager(ManagedObjectBase):
    vim_type = vim.vm.guest.GuestOperationsManager

    def __init__(self, registry, moid, process_manager, file_manager, auth_manager):
        super().__init__(registry, moid)
        self.process_manager = process_manager
        self.file_manager = file_manager
        self.auth_manager = auth_manager

    def prop_processManager(self):
        return self.process_manager.ref

    def prop_fileManager(self):
        return self.file_manager.ref

    def prop_authManager(self):
        return self.auth_manager.ref


class GuestProcessManager(ManagedObjectBase):
    vim_type = vim.vm.guest.ProcessManager

    def __init__(self, registry, moid, ops: GuestOperations):
        super().__init__(registry, moid)
        self.ops = ops

    @soap_method("StartProgramInGuest", locked=False)
    def start_program(self, call: Call, vm, auth, spec):
        _vm, handle, user, password = self.ops.guest(call, vm, auth)
        if not spec.programPath:
            raise InvalidArgument("spec.programPath")
        return self.ops.run(
            handle.start_program,
            user,
            password,
            spec.programPath,
            spec.arguments or "",
            list(spec.envVariables or []) or None,
            spec.workingDirectory,
            path=spec.programPath,
        )

    @soap_method("ListProcessesInGuest", locked=False)
    def list_processes(self, call: Call, vm, auth, pids=None):
        _vm, handle, user, password = self.ops.guest(call, vm, auth)
        rows = self.ops.run(handle.list_processes, user, password, list(pids or []))
        return typed_array(
            vim.vm.guest.ProcessManager.ProcessInfo,
            [
                vim.vm.guest.ProcessManager.ProcessInfo(
                    name=row["name"],
                    pid=row["pid"],
                    owner=row["owner"],
                    cmdLine=row["cmd_line"],
                    startTime=_when(row["start_time"]),
                    endTime=_when(row.get("end_time")),
                    exitCode=row.get("exit_code"),
                )
                for row in rows
            ],
        )


class GuestFileManager(ManagedObjectBase):
    vim_type = vim.vm.guest.FileManager

    def __init__(self, registry, moid, ops: GuestOperations):
        super().__init__(registry, moid)
        self.ops = ops

    @soap_method("InitiateFileTransferToGuest", locked=False)
    def to_guest(self, call: Call, vm, auth, guestFilePath, fileAttributes, fileSize, overwrite):
        target, handle, user, password = self.ops.guest(call, vm, auth)
        if not guestFilePath:
            raise InvalidArgument("guestFilePath")
        if fileSize < 0:
            raise InvalidArgument("fileSize")
        # Credentials are checked now, as ESXi does, not when the bytes arrive.
        self.ops.run(handle.list_processes, user, password, [])
        transfer = Transfer(
            "to_guest",
            target.moid,
            user,
            password,
            guestFilePath,
            bool(overwrite),
            fileSize,
            secrets.token_urlsafe(16),
            time.monotonic() + TICKET_SECONDS,
        )
        return self.ops.ticket(transfer)

    @soap_method("InitiateFileTransferFromGuest", locked=False)
    def from_guest(self, call: Call, vm, auth, guestFilePath):
        target, handle, user, password = self.ops.guest(call, vm, auth)
        data = self.ops.run(handle.get_file, user, password, guestFilePath, path=guestFilePath)
        transfer = Transfer(
            "from_guest",
            target.moid,
            user,
            password,
            guestFilePath,
            False,
            len(data),
            secrets.token_urlsafe(16),
            time.monotonic() + TICKET_SECONDS,
            data,
        )
        url = self.ops.ticket(transfer)
        return vim.vm.guest.FileManager.FileTransferInformation(
            attributes=vim.vm.guest.FileManager.FileAttributes(), size=len(data), url=url
        )

    @soap_method("MakeDirectoryInGuest", locked=False)
    def make_directory(self, call: Call, vm, auth, directoryPath, createParentDirectories):
        _vm, handle, user, password = self.ops.guest(call, vm, auth)
        self.ops.run(
            handle.make_directory,
            user,
            password,
            directoryPath,
            bool(createParentDirectories),
            path=directoryPath,
        )


class GuestAuthManager(ManagedObjectBase):
    vim_type = vim.vm.guest.AuthManager

    def __init__(self, registry, moid, ops: GuestOperations):
        super().__init__(registry, moid)
        self.ops = ops

    @soap_method("ValidateCredentialsInGuest", locked=False)
    def validate(self, call: Call, vm, auth):
        _vm, handle, user, password = self.ops.guest(call, vm, auth)
        self.ops.run(handle.list_processes, user, password, [])


def _when(epoch: float | None):
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None
