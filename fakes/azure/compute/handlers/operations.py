"""The status and result URLs of Compute's long-running operations (a lab extension route,
at the path the real service uses: `.../providers/Microsoft.Compute/locations/{region}/
operations/{id}`; with `monitor=true` it is the `Location` URL)."""

from __future__ import annotations

from fakes.azure.arm import lro
from fakes.azure.arm.errors import ArmError, ResourceNotFound
from fakes.azure.arm.front import ArmRequest, ArmResponse

from . import operation

STATUS_PATH = (
    "/subscriptions/{sub}/providers/Microsoft.Compute/locations/{location}/operations/{id}"
)


def accepted(compute, req: ArmRequest, op: dict, *, status: int = 202, body=None) -> ArmResponse:
    """The answer that starts a long-running operation: 201 with the resource (PUT) or 202."""
    path = STATUS_PATH.format(
        sub=compute.scope.subscription_id, location=compute.scope.location, id=op["id"]
    )
    headers = {"Azure-AsyncOperation": req.url(path), "Retry-After": str(lro.RETRY_AFTER_SECONDS)}
    if status == 202:
        headers["Location"] = req.url(path, monitor="true")
    return ArmResponse(status, body, headers)


@operation("ComputeOperations_Get")
def get_operation(compute, req):
    op = compute.operations.get(req.params["operationId"])
    if op is None:
        raise ResourceNotFound("Microsoft.Compute/locations/operations", req.params["operationId"])
    if req.query.get("monitor", "").lower() == "true":
        if op["status"] == "InProgress":
            return lro.still_running(req.url(req.path, monitor="true"))
        if op["status"] == "Failed":
            error = op.get("error") or {}
            raise ArmError(
                error.get("message", "The operation failed."),
                code=error.get("code", "OperationFailed"),
                status=op.get("errorStatus") or 500,
            )
        return ArmResponse(200, None)
    body = compute.operations.status_body(op)
    headers = {} if op["status"] != "InProgress" else {"Retry-After": str(lro.RETRY_AFTER_SECONDS)}
    return ArmResponse(200, body, headers)
