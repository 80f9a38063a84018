"""The vSphere faults the fake vCenter answers with: one class per fault, worded as vCenter does.

A handler raises one of these; the dispatcher writes it as a `soapenv:Fault` (HTTP 500) and a
task stores it as its `info.error`. Each class names the pyvmomi fault type, so the client
raises exactly that type (`vim.fault.InvalidLogin`, `vmodl.fault.MethodNotFound`, ...).
"""

from __future__ import annotations

from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import F_OPTIONAL


class VimFault(Exception):
    """A vSphere fault: its pyvmomi type, its fields, and the message (faultstring)."""

    vim_type = vmodl.fault.SystemError
    message = "A general system error occurred."

    def __init__(self, message: str | None = None, **fields):
        self.text = message or self.message
        self.fields = fields
        super().__init__(self.text)

    def fault(self):
        fault = self.vim_type(**self.fields)
        fault.msg = self.text
        return fault


class SystemError_(VimFault):  # noqa: N801 - "SystemError" is a Python builtin
    vim_type = vmodl.fault.SystemError

    def __init__(self, reason: str):
        super().__init__(f"A general system error occurred: {reason}", reason=reason)


class InvalidRequest(VimFault):
    vim_type = vmodl.fault.InvalidRequest
    message = "The request is invalid."


class InvalidArgument(VimFault):
    vim_type = vmodl.fault.InvalidArgument

    def __init__(self, prop: str | None = None, message: str | None = None):
        text = message or (
            f"A specified parameter was not correct: {prop}"
            if prop
            else "A specified parameter was not correct."
        )
        super().__init__(text, invalidProperty=prop)


class NotSupported(VimFault):
    vim_type = vmodl.fault.NotSupported

    def __init__(self, what: str):
        super().__init__(f"The operation is not supported on the object: {what}")


class MethodNotFound(VimFault):
    vim_type = vmodl.fault.MethodNotFound

    def __init__(self, receiver, method: str):
        type_name = receiver._wsdlName if receiver is not None else "ManagedObject"
        moid = receiver._moId if receiver is not None else ""
        super().__init__(
            f"{type_name}:{moid} does not implement: {method}", receiver=receiver, method=method
        )


class ManagedObjectNotFound(VimFault):
    vim_type = vmodl.fault.ManagedObjectNotFound

    def __init__(self, ref):
        super().__init__(
            f"The object '{ref._wsdlName}:{ref._moId}' has already been deleted or has not "
            "been completely created",
            obj=ref,
        )


class InvalidProperty(VimFault):
    vim_type = vmodl.query.InvalidProperty

    def __init__(self, name: str):
        super().__init__(f"Invalid property: {name}", name=name)


class InvalidCollectorVersion(VimFault):
    vim_type = vmodl.query.InvalidCollectorVersion
    message = "The collector version is not valid."


class RequestCanceled(VimFault):
    vim_type = vmodl.fault.RequestCanceled
    message = "The request was canceled by the user."


class NotAuthenticated(VimFault):
    vim_type = vim.fault.NotAuthenticated

    def __init__(self, obj=None):
        super().__init__("The session is not authenticated.", object=obj, privilegeId="System.View")


class InvalidLogin(VimFault):
    vim_type = vim.fault.InvalidLogin
    message = "Cannot complete login due to an incorrect user name or password."


class InvalidState(VimFault):
    vim_type = vim.fault.InvalidState
    message = "The operation is not allowed in the current state."


class InvalidPowerState(VimFault):
    vim_type = vim.fault.InvalidPowerState

    def __init__(self, existing: str, requested: str | None = None):
        labels = {"poweredOn": "Powered on", "poweredOff": "Powered off", "suspended": "Suspended"}
        super().__init__(
            "The attempted operation cannot be performed in the current state "
            f"({labels.get(existing, existing)}).",
            existingState=existing,
            requestedState=requested,
        )


class InvalidDeviceOperation(VimFault):
    vim_type = vim.fault.InvalidDeviceOperation

    def __init__(self, index: int, reason: str, op: str | None = None):
        super().__init__(
            f"Invalid operation for device '{index}': {reason}", deviceIndex=index, badOp=op
        )


class InvalidDeviceSpec(VimFault):
    vim_type = vim.fault.InvalidDeviceSpec

    def __init__(self, index: int, reason: str):
        super().__init__(f"Invalid configuration for device '{index}': {reason}", deviceIndex=index)


class DuplicateName(VimFault):
    vim_type = vim.fault.DuplicateName

    def __init__(self, name: str, obj):
        super().__init__(f"The name '{name}' already exists.", name=name, object=obj)


class InvalidName(VimFault):
    vim_type = vim.fault.InvalidName

    def __init__(self, name: str):
        super().__init__(f"The name '{name}' is invalid.", name=name)


class InvalidDatastore(VimFault):
    vim_type = vim.fault.InvalidDatastore

    def __init__(self, name: str):
        super().__init__(f"The datastore '{name}' is not valid.", name=name)


class InvalidDatastorePath(VimFault):
    vim_type = vim.fault.InvalidDatastorePath

    def __init__(self, path: str):
        super().__init__(f"Invalid datastore path '{path}'.", datastorePath=path)


class FileNotFound(VimFault):
    vim_type = vim.fault.FileNotFound

    def __init__(self, path: str):
        super().__init__(f"File {path} was not found", file=path)


class FileAlreadyExists(VimFault):
    vim_type = vim.fault.FileAlreadyExists

    def __init__(self, path: str):
        super().__init__(f"The file {path} already exists", file=path)


class ToolsUnavailable(VimFault):
    vim_type = vim.fault.ToolsUnavailable
    message = (
        "Cannot complete operation because VMware Tools is not running in this virtual machine."
    )


class InvalidGuestLogin(VimFault):
    vim_type = vim.fault.InvalidGuestLogin
    message = (
        "Failed to authenticate with the guest operating system using the supplied credentials."
    )


class GuestOperationsUnavailable(VimFault):
    vim_type = vim.fault.GuestOperationsUnavailable
    message = "The guest operations agent could not be contacted."


def injected(code: str, message: str) -> VimFault:
    """A fault rule's error as a vSphere fault: its code names a fault type when it can.

    `InvalidState`, `TaskInProgress`, `NotAuthenticated`... become that pyvmomi type; any
    other code becomes a SystemError whose reason carries code and message.
    """
    for namespace in (vim.fault, vmodl.fault):
        typ = getattr(namespace, code, None)
        if isinstance(typ, type) and issubclass(typ, vmodl.MethodFault):
            required = [
                p.name
                for p in typ._GetPropertyList()
                if not p.flags & F_OPTIONAL and p.name not in ("dynamicType", "dynamicProperty")
            ]
            if not required:
                fault = VimFault(message)
                fault.vim_type = typ
                return fault
    return SystemError_(f"{code}: {message}")
