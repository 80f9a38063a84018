"""Long-running operations as ARM answers them, generic over providers.

An accepted operation answers 202 with both `Azure-AsyncOperation` (the status URL) and
`Location` (the result URL) and `Retry-After: 1`: azure-mgmt-core's ARMPolling then polls the
status URL every second (the header wins over the SDK's 30 s default; `Retry-After: 0` would
fall back to it) and, when the status is terminal, makes its final GET on the original URL
(PUT/PATCH) or on `Location` (POST). Both are needed: without `Location`, a POST's result
would be read from the status body.

The provider owns the operation's state (Site Recovery: its job); this module only shapes the
answers: the 202, the status body, and the `Location` answer while the operation runs.
"""

from __future__ import annotations

from .front import ArmResponse

RETRY_AFTER_SECONDS = 1

IN_PROGRESS = "InProgress"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
CANCELED = "Canceled"
TERMINAL = (SUCCEEDED, FAILED, CANCELED)


def lro_headers(status_url: str, location_url: str) -> dict[str, str]:
    return {
        "Azure-AsyncOperation": status_url,
        "Location": location_url,
        "Retry-After": str(RETRY_AFTER_SECONDS),
    }


def accepted(status_url: str, location_url: str) -> ArmResponse:
    """The initial answer of a long-running operation."""
    return ArmResponse(202, None, lro_headers(status_url, location_url))


def status_response(
    *,
    operation_id: str,
    name: str,
    status: str,
    start_time: str | None = None,
    end_time: str | None = None,
    error: dict | None = None,
) -> ArmResponse:
    """The body of `Azure-AsyncOperation`: {id, name, status, startTime, endTime, error}."""
    body = {"id": operation_id, "name": name, "status": status}
    if start_time:
        body["startTime"] = start_time
    if end_time:
        body["endTime"] = end_time
    if error and status != SUCCEEDED:
        body["error"] = error
    headers = {} if status in TERMINAL else {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return ArmResponse(200, body, headers)


def still_running(location_url: str) -> ArmResponse:
    """The `Location` answer while the operation runs: 202 and where to ask again."""
    return ArmResponse(
        202, None, {"Location": location_url, "Retry-After": str(RETRY_AFTER_SECONDS)}
    )
