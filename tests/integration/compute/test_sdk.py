"""Compute and Network through azure-mgmt-compute and azure-mgmt-network against the lab's
ARM: the topology's VNets, a NIC, a managed disk imported from a seed disk snapshot, a VM
that boots on it, GET and list, power operations, errors in ARM's shape, delete."""

from __future__ import annotations

import contextlib
import uuid

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.helpers import pid_alive

from .conftest import RG


def test_the_topology_networks(sdk):
    _, network = sdk
    test_vnet = network.virtual_networks.get(RG, "vnet-test")
    assert test_vnet.address_space.address_prefixes == ["10.30.0.0/16"]
    assert test_vnet.tags == {"drlab-isolated": "true"}
    assert [s.name for s in test_vnet.subnets] == ["default"]
    assert {"vnet-prod", "vnet-test"} <= {v.name for v in network.virtual_networks.list_all()}
    assert {v.name for v in network.virtual_networks.list(RG)} >= {"vnet-prod", "vnet-test"}
    subnet = network.subnets.get(RG, "vnet-prod", "default")
    assert subnet.address_prefix == "10.20.1.0/24" and subnet.provisioning_state == "Succeeded"


@pytest.fixture
def names():
    suffix = uuid.uuid4().hex[:6]
    return {k: f"sdk-{k}-{suffix}" for k in ("vm", "os", "nic", "static")}


@pytest.fixture
def cleanup(sdk, names):
    yield
    compute, network = sdk
    with contextlib.suppress(HttpResponseError):
        compute.virtual_machines.begin_delete(RG, names["vm"]).result()
    for fn, name in (
        (compute.disks.begin_delete, names["os"]),
        (network.network_interfaces.begin_delete, names["nic"]),
        (network.network_interfaces.begin_delete, names["static"]),
    ):
        with contextlib.suppress(HttpResponseError):
            fn(RG, name).result()


