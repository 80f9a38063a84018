"""Small shared pieces of the vault's models: time stamps, health errors, names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

# What the real service shows for an idle item: no scenario, a job named "None", year 1753.
IDLE_SCENARIO_TIME = "1753-01-01T01:01:01Z"
AZURE_FRIENDLY_NAME = "Microsoft Azure"

# Process server and configuration server thresholds (seed, section 3): the configuration
# server computes Warning/Critical; the vault only adds "no heartbeat for 15 minutes".
HEARTBEAT_CRITICAL_SECONDS = 15 * 60


def iso(ts: float | None) -> str | None:
    """Lab epoch seconds -> ISO 8601 UTC with 7 fractional digits, as ASR writes times."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def parse_iso(text: str) -> float:
    """ISO 8601 (with Z, an offset, or naive = UTC) -> epoch seconds."""
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    # Python accepts at most 6 fractional digits.
    if "." in t:
        head, _, tail = t.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        rest = tail[len(digits) :]
        t = f"{head}.{digits[:6]}{rest}"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def new_id() -> str:
    return str(uuid.uuid4())


def health_error(
    code: str,
    message: str,
    *,
    level: str = "Error",
    source: str | None = None,
    possible_causes: str | None = None,
    recommended_action: str | None = None,
    created: float | None = None,
    entity_id: str | None = None,
    category: str = "Replication",
    error_id: str | None = None,
) -> dict:
    """A HealthError as the API shows it. `error_id`: a stable id (what resolveHealthErrors
    names) for an error raised again and again; a new uuid when left out."""
    err = {
        "errorSource": source,
        "errorType": "ASR",
        "errorLevel": level,
        "errorCategory": category,
        "errorCode": str(code),
        "summaryMessage": message,
        "errorMessage": message,
        "possibleCauses": possible_causes,
        "recommendedAction": recommended_action,
        "creationTimeUtc": iso(created),
        "entityId": entity_id,
        "errorId": error_id or new_id(),
        "customerResolvability": "Allowed",
    }
    return {k: v for k, v in err.items() if v is not None}


def compact(d: dict) -> dict:
    """The dict without None values: the lab never sends nulls the spec does not allow."""
    return {k: v for k, v in d.items() if v is not None}
