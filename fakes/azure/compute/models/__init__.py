"""Compute's models: state and rules, no HTTP. One module per resource type."""

from __future__ import annotations

from datetime import UTC, datetime

from ..errors import InvalidParameter


def iso(ts: float | None) -> str | None:
    """Lab epoch seconds -> ISO 8601 UTC with 7 fractional digits, as Compute writes times."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0+00:00"


def check_tags(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidParameter("'tags' must be an object of string values.", target="tags")
    return dict(value)
