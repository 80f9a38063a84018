"""Protectable items follow the configuration server's inventory pushes."""

import pytest

from fakes.azure.siterecovery.errors import InvalidInput
from fakes.azure.siterecovery.models import protectable_items as pi
from fakes.azure.siterecovery.models.fabrics import container_name_of


def vm(uid, name, **kw):
    return {
        "instanceUuid": uid,
        "name": name,
        "osType": "Linux",
        "disks": [{"id": f"{uid}-d0", "capacityInBytes": 2**30}],
        **kw,
    }


@pytest.fixture
def fabric(vault):
    with vault.store.transaction() as db:
        vault.store.put(
            db,
            "fabrics",
            ("cs1",),
            {"name": "cs1", "kind": "VMware", "providerId": "p"},
            kind="VMware",
        )
        for vc in ("vc1", "vc2"):
            vault.store.put(
                db, "vcenters", ("cs1", vc), {"name": vc, "fabric": "cs1", "friendlyName": vc}
            )
    return vault.store.get("fabrics", "cs1")


def names(vault):
    return sorted(d["friendlyName"] for d in vault.store.docs("protectable_items"))


def test_new_changed_and_gone(vault, fabric):
    vms = pi.check_inventory({"virtualMachines": [vm("u1", "a"), vm("u2", "b")]})
    assert pi.sync_inventory(vault, fabric, "vc1", vms)["added"] == 2
    vms = pi.check_inventory(
        {"virtualMachines": [vm("u1", "a", powerState="poweredOff"), vm("u3", "c")]}
    )
    result = pi.sync_inventory(vault, fabric, "vc1", vms)
    assert (result["added"], result["updated"], result["removed"]) == (1, 1, 1)
    assert names(vault) == ["a", "c"]
    assert (
        vault.store.get("protectable_items", "cs1", container_name_of("cs1"), "u1")["vm"][
            "powerState"
        ]
        == "poweredOff"
    )


def test_a_protected_vm_that_disappears_is_kept_as_missing(vault, fabric):
    pi.sync_inventory(
        vault, fabric, "vc1", pi.check_inventory({"virtualMachines": [vm("u1", "a")]})
    )
    container = container_name_of("cs1")
    with vault.store.transaction() as db:
        vault.store.put(
            db,
            "protected_items",
            ("cs1", container, "u1"),
            {"name": "u1", "protectableItemName": "u1"},
        )
    pi.sync_inventory(vault, fabric, "vc1", [])
    doc = vault.store.get("protectable_items", "cs1", container, "u1")
    assert doc["missing"] is True
    assert pi.readiness_errors(doc)


def test_duplicate_uuid_from_another_vcenter_is_a_conflict(vault, fabric):
    pi.sync_inventory(
        vault, fabric, "vc1", pi.check_inventory({"virtualMachines": [vm("u1", "a")]})
    )
    result = pi.sync_inventory(
        vault, fabric, "vc2", pi.check_inventory({"virtualMachines": [vm("u1", "a-copy")]})
    )
    assert result["conflicts"] == [{"instanceUuid": "u1", "name": "a-copy", "reportedBy": "vc1"}]
    assert names(vault) == ["a"]


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"virtualMachines": [{"name": "x"}]},
        {"virtualMachines": [vm("u1", "a", osType="BeOS")]},
        {"virtualMachines": [vm("u1", "a", disks=[])]},
        {"virtualMachines": [vm("u1", "a"), vm("u1", "b")]},
    ],
)
def test_bad_inventory_is_refused(bad):
    with pytest.raises(InvalidInput):
        pi.check_inventory(bad)
