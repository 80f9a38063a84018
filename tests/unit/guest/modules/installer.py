"""A test lab program: installs the counting filter and the beacon service, like the mobility
service's installer will. `--exit N` makes it exit N without installing anything."""

from __future__ import annotations

FILTER = "tests.unit.guest.modules.counting_filter"
SERVICE = "tests.unit.guest.modules.beacon_service"


def main(guest_api, argv):
    if "--exit" in argv:
        return int(argv[argv.index("--exit") + 1])
    guest_api.install(
        drivers=[FILTER], services=[SERVICE], settings={SERVICE: {"installed_by": argv[0]}}
    )
    return 0
