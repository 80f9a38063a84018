"""Glue for Azurite, the real Blob storage emulator, run as a lab service.

`python -m fakes.azure.storage` turns the lab's configuration into Azurite's command line and
replaces itself with the Node process (exec), so the launcher's process id is Azurite's own.
Azurite serves HTTPS with the lab certificate and checks OAuth tokens in `basic` mode: it
decodes the JWT and checks issuer, audience and times, but not the signature.
"""

from __future__ import annotations

from pathlib import Path

AZURITE_MAIN = Path("azurite") / "dist" / "src" / "blob" / "main.js"


def azurite_main(node_modules: str | Path) -> Path:
    return Path(node_modules) / AZURITE_MAIN


def azurite_command(
    *,
    node: str,
    node_modules: str | Path,
    port: int,
    location: Path,
    cert: Path,
    key: Path,
    access_log: bool = False,
) -> list[str]:
    cmd = [
        node,
        str(azurite_main(node_modules)),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(location),
        "--cert",
        str(cert),
        "--key",
        str(key),
        "--oauth",
        "basic",
        # Current Python SDKs send an x-ms-version newer than Azurite 3.37's.
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--loose",
    ]
    if not access_log:
        cmd.append("--silent")
    return cmd


def accounts_env(accounts: list[dict]) -> str:
    return ";".join(f"{a['name']}:{a['key']}" for a in accounts)
