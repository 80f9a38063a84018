"""A restarted ARM service re-adopts the guests still running, and powers back on the VMs
recorded running whose guest is gone."""

from __future__ import annotations

import contextlib
import os
import signal
import uuid

from azure.core.exceptions import HttpResponseError

from lab import launcher
from tests.helpers import pid_alive, wait_for

from .conftest import RG


def test_arm_restart_readopts_and_powers_back_on(shared_lab, sdk, seed_snapshot):
    compute, network = sdk
    name = f"rs-{uuid.uuid4().hex[:6]}"
    ref = seed_snapshot("win-app-01", os_family="windows")
    disk = compute.disks.begin_create_or_update(
        RG,
        f"{name}-os",
        {
            "location": "westeurope",
            "properties": {
                "creationData": {
                    "createOption": "Import",
                    "sourceUri": f"{shared_lab.env['DRLAB_DISKS_BLOB_URL']}/{ref}",
                }
            },
        },
    ).result()
    subnet = network.subnets.get(RG, "vnet-test", "default")
    nic = network.network_interfaces.begin_create_or_update(
        RG,
        f"{name}-nic",
        {
            "location": "westeurope",
            "properties": {
                "ipConfigurations": [
                    {"name": "ipconfig1", "properties": {"subnet": {"id": subnet.id}}}
                ]
            },
        },
    ).result()
    try:
        compute.virtual_machines.begin_create_or_update(
            RG,
            name,
            {
                "location": "westeurope",
                "properties": {
                    "hardwareProfile": {"vmSize": "Standard_D4s_v3"},
                    "storageProfile": {
                        "osDisk": {
                            "createOption": "Attach",
                            "managedDisk": {"id": disk.id},
                            "deleteOption": "Delete",
                        }
                    },
                    "networkProfile": {
                        "networkInterfaces": [
                            {"id": nic.id, "properties": {"deleteOption": "Delete"}}
                        ]
                    },
                },
            },
        ).result()
        guest = compute.virtual_machines.instance_view(RG, name)["drlabGuest"]
        assert guest["running"] and guest["hostname"] == "win-app-01"
        pid = guest["pid"]

        launcher.restart_service(shared_lab.state_dir, "arm")
        after = compute.virtual_machines.instance_view(RG, name)
        assert after.statuses[1].code == "PowerState/running"
        assert after["drlabGuest"]["pid"] == pid and after["drlabGuest"]["running"]

        os.kill(pid, signal.SIGKILL)  # the guest dies while ARM is down
        wait_for(lambda: not pid_alive(pid), 10, message="the guest to die")
        launcher.restart_service(shared_lab.state_dir, "arm")

        def back():
            g = compute.virtual_machines.instance_view(RG, name)["drlabGuest"]
            return g if g["running"] else None

        g = wait_for(back, 60, interval=0.2, message="the VM to be powered back on")
        assert g["pid"] != pid and g["applicationCheck"]["ok"]
        assert g["boot"]["previousShutdownClean"] is False  # it was killed
    finally:
        with contextlib.suppress(HttpResponseError):
            compute.virtual_machines.begin_delete(RG, name).result()
        for fn, n in (
            (compute.disks.begin_delete, f"{name}-os"),
            (network.network_interfaces.begin_delete, f"{name}-nic"),
        ):
            with contextlib.suppress(HttpResponseError):
                fn(RG, n).result()
    assert not pid_alive(pid)
    assert [d.name for d in compute.disks.list() if d.name == f"{name}-os"] == []
