"""The response checker itself: it must see through discriminators and catch wrong bodies."""

import json

from tests.integration.siterecovery.openapi_check import OpenApiChecker, Record

from .conftest import SCOPE

CHECKER = OpenApiChecker()
FABRIC_URL = f"https://arm.test{SCOPE.path}/replicationFabrics/f?api-version=2025-08-01"


def fabric(custom):
    return {
        "id": SCOPE.fabric("f"),
        "name": "f",
        "type": "t",
        "properties": {"friendlyName": "f", "customDetails": custom},
    }


def check(body, status=200, url=FABRIC_URL, method="GET"):
    return CHECKER.check(Record(method, url, status, json.dumps(body).encode()))


def test_subtype_properties_are_checked_through_the_discriminator():
    assert (
        check(
            fabric({"instanceType": "VMware", "processServers": [{"id": "p", "health": "Normal"}]})
        )
        == []
    )
    problems = check(
        fabric({"instanceType": "VMware", "processServers": [{"id": "p", "health": "Sunny"}]})
    )
    assert problems and "Sunny" in problems[0]
    assert check(
        fabric({"instanceType": "VMware", "processServerCount": 3})
    )  # a string in the spec


def test_unknown_instance_types_are_errors():
    assert check(fabric({"instanceType": "Bogus"}))


def test_errors_must_be_arm_error_json():
    assert check({"error": {"code": "X", "message": "m"}}, status=404) == []
    assert check({"message": "m"}, status=404)


def test_undeclared_status_is_an_error():
    assert check(fabric({"instanceType": "VMware"}), status=201)
