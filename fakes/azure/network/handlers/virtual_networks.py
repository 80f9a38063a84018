"""virtualNetworks: get, list (group, subscription), create or update, delete, tags."""

from __future__ import annotations

from fakes.azure.arm.front import ArmResponse
from fakes.azure.arm.paging import paged

from ..models.virtual_networks import parse_vnet_body
from . import operation


def _key(doc: dict) -> tuple:
    return (doc["resourceGroup"].lower(), doc["name"].lower())


@operation("VirtualNetworks_Get")
def get_vnet(network, req):
    p = req.params
    body = network.virtual_network(p["resourceGroupName"], p["virtualNetworkName"])
    return ArmResponse(200, body)


@operation("VirtualNetworks_List", "VirtualNetworks_ListAll")
def list_vnets(network, req):
    vnets = network.virtual_networks
    docs = vnets.list(req.params.get("resourceGroupName"))
    return paged(req, docs, key=_key, render=vnets.render)


@operation("VirtualNetworks_CreateOrUpdate")
def put_vnet(network, req):
    p = req.params
    vnets = network.virtual_networks
    doc, created = vnets.create_or_update(
        p["resourceGroupName"], p["virtualNetworkName"], parse_vnet_body(req.json())
    )
    return ArmResponse(201 if created else 200, vnets.render(doc))


@operation("VirtualNetworks_UpdateTags")
def tag_vnet(network, req):
    p = req.params
    vnets = network.virtual_networks
    body = req.json()
    doc = vnets.set_tags(p["resourceGroupName"], p["virtualNetworkName"], body.get("tags"))
    return ArmResponse(200, vnets.render(doc))


@operation("VirtualNetworks_Delete")
def delete_vnet(network, req):
    p = req.params
    network.scope.group(p["resourceGroupName"])
    deleted = network.virtual_networks.delete(p["resourceGroupName"], p["virtualNetworkName"])
    return ArmResponse(200 if deleted else 204)
