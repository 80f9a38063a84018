"""The mobility service installer, run inside a guest by push install (a lab program).

A process server copies this program and its settings file into the guest with vSphere guest
operations and starts it, as the real push install runs UnifiedAgent.exe and then the agent
configurator with the configuration server's endpoint and passphrase file. It records the disk
filter (a driver) and the agent (a service) in the guest's registry, with the agent's settings,
and the guest loads them at once. Exit codes: 0 installed, 2 bad arguments, 3 bad settings.

    installer --cs-endpoint URL --passphrase-file PATH --ca-file PATH [--verify-mode on|off]
              [--journal-limit-mb N]
"""

from __future__ import annotations

import argparse

FILTER = "components.mobility.filter"
AGENT = "components.mobility.agent"
PROGRAM_HEADER = "#!drlab-program components.mobility.installer\n"


def main(guest_api, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=argv[0], add_help=False, exit_on_error=False)
    parser.add_argument("--cs-endpoint", required=True)
    parser.add_argument("--passphrase-file", required=True)
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--verify-mode", choices=("on", "off"), default="on")
    parser.add_argument("--journal-limit-mb", type=int, default=512)
    try:
        args = parser.parse_args(argv[1:])
    except (argparse.ArgumentError, SystemExit) as exc:
        guest_api.log.error("mobility installer: bad arguments: %s", exc)
        return 2
    try:
        passphrase = guest_api.read_file(args.passphrase_file).decode().strip()
        ca_pem = guest_api.read_file(args.ca_file).decode()
    except Exception as exc:  # a missing file is the caller's mistake, reported by exit code
        guest_api.log.error("mobility installer: cannot read its settings: %s", exc)
        return 3
    if not passphrase or "BEGIN CERTIFICATE" not in ca_pem:
        guest_api.log.error("mobility installer: empty passphrase or no CA certificate")
        return 3
    guest_api.install(
        drivers=[FILTER],
        services=[AGENT],
        settings={
            FILTER: {
                "verify_mode": args.verify_mode == "on",
                "journal_limit_mb": max(1, args.journal_limit_mb),
            },
            AGENT: {"cs_endpoint": args.cs_endpoint, "passphrase": passphrase, "ca_pem": ca_pem},
        },
    )
    guest_api.log.info("mobility service installed; configuration server %s", args.cs_endpoint)
    return 0
