from fakes.azure.siterecovery import ids

from .conftest import SCOPE


def test_ids_use_the_real_services_capital_subscriptions():
    assert SCOPE.policy("p").startswith("/Subscriptions/7efbbe65")
    assert SCOPE.path.startswith("/subscriptions/")


def test_parse_accepts_either_spelling_and_names_the_parts():
    rpi = SCOPE.protected_item("f", "cloud_1", "vm-1")
    assert SCOPE.parse(rpi) == {"fabric": "f", "container": "cloud_1", "protected_item": "vm-1"}
    assert (
        SCOPE.parse(
            rpi.replace("/Subscriptions/", "/subscriptions/").upper().replace("VM-1", "vm-1")
        )["protected_item"]
        == "vm-1"
    )
    assert (
        SCOPE.parse(
            "/subscriptions/other/resourceGroups/drlab-rg/providers/Microsoft.RecoveryServices/vaults/drlab-vault"
        )
        is None
    )
    assert SCOPE.parse(SCOPE.id + "/replicationNothing/x") is None


def test_looks_like():
    assert ids.looks_like("/subscriptions/s/resourceGroups/g", None)
    assert ids.looks_like(
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a",
        "Microsoft.Storage/storageAccounts",
    )
    assert not ids.looks_like(
        "/subscriptions/s/resourceGroups/g", "Microsoft.Storage/storageAccounts"
    )
