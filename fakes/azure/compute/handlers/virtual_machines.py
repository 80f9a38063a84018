"""virtualMachines: get (with `$expand=instanceView`), instanceView, list (group,
subscription), create or update, start, powerOff, deallocate, restart, delete.

Create, power actions and delete are long-running (201/202 with `Azure-AsyncOperation`,
`Retry-After: 1`); an action with nothing to do (start a running VM) answers 200 at once.
"""

from __future__ import annotations

from fakes.azure.arm.front import ArmResponse
from fakes.azure.arm.paging import paged

from ..models.virtual_machines import parse_vm_body
from . import operation
from .operations import accepted


def _key(doc: dict) -> tuple:
    return (doc["resourceGroup"].lower(), doc["name"].lower())


@operation("VirtualMachines_Get")
def get_vm(compute, req):
    p = req.params
    expand = req.query.get("$expand", "").lower()
    body = compute.vm(p["resourceGroupName"], p["vmName"], instance_view=expand == "instanceview")
    return ArmResponse(200, body)


@operation("VirtualMachines_InstanceView")
def instance_view(compute, req):
    p = req.params
    doc = compute.vms.get(p["resourceGroupName"], p["vmName"])
    return ArmResponse(200, compute.instance_view_of(doc))


@operation("VirtualMachines_List", "VirtualMachines_ListAll")
def list_vms(compute, req):
    docs = compute.vms.list(req.params.get("resourceGroupName"))
    return paged(req, docs, key=_key, render=compute.vms.render)


@operation("VirtualMachines_CreateOrUpdate")
def put_vm(compute, req):
    p = req.params
    doc, op = compute.begin_create_vm(
        p["resourceGroupName"], p["vmName"], parse_vm_body(req.json())
    )
    body = compute.vms.render(doc)
    if op is None:
        return ArmResponse(200, body)
    return accepted(compute, req, op, status=201, body=body)


def _action(action: str):
    def handler(compute, req):
        p = req.params
        skip = req.query.get("skipShutdown", "false").lower() == "true"
        op = compute.begin_action(p["resourceGroupName"], p["vmName"], action, skip)
        return ArmResponse(200) if op is None else accepted(compute, req, op)

    return handler


for _op, _action_name in (
    ("VirtualMachines_Start", "start"),
    ("VirtualMachines_PowerOff", "powerOff"),
    ("VirtualMachines_Deallocate", "deallocate"),
    ("VirtualMachines_Restart", "restart"),
):
    operation(_op)(_action(_action_name))


@operation("VirtualMachines_Delete")
def delete_vm(compute, req):
    p = req.params
    op = compute.begin_delete_vm(p["resourceGroupName"], p["vmName"])
    return ArmResponse(204) if op is None else accepted(compute, req, op)
