"""networkInterfaces: get, list (group, subscription), create or update, delete, tags."""

from __future__ import annotations

from fakes.azure.arm.front import ArmResponse
from fakes.azure.arm.paging import paged

from ..models.network_interfaces import parse_nic_body
from . import operation


def _key(doc: dict) -> tuple:
    return (doc["resourceGroup"].lower(), doc["name"].lower())


@operation("NetworkInterfaces_Get")
def get_nic(network, req):
    p = req.params
    return ArmResponse(200, network.nic(p["resourceGroupName"], p["networkInterfaceName"]))


@operation("NetworkInterfaces_List", "NetworkInterfaces_ListAll")
def list_nics(network, req):
    nics = network.network_interfaces
    docs = nics.list(req.params.get("resourceGroupName"))
    return paged(req, docs, key=_key, render=nics.render)


@operation("NetworkInterfaces_CreateOrUpdate")
def put_nic(network, req):
    p = req.params
    nics = network.network_interfaces
    doc, created = nics.create_or_update(
        p["resourceGroupName"], p["networkInterfaceName"], parse_nic_body(req.json())
    )
    return ArmResponse(201 if created else 200, nics.render(doc))


@operation("NetworkInterfaces_UpdateTags")
def tag_nic(network, req):
    p = req.params
    nics = network.network_interfaces
    doc = nics.set_tags(p["resourceGroupName"], p["networkInterfaceName"], req.json().get("tags"))
    return ArmResponse(200, nics.render(doc))


@operation("NetworkInterfaces_Delete")
def delete_nic(network, req):
    p = req.params
    network.scope.group(p["resourceGroupName"])
    deleted = network.delete_nic(p["resourceGroupName"], p["networkInterfaceName"])
    return ArmResponse(200 if deleted else 204)
