"""Script actions of a recovery plan: a lab script run with the plan's context.

A `ScriptActionDetails.path` names a script in the lab's script folders — `<state>/scripts/`
first, then the checkout's `scenarios/scripts/` — by a path relative to one of them (a path
that leaves them is refused: the ARM process runs it). A `.py` script runs with the lab's
Python, anything else with `/bin/sh`. Its environment:

    DRLAB_STATE_DIR         the lab's state directory (`drlab`, `lab.json`)
    DRLAB_PLAN              the recovery plan's name
    DRLAB_PLAN_OPERATION    TestFailover | PlannedFailover | UnplannedFailover
    DRLAB_PLAN_ACTION       the action's name
    DRLAB_PLAN_GROUP        the group it belongs to (1 = the first Boot group)
    DRLAB_PLAN_VMS          JSON: the VMs failed over so far: [{"vm", "azure_vm",
                            "resource_group", "ip", "recovery_point"}]

Exit status 0 passes; anything else fails the task and the job, with the end of the script's
output in the error. The action's `timeout` (ISO 8601, e.g. PT5M; default 10 minutes, at most
an hour) stops a script that runs too long.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from ..errors import SiteRecoveryError

DEFAULT_TIMEOUT = 600.0
MAX_TIMEOUT = 3600.0
OUTPUT_TAIL = 2000
REPO_SCRIPTS = Path(__file__).resolve().parents[4] / "scenarios" / "scripts"
OPERATIONS = {
    "testFailover": "TestFailover",
    "plannedFailover": "PlannedFailover",
    "unplannedFailover": "UnplannedFailover",
}


def parse_timeout(text) -> float:
    """ISO 8601 duration (PT1H2M3S, P0DT10M) in seconds; None: the default."""
    if text in (None, ""):
        return DEFAULT_TIMEOUT
    m = re.fullmatch(
        r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", str(text).strip()
    )
    if not m or not any(m.groups()):
        raise SiteRecoveryError(
            f"The script action timeout '{text}' is not an ISO 8601 duration (e.g. PT5M).",
            code="InvalidScriptActionTimeout",
        )
    days, hours, minutes, seconds = (float(g or 0) for g in m.groups())
    return min(MAX_TIMEOUT, days * 86400 + hours * 3600 + minutes * 60 + seconds)


def script_folders(state_dir: str | os.PathLike | None) -> list[Path]:
    folders = []
    if state_dir:
        folders.append(Path(state_dir) / "scripts")
    folders.append(REPO_SCRIPTS)
    return folders


def resolve(state_dir, path: str) -> Path:
    for folder in script_folders(state_dir):
        candidate = (folder / path).resolve()
        if candidate.is_relative_to(folder.resolve()) and candidate.is_file():
            return candidate
    where = " or ".join(str(f) for f in script_folders(state_dir))
    raise SiteRecoveryError(
        f"The script '{path}' is not in the lab's script folders ({where}).",
        code="ScriptNotFound",
        recommended_action="Put the script in <state>/scripts/ and name it by its relative path.",
    )


def _vms(job) -> list[dict]:
    out = []
    for key, made in (job.get("output") or {}).items():
        if key.startswith("made:") and made:
            out.append(
                {
                    "vm": made.get("source_vm"),
                    "azure_vm": made.get("vm"),
                    "resource_group": made.get("group"),
                    "ip": (made.get("boot") or {}).get("ip"),
                    "recovery_point": made.get("point"),
                }
            )
    return out


def run_script(vault, job, task) -> dict:
    args = task["args"]
    details = args["details"]
    state_dir = getattr(vault, "state_dir", None)
    script = resolve(state_dir, details["path"])
    timeout = parse_timeout(details.get("timeout"))
    command = [sys.executable, str(script)] if script.suffix == ".py" else ["/bin/sh", str(script)]
    env = {
        **os.environ,
        "DRLAB_STATE_DIR": str(state_dir or ""),
        "DRLAB_PLAN": job["input"]["plan"],
        "DRLAB_PLAN_OPERATION": OPERATIONS.get(job["input"]["action"], job["input"]["action"]),
        "DRLAB_PLAN_ACTION": args["action"],
        "DRLAB_PLAN_GROUP": str(args["group"] - 1),
        "DRLAB_PLAN_VMS": json.dumps(_vms(job)),
    }
    try:
        done = subprocess.run(
            command,
            env=env,
            cwd=str(script.parent),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise SiteRecoveryError(
            f"The script action '{args['action']}' did not finish within {timeout:g} s.",
            code="ScriptActionTimedOut",
        ) from exc
    output = (done.stdout + done.stderr)[-OUTPUT_TAIL:]
    if done.returncode != 0:
        raise SiteRecoveryError(
            f"The script action '{args['action']}' ({details['path']}) exited with status "
            f"{done.returncode}: {output.strip() or 'no output'}",
            code="ScriptActionFailed",
        )
    return {f"script:{args['action']}": {"exit": 0, "output": output}}
