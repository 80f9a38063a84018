"""The vault itself and the answers of its long-running operations (status and result URLs)."""

from __future__ import annotations

from fakes.azure.arm import lro
from fakes.azure.arm.errors import ArmError
from fakes.azure.arm.front import ArmResponse

from .. import ids
from ..errors import NotFound
from ..models import jobs
from . import operation
from .common import ok, result_url


@operation("Vaults_Get")
def get_vault(service, req):
    scope = service.vault.scope
    return ok(
        {
            "id": scope.id,
            "name": scope.vault,
            "type": ids.VAULT_TYPE,
            "location": scope.location,
            "sku": {"name": "Standard"},
            "properties": {"provisioningState": "Succeeded"},
        }
    )


def _job_or_404(service, name: str) -> dict:
    job = service.vault.jobs.job(name)
    if job is None:
        raise NotFound(ids.T_JOB, name)
    return job


@operation("ReplicationOperationStatus_Get")
def operation_status(service, req):
    job = _job_or_404(service, req.params["jobName"])
    error = None
    if job["errors"]:
        s = job["errors"][0].get("serviceErrorDetails", {})
        error = {"code": s.get("code", "InternalError"), "message": s.get("message", "")}
    elif job["state"] == jobs.CANCELLED:
        error = {"code": "OperationCancelled", "message": f"The job '{job['name']}' was cancelled."}
    from ..models.common import iso

    return lro.status_response(
        operation_id=f"{service.vault.scope.id}/replicationOperationStatus/{job['name']}",
        name=job["name"],
        status=jobs.ARM_STATUS[job["state"]],
        start_time=iso(job["start"]),
        end_time=iso(job.get("end")),
        error=error,
    )


@operation("ReplicationOperationResults_Get")
def operation_result(service, req):
    job = _job_or_404(service, req.params["jobName"])
    if job["state"] not in jobs.TERMINAL:
        return lro.still_running(result_url(service, req, job["name"]))
    if job["state"] != jobs.SUCCEEDED:
        s = (job["errors"][0] if job["errors"] else {}).get("serviceErrorDetails", {})
        raise ArmError(
            s.get("message") or f"The job '{job['name']}' is {job['state']}.",
            code=s.get("code")
            or ("OperationCancelled" if job["state"] == jobs.CANCELLED else "OperationFailed"),
        )
    if not job.get("resultPath"):
        return ArmResponse(204)
    return service.get_resource(job["resultPath"], req)
