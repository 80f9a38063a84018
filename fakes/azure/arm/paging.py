"""Paging as ARM lists answer: `{"value": [...], "nextLink": "..."}`.

The skip token is opaque to clients: the sort key of the last item of the page, so a page
boundary stays right when items are added or removed between pages. The SDK follows
`nextLink` as given (re-adding its api-version), so the link carries every query parameter
that shaped the list (`$filter`, `$take`) plus `$skipToken`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any

from . import errors
from .front import ArmRequest, ArmResponse

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def _encode(key) -> str:
    raw = json.dumps(list(key) if isinstance(key, tuple) else [key], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(token: str) -> list:
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise errors.ArmError(
            f"The skip token '{token}' is not valid.", code="InvalidSkipToken"
        ) from None
    if not isinstance(value, list):
        raise errors.ArmError(f"The skip token '{token}' is not valid.", code="InvalidSkipToken")
    return value


def _as_list(key) -> list:
    return list(key) if isinstance(key, tuple) else [key]


def page_size_of(req: ArmRequest, default: int = DEFAULT_PAGE_SIZE) -> int:
    for name in ("$take", "$top"):
        if name in req.query:
            try:
                size = int(req.query[name])
            except ValueError:
                raise errors.ArmError(
                    f"The value of '{name}' must be an integer.", code="InvalidQueryParameterValue"
                ) from None
            if size < 1:
                raise errors.ArmError(
                    f"The value of '{name}' must be at least 1.", code="InvalidQueryParameterValue"
                )
            return min(size, MAX_PAGE_SIZE)
    return default


def paged(
    req: ArmRequest,
    items: Sequence[Any],
    *,
    key: Callable[[Any], Any],
    render: Callable[[Any], dict],
    page_size: int | None = None,
) -> ArmResponse:
    """One page of `items` (already sorted by `key`), rendered, with a nextLink if more."""
    size = page_size or page_size_of(req)
    token = req.query.get("$skipToken") or req.query.get("skipToken")
    start = 0
    if token:
        after = _decode(token)
        while start < len(items) and _as_list(key(items[start])) <= after:
            start += 1
    chunk = items[start : start + size]
    body: dict = {"value": [render(x) for x in chunk]}
    if start + size < len(items):
        query = {
            k: v
            for k, v in req.query.items()
            if k not in ("api-version", "$skipToken", "skipToken")
        }
        query["$skipToken"] = _encode(key(chunk[-1]))
        body["nextLink"] = req.url(req.path, **query)
    return ArmResponse(200, body)


def paged_query(
    req: ArmRequest,
    fetch: Callable[[list | None, int], Sequence[Any]],
    *,
    key: Callable[[Any], Any],
    render: Callable[[Any], dict],
    page_size: int | None = None,
) -> ArmResponse:
    """Like `paged`, for stores that can seek: `fetch(after_key, limit)` returns up to
    `limit` items whose key is greater than `after_key` (None: from the start), in key order."""
    size = page_size or page_size_of(req)
    token = req.query.get("$skipToken") or req.query.get("skipToken")
    after = _decode(token) if token else None
    chunk = list(fetch(after, size + 1))
    more = len(chunk) > size
    chunk = chunk[:size]
    body: dict = {"value": [render(x) for x in chunk]}
    if more:
        query = {
            k: v
            for k, v in req.query.items()
            if k not in ("api-version", "$skipToken", "skipToken")
        }
        query["$skipToken"] = _encode(key(chunk[-1]))
        body["nextLink"] = req.url(req.path, **query)
    return ArmResponse(200, body)