def test_a_vm_through_the_sdks(sdk, seed_snapshot, shared_lab, names, cleanup):
    compute, network = sdk
    ref = seed_snapshot("lin-web-01")
    disk = compute.disks.begin_create_or_update(
        RG,
        names["os"],
        {
            "location": "westeurope",
            "sku": {"name": "Premium_LRS"},
            "properties": {
                "osType": "Linux",
                "creationData": {
                    "createOption": "Import",
                    "sourceUri": f"{shared_lab.env['DRLAB_DISKS_BLOB_URL']}/{ref}",
                },
            },
        },
    ).result()
    assert disk.disk_size_gb == 4 and disk.disk_state == "Unattached"
    assert disk.sku.name == "Premium_LRS" and disk.provisioning_state == "Succeeded"

    subnet = network.subnets.get(RG, "vnet-prod", "default")
    nic = network.network_interfaces.begin_create_or_update(
        RG,
        names["nic"],
        {
            "location": "westeurope",
            "properties": {
                "ipConfigurations": [
                    {
                        "name": "ipconfig1",
                        "properties": {
                            "subnet": {"id": subnet.id},
                            "privateIPAllocationMethod": "Static",
                            "privateIPAddress": "10.20.1.200",
                        },
                    }
                ]
            },
        },
    ).result()
    assert nic.ip_configurations[0].private_ip_address == "10.20.1.200"
    with pytest.raises(HttpResponseError) as err:  # the same static address twice
        network.network_interfaces.begin_create_or_update(
            RG,
            names["static"],
            {"location": "westeurope", "properties": nic.as_dict()["properties"]},
        ).result()
    assert err.value.error.code == "PrivateIPAddressIsAllocated"

    vm = compute.virtual_machines.begin_create_or_update(
        RG,
        names["vm"],
        {
            "location": "westeurope",
            "tags": {"drill": "sdk"},
            "properties": {
                "hardwareProfile": {"vmSize": "Standard_D2s_v3"},
                "storageProfile": {
                    "osDisk": {
                        "osType": "Linux",
                        "createOption": "Attach",
                        "managedDisk": {"id": disk.id},
                    }
                },
                "networkProfile": {"networkInterfaces": [{"id": nic.id}]},
            },
        },
    ).result()
    assert vm.provisioning_state == "Succeeded" and vm.hardware_profile.vm_size == "Standard_D2s_v3"
    assert vm.storage_profile.os_disk.managed_disk.id.lower() == disk.id.lower()
    assert vm.network_profile.network_interfaces[0].id.lower() == nic.id.lower()
    assert vm.tags == {"drill": "sdk"}

    view = compute.virtual_machines.instance_view(RG, names["vm"])
    codes = [s.code for s in view.statuses]
    assert codes[:2] == ["ProvisioningState/succeeded", "PowerState/running"]
    assert "ApplicationCheck/ok" in codes
    guest = view["drlabGuest"]
    assert guest["running"] and guest["applicationCheck"]["ok"]
    assert guest["hostname"] == "lin-web-01" and guest["network"]["private_ip"] == "10.20.1.200"
    assert guest["network"]["isolated"] is False
    assert view.vm_agent.statuses[0].display_status == "Ready"
    state = requests.get(f"{shared_lab.url('arm')}/_lab/state", verify=shared_lab.ca).json()
    mine = next(v for v in state["compute"]["virtual_machines"] if v["id"].endswith(names["vm"]))
    assert mine["guest_pid"] == guest["pid"] and mine["application_check_ok"] is True
    assert any(d["id"].endswith(names["os"]) for d in state["compute"]["disks"])
    assert any(n["id"].endswith(names["nic"]) for n in state["network"]["network_interfaces"])

    got = compute.virtual_machines.get(RG, names["vm"], expand="instanceView")
    assert got.instance_view.statuses[1].code == "PowerState/running"
    assert names["vm"] in {v.name for v in compute.virtual_machines.list(RG)}
    assert names["vm"] in {v.name for v in compute.virtual_machines.list_all()}
    assert compute.disks.get(RG, names["os"]).disk_state == "Attached"
    assert (
        network.network_interfaces.get(RG, names["nic"]).virtual_machine.id.lower() == vm.id.lower()
    )
    assert names["os"] in {d.name for d in compute.disks.list_by_resource_group(RG)}

    compute.virtual_machines.begin_power_off(RG, names["vm"]).result()
    stopped = compute.virtual_machines.instance_view(RG, names["vm"])
    assert stopped.statuses[1].code == "PowerState/stopped" and not stopped["drlabGuest"]["running"]
    assert not pid_alive(guest["pid"])
    compute.virtual_machines.begin_start(RG, names["vm"]).result()
    started = compute.virtual_machines.instance_view(RG, names["vm"])
    assert started.statuses[1].code == "PowerState/running" and started["drlabGuest"]["running"]
    compute.virtual_machines.begin_deallocate(RG, names["vm"]).result()
    assert compute.disks.get(RG, names["os"]).disk_state == "Reserved"

    compute.virtual_machines.begin_delete(RG, names["vm"]).result()
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get(RG, names["vm"])
    assert compute.disks.get(RG, names["os"]).disk_state == "Unattached"  # deleteOption Detach


def test_errors_in_arms_shape(sdk):
    compute, network = sdk
    with pytest.raises(ResourceNotFoundError) as err:
        compute.virtual_machines.get(RG, "no-such-vm")
    assert err.value.error.code == "ResourceNotFound"
    with pytest.raises(HttpResponseError) as err:
        compute.virtual_machines.get(RG, "x", api_version="2020-06-01")
    assert err.value.error.code == "InvalidApiVersionParameter"
    assert "2026-04-01" in err.value.error.message
    with pytest.raises(HttpResponseError) as err:
        list(compute.snapshots.list())
    assert err.value.status_code == 501 and "Snapshots_List" in err.value.error.message
    with pytest.raises(HttpResponseError) as err:
        network.public_ip_addresses.get(RG, "pip")
    assert err.value.status_code == 501 and "PublicIPAddresses_Get" in err.value.error.message
    with pytest.raises(ResourceNotFoundError) as err:
        compute.virtual_machines.get("another-group", "vm")
    assert err.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(HttpResponseError) as err:
        compute.virtual_machines.begin_create_or_update(
            RG,
            "bad",
            {
                "location": "westeurope",
                "properties": {
                    "hardwareProfile": {"vmSize": "Standard_B1s"},
                    "storageProfile": {
                        "imageReference": {"publisher": "Canonical"},
                        "osDisk": {"createOption": "FromImage"},
                    },
                },
            },
        ).result()
    assert err.value.status_code == 501
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get(RG, "bad")
