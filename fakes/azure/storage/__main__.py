import os
import shutil
import sys

from lab.kit.labinfo import read_lab, read_topology
from lab.kit.pki import LabPKI

from . import accounts_env, azurite_command


def main() -> None:
    state_dir, name = os.environ["DRLAB_STATE_DIR"], os.environ["DRLAB_SERVICE"]
    lab, topology = read_lab(state_dir), read_topology(state_dir)
    me = lab["services"][name]
    node = shutil.which("node")
    if node is None:
        sys.exit("node is not on PATH: Azurite needs Node.js")
    location = os.path.join(state_dir, "services", name)
    os.makedirs(location, exist_ok=True)
    pki = LabPKI(os.path.join(state_dir, "pki"))
    storage = topology["storage"]
    cmd = azurite_command(
        node=node,
        node_modules=lab["node_modules"],
        port=me["port"],
        location=location,
        cert=pki.dir / f"{name}.pem",
        key=pki.dir / f"{name}.key",
        access_log=storage.get("access_log", False),
    )
    # This instance serves the disks account if it is the disks instance, the others if not.
    disks = name.endswith("-disks")
    accounts = [a for a in storage["accounts"] if (a["role"] == "disks") == disks]
    env = dict(os.environ, AZURITE_ACCOUNTS=accounts_env(accounts))
    os.execve(node, cmd, env)


if __name__ == "__main__":
    main()
