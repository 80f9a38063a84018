"""virtualNetworks/subnets: get, list, create or update, delete."""

from __future__ import annotations

from fakes.azure.arm.front import ArmResponse
from fakes.azure.arm.paging import paged

from ..models.virtual_networks import parse_subnet_body
from . import operation


@operation("Subnets_Get")
def get_subnet(network, req):
    p = req.params
    body = network.subnet(p["resourceGroupName"], p["virtualNetworkName"], p["subnetName"])
    return ArmResponse(200, body)


@operation("Subnets_List")
def list_subnets(network, req):
    p = req.params
    vnets = network.virtual_networks
    doc = vnets.get(p["resourceGroupName"], p["virtualNetworkName"])
    return paged(
        req,
        doc["subnets"],
        key=lambda s: s["name"].lower(),
        render=lambda s: vnets.render_subnet(doc, s),
    )


@operation("Subnets_CreateOrUpdate")
def put_subnet(network, req):
    p = req.params
    group, vnet = p["resourceGroupName"], p["virtualNetworkName"]
    sub, created = network.virtual_networks.put_subnet(
        group, vnet, p["subnetName"], parse_subnet_body(req.json())
    )
    return ArmResponse(201 if created else 200, network.subnet(group, vnet, sub["name"]))


@operation("Subnets_Delete")
def delete_subnet(network, req):
    p = req.params
    deleted = network.virtual_networks.delete_subnet(
        p["resourceGroupName"], p["virtualNetworkName"], p["subnetName"]
    )
    return ArmResponse(200 if deleted else 204)
