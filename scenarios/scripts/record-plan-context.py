"""A recovery plan's script action: record the context the plan ran it with.

Appends one JSON line to `<state>/scripts/output/<plan>.jsonl` (operation, action, group and
the VMs failed over so far, with their Azure names and IPs) and prints it. Exits 1 when the
plan has failed no VM over yet, so a misplaced action shows in the job.
"""

import json
import os
import sys
from pathlib import Path

context = {
    "plan": os.environ["DRLAB_PLAN"],
    "operation": os.environ["DRLAB_PLAN_OPERATION"],
    "action": os.environ["DRLAB_PLAN_ACTION"],
    "group": int(os.environ["DRLAB_PLAN_GROUP"]),
    "vms": json.loads(os.environ["DRLAB_PLAN_VMS"]),
}
out = Path(os.environ["DRLAB_STATE_DIR"]) / "scripts" / "output" / f"{context['plan']}.jsonl"
out.parent.mkdir(parents=True, exist_ok=True)
with out.open("a") as f:
    f.write(json.dumps(context) + "\n")
print(json.dumps(context))
if not context["vms"]:
    print("no VM has failed over yet", file=sys.stderr)
    sys.exit(1)
