"""What the handlers share: rendering helpers and the answers of long-running operations."""

from __future__ import annotations

from fakes.azure.arm import lro
from fakes.azure.arm.front import ArmRequest, ArmResponse
from fakes.azure.arm.paging import paged

from ..models.containers import require_container, require_fabric

__all__ = [
    "ok",
    "accepted_job",
    "paged",
    "require_fabric",
    "require_container",
    "status_url",
    "result_url",
]


def ok(body: dict, status: int = 200) -> ArmResponse:
    return ArmResponse(status, body)


def status_url(service, req: ArmRequest, job_name: str) -> str:
    return req.url(f"{service.vault.scope.path}/replicationOperationStatus/{job_name}")


def result_url(service, req: ArmRequest, job_name: str) -> str:
    return req.url(f"{service.vault.scope.path}/operationresults/{job_name}")


def accepted_job(service, req: ArmRequest, job: dict, location: str | None = None) -> ArmResponse:
    """202 for a job: Azure-AsyncOperation follows the job, Location gives its result."""
    return lro.accepted(
        status_url(service, req, job["name"]), location or result_url(service, req, job["name"])
    )
