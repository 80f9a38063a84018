"""Resync on the configuration server's side, without I/O: which generation to hand the agent,
how its resync status reads to the vault, and when a generation is over.

The mobility agent reports its resync in every heartbeat (`status["replication"]["resync"]`:
required, generation, state, error, percent, per-disk counters keyed by disk index). The vault
asks for a resync with a `ResyncProtection` work item; the configuration server puts the next
generation into the agent's replication settings (`agent["resync_generation"]`), and the agent
starts it because it is greater than the last one it started. After it the Site Recovery worker
makes a recovery point at the tag `rs-complete-<epoch>-<generation>`.

The work item's id is kept with the generation (`settings["resync"]`), so a work item delivered
again (a restarted configuration server) waits for the same generation instead of asking for
another pass.
"""

from __future__ import annotations

COMPLETED, FAILED, RUNNING = "Completed", "Failed", "Running"
_COUNTERS = ("checksum_bytes", "differing_bytes", "sent_bytes", "blocks_sent", "blocks_cleared")


def tag(epoch: str, generation: int) -> str:
    """The crash-consistent tag the worker makes the point after a resync at."""
    return f"rs-complete-{epoch}-{generation}"


def reported(status: dict | None) -> dict:
    """The resync part of an agent's heartbeat status ({} when it reports none)."""
    resync = ((status or {}).get("replication") or {}).get("resync")
    return resync if isinstance(resync, dict) else {}


def disk_ids(agent_settings: dict | None) -> dict[str, str]:
    """Disk index (as text, the way JSON keys come) -> ASR disk id, from the agent's settings."""
    return {str(d["index"]): d["disk_id"] for d in (agent_settings or {}).get("disks") or []}


def vault_status(resync: dict, agent_settings: dict | None) -> dict:
    """The agent's resync status as the vault takes it: disks named by ASR disk id, not index
    (an index the settings do not know stays as it is)."""
    ids = disk_ids(agent_settings)
    out = dict(resync)
    out["disks"] = {ids.get(str(k), str(k)): v for k, v in (resync.get("disks") or {}).items()}
    required = resync.get("required")
    if isinstance(required, dict):
        out["required"] = {
            **required,
            "disks": [ids.get(str(i), str(i)) for i in required.get("disks") or []],
        }
    return out


def next_generation(settings: dict, resync: dict, work_item_id: str) -> int:
    """The generation a ResyncProtection work item asks for: the one already handed out for
    this work item, else one more than both the settings' and the agent's last."""
    asked = settings.get("resync") or {}
    if asked.get("workItem") == work_item_id and asked.get("generation"):
        return int(asked["generation"])
    current = int((settings.get("agent") or {}).get("resync_generation") or 0)
    return max(current, int(resync.get("generation") or 0)) + 1


def with_generation(
    settings: dict, generation: int, work_item_id: str, at: float, automatic: bool
) -> dict:
    """The protection settings with the agent told to run `generation` (a new dict)."""
    return {
        **settings,
        "agent": {**settings["agent"], "resync_generation": generation},
        "resync": {
            "generation": generation,
            "workItem": work_item_id,
            "requestedAt": at,
            "automatic": automatic,
        },
    }


def outcome(resync: dict, generation: int) -> str | None:
    """Completed or Failed once the agent reports `generation` finished, else None."""
    if int(resync.get("generation") or 0) != generation:
        return None
    state = resync.get("state")
    return state if state in (COMPLETED, FAILED) else None


def result(resync: dict, agent_settings: dict, generation: int) -> dict:
    """The work item's result after a completed generation (what the vault's job keeps)."""
    epoch = agent_settings["epoch"]
    status = vault_status(resync, agent_settings)
    totals = {
        name: sum(int((d or {}).get(name) or 0) for d in status["disks"].values())
        for name in _COUNTERS
    }
    return {
        "generation": generation,
        "epoch": epoch,
        "tag": tag(epoch, generation),
        "counters": {
            **totals,
            "startedAt": resync.get("started_at"),
            "finishedAt": resync.get("finished_at"),
            "disks": status["disks"],
        },
    }
