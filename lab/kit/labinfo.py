"""`lab.json`: what a running lab publishes about itself, in its state directory.

The launcher writes it before any service starts (endpoints are known then, because ports are
chosen first) and again once every service is ready (process ids, status). Services read it to
find each other; `drlab env` and tests read it to reach the lab.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

LAB_FILE = "lab.json"
TOPOLOGY_FILE = "topology.json"


class LabNotFound(Exception):
    pass


def read_lab(state_dir: str | os.PathLike) -> dict:
    path = Path(state_dir) / LAB_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LabNotFound(
            f"no lab in {state_dir} (no {LAB_FILE}); start one with `drlab up`"
        ) from None
    except ValueError as exc:
        raise LabNotFound(f"{path} is not readable JSON: {exc}") from exc


def write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def write_lab(state_dir: str | os.PathLike, data: dict) -> None:
    write_json_atomic(Path(state_dir) / LAB_FILE, data)


def read_topology(state_dir: str | os.PathLike) -> dict:
    return json.loads((Path(state_dir) / TOPOLOGY_FILE).read_text())
