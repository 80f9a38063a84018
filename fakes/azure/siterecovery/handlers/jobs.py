"""replicationJobs: list, get, cancel, restart, resume."""

from __future__ import annotations

from .. import ids
from ..errors import InvalidInput, NotFound
from ..models.jobs import job_json
from . import operation
from .common import accepted_job, ok, paged


def _json(service, job):
    return job_json(service.vault.scope, job, service.vault.jobs.kinds)


@operation("ReplicationJobs_Get")
def get_job(service, req):
    job = service.vault.jobs.job(req.params["jobName"])
    if job is None:
        raise NotFound(ids.T_JOB, req.params["jobName"], service.vault.scope.resource_group)
    return ok(_json(service, job))


@operation("ReplicationJobs_List")
def list_jobs(service, req):
    jobs = service.vault.jobs.list(req.query.get("$filter"))
    return paged(req, jobs, key=lambda j: -j["seq"], render=lambda j: _json(service, j))


@operation("ReplicationJobs_Cancel")
def cancel_job(service, req):
    # Cancelling takes effect at once: the answer is the cancelled job (200, no polling).
    job = service.vault.jobs.cancel(req.params["jobName"])
    return ok(_json(service, job))


def _job_location(service, req, job) -> str:
    return req.url(f"{service.vault.scope.path}/replicationJobs/{job['name']}")


@operation("ReplicationJobs_Restart")
def restart_job(service, req):
    new = service.vault.jobs.restart(req.params["jobName"])
    return accepted_job(service, req, new, location=_job_location(service, req, new))


@operation("ReplicationJobs_Resume")
def resume_job(service, req):
    body = req.json(required=False) or {}
    props = body.get("properties", {}) if isinstance(body, dict) else None
    if not isinstance(props, dict) or not isinstance(props.get("comments", ""), str):
        raise InvalidInput('The request body must be {"properties": {"comments": "..."}}.')
    job = service.vault.jobs.resume(req.params["jobName"], props.get("comments"))
    return accepted_job(service, req, job, location=_job_location(service, req, job))
