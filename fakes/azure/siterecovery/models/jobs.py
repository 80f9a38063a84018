"""replicationJobs: every mutating operation of the vault runs as a job of ordered tasks.

A job kind (`JobKind`) lists its tasks; each task is run by

- the vault (`runner="vault"`): a function of the models, run by the job runner thread inside
  the same SQLite transaction that marks the task done, so a task's effect and its state
  commit together;
- the configuration server (`runner="provider"`): consecutive provider tasks become one work
  item queued for the fabric's configuration server, which reports each task's progress and
  the outcome over the provider channel. No answer, no progress: the job stays InProgress;
- a person (`runner="manual"`): the job is Suspended until `resume`;
- the Azure side, for long work (`runner="azure"`: copying disks, booting VMs): a function
  `run(vault, job) -> dict | None` called outside any transaction, so the vault's other
  writers (the worker) are not held up; its result is merged into `job["output"]` and the
  task is marked done in a new transaction. Such a task must be safe to run again: one in
  progress when the process stopped runs again at the next start;
- the vault, waiting for something another process writes (`runner="poll"`: a recovery point
  the worker makes): `run(vault, job, db) -> dict | None` in the job's transaction, None while
  it should wait. The runner asks again every `poll_seconds` without holding its thread (other
  jobs go on meanwhile); the task enforces its own deadline by raising.

States change in one place (`_job_state`, `_task_state`) against the transition tables below.
A job that fails or is cancelled runs its kind's compensation (`on_failed`), records a
JobStatus event, and cancels its outstanding work item. `restart` starts a new job of the same
kind with the same input (the real service's Restart); `resume` continues a Suspended job.

Not emulated: job export, task groups (recovery-plan group tasks), per-task allowed actions.
"""

from __future__ import annotations

import collections
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import ids
from ..errors import OperationNotAllowed, SiteRecoveryError, WorkItemCancelled, WorkItemFinished
from ..store import Store
from . import events
from .common import compact, iso, new_id
from .filters import FilterSpec, apply_filter
from .work_items import task_name_of, validate_report

log = logging.getLogger(__name__)

NOT_STARTED, IN_PROGRESS, SUSPENDED = "NotStarted", "InProgress", "Suspended"
SUCCEEDED, FAILED, CANCELLED, SKIPPED = "Succeeded", "Failed", "Cancelled", "Skipped"
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)

JOB_TRANSITIONS = {
    NOT_STARTED: {IN_PROGRESS, FAILED, CANCELLED},
    IN_PROGRESS: {SUCCEEDED, FAILED, CANCELLED, SUSPENDED},
    SUSPENDED: {IN_PROGRESS, FAILED, CANCELLED},
    SUCCEEDED: set(),
    FAILED: set(),
    CANCELLED: set(),
}
TASK_TRANSITIONS = {
    NOT_STARTED: {IN_PROGRESS, SUCCEEDED, FAILED, CANCELLED, SKIPPED, SUSPENDED},
    IN_PROGRESS: {IN_PROGRESS, SUCCEEDED, FAILED, CANCELLED, SUSPENDED},
    SUSPENDED: {SUCCEEDED, FAILED, CANCELLED},
    SUCCEEDED: set(),
    FAILED: set(),
    CANCELLED: set(),
    SKIPPED: set(),
}
DESCRIPTIONS = {
    NOT_STARTED: "NotStarted",
    IN_PROGRESS: "InProgress",
    SUSPENDED: "Suspended",
    SUCCEEDED: "Completed",
    FAILED: "Failed",
    CANCELLED: "Cancelled",
    SKIPPED: "Skipped",
}
# ARM's operation status for a job state (Azure-AsyncOperation).
ARM_STATUS = {
    NOT_STARTED: "InProgress",
    IN_PROGRESS: "InProgress",
    SUSPENDED: "InProgress",
    SUCCEEDED: "Succeeded",
    FAILED: "Failed",
    CANCELLED: "Canceled",
}

FILTER = FilterSpec(
    {
        "JobStatus": "state",
        "JobName": "scenarioName",
        "JobOutputType": "outputType",
        "FabricId": "fabricId",
        "AffectedObjectTypes": "targetInstanceType",
        "TargetObjectName": "targetObjectName",
    },
    times={"StartTime": "start", "EndTime": "end"},
)


class InvalidTransition(RuntimeError):
    """The lab itself tried a state change the tables forbid (a bug, not a client error)."""


Hook = Callable[..., Any]


def _noop(*args, **kwargs):
    return None


@dataclass(frozen=True)
class TaskSpec:
    name: str  # e.g. "InstallMobilityServiceTask"
    friendly_name: str  # e.g. "Installing Mobility Service"
    runner: str = "vault"  # vault | provider | manual | azure
    # vault: run(vault, job, db); azure: run(vault, job) -> dict | None, outside transactions.
    # Either raises SiteRecoveryError to fail the task.
    run: Hook | None = None
    work_item: str | None = None  # provider: the work item kind
    instructions: str | None = None  # manual
    # azure: also pass the task itself, `run(vault, job, task)` (a plan's tasks carry their
    # arguments in `task["args"]`).
    with_task: bool = False
    poll_seconds: float = 1.0  # poll: wall seconds between two asks


@dataclass(frozen=True)
class JobKind:
    name: str  # the lab's kind id
    scenario: str  # scenarioName
    friendly_name: str
    target_type: str  # targetInstanceType
    tasks: tuple[TaskSpec, ...]
    on_create: Hook = _noop  # (vault, job, db): may raise -> no job is created
    on_succeeded: Hook = _noop  # (vault, job, db)
    on_failed: Hook = _noop  # (vault, job, db): compensation, also after cancel
    work_item_payload: Hook = _noop  # (vault, job, work_item_kind) -> dict
    on_work_item_succeeded: Hook = _noop  # (vault, job, work_item, result, db)
    cancellable: bool = False
    restartable: bool = True
    provider: str | None = None  # replication provider shown on events (InMageAzureV2)
    # The tasks of one job, made from its input when they depend on it (a recovery plan's
    # groups and actions): expand(vault, input) -> [{"spec", "name", "friendlyName", "args",
    # "instructions"?}], each `spec` the name of one of `tasks` (the templates).
    expand: Hook | None = None

    def task(self, name: str) -> TaskSpec:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)

    def spec_of(self, task: dict) -> TaskSpec:
        """The template a job's task runs (its own name, unless it was expanded)."""
        return self.task(task.get("spec") or task["name"])


@dataclass
class JobEngine:
    store: Store
    clock: Any
    scope: ids.VaultScope
    work_items: Any
    kinds: dict[str, JobKind] = field(default_factory=dict)
    context: Any = None  # the vault facade handed to the kinds' hooks

    def __post_init__(self):
        self._queue: collections.deque[str] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        # poll tasks: job name -> wall (monotonic) time of its next ask
        self._delayed: dict[str, float] = {}

    def register(self, kind: JobKind) -> None:
        if kind.name in self.kinds:
            raise ValueError(f"job kind {kind.name} registered twice")
        self.kinds[kind.name] = kind

    # -- reading ------------------------------------------------------------------------------
    def job(self, name: str) -> dict | None:
        return self.store.get("jobs", name)

    def list(self, filter_text: str | None = None) -> list[dict]:
        docs = self.store.docs("jobs", order="seq DESC")
        return apply_filter(FILTER, filter_text, docs)

    # -- starting -----------------------------------------------------------------------------
    def start(
        self,
        kind_name: str,
        *,
        input: dict,
        target_id: str,
        target_name: str,
        result_path: str | None = None,
        fabric: str | None = None,
        affected: dict | None = None,
        restarted_from: str | None = None,
    ) -> dict:
        """Create a job and hand it to the runner. `on_create` runs in the same transaction:
        if it raises, nothing is created."""
        kind = self.kinds[kind_name]
        now = self.clock.time()
        name = new_id()
        job = {
            "name": name,
            "kind": kind.name,
            "scenarioName": kind.scenario,
            "friendlyName": kind.friendly_name,
            "state": NOT_STARTED,
            "activityId": f"{new_id()} ActivityId: {new_id()}",
            "start": now,
            "end": None,
            "targetObjectId": target_id,
            "targetObjectName": target_name,
            "targetInstanceType": kind.target_type,
            "fabricId": self.scope.fabric(fabric) if fabric else None,
            "affected": affected or {},
            "input": input,
            "resultPath": result_path,
            "tasks": [
                {
                    "taskId": new_id(),
                    "state": NOT_STARTED,
                    "stateDescription": DESCRIPTIONS[NOT_STARTED],
                    "start": None,
                    "end": None,
                    "errors": [],
                    **t,
                }
                for t in self._task_list(kind, input)
            ],
            "errors": [],
            "workItem": None,
            "restartedFrom": restarted_from,
            "restartedAs": None,
        }
        with self.store.transaction() as db:
            kind.on_create(self.context, job, db)
            self._save(db, job, new=True)
            self.store.after_commit(lambda: self.wake(name))
        return job

    def _task_list(self, kind: JobKind, input: dict) -> list[dict]:
        if kind.expand is None:
            return [{"name": t.name, "friendlyName": t.friendly_name} for t in kind.tasks]
        tasks = kind.expand(self.context, input)
        for t in tasks:
            kind.task(t["spec"])  # a template that does not exist is a bug here, not later
        return tasks

    def _save(self, db: sqlite3.Connection, job: dict, new: bool = False) -> None:
        if new:
            job["seq"] = self.store.next_seq(db, "jobs")
        self.store.put(db, "jobs", (job["name"],), job, seq=job["seq"], state=job["state"])

    # -- state changes (the one place) --------------------------------------------------------
    def _job_state(self, job: dict, new: str) -> None:
        old = job["state"]
        if new != old and new not in JOB_TRANSITIONS[old]:
            raise InvalidTransition(f"job {job['name']}: {old} -> {new}")
        job["state"] = new
        if new in TERMINAL:
            job["end"] = self.clock.time()

    def _task_state(self, task: dict, new: str, description: str | None = None) -> None:
        old = task["state"]
        if new != old and new not in TASK_TRANSITIONS[old]:
            raise InvalidTransition(f"task {task['name']}: {old} -> {new}")
        task["state"] = new
        task["stateDescription"] = description or DESCRIPTIONS[new]
        now = self.clock.time()
        if new in (IN_PROGRESS, SUSPENDED) and task["start"] is None:
            task["start"] = now
        if new in TERMINAL or new == SKIPPED:
            task["start"] = task["start"] or now
            task["end"] = now

    # -- the runner ---------------------------------------------------------------------------
    def advance(self, name: str) -> dict | None:
        """Run the job's tasks until it finishes, fails, or waits (work item, person)."""
        while True:
            job, azure_task = self._advance_in_transaction(name)
            if azure_task is None:
                return job
            self._run_azure_task(job, azure_task)

    def _run_azure_task(self, job: dict, index: int) -> None:
        kind = self.kinds[job["kind"]]
        task = job["tasks"][index]
        spec = kind.spec_of(task)
        error = None
        output = None
        try:
            if spec.with_task:
                output = spec.run(self.context, job, task)
            else:
                output = spec.run(self.context, job)
        except SiteRecoveryError as exc:
            error = exc
        except Exception as exc:  # a bug or an outage: the task fails with the reason
            log.exception("task %s of job %s failed", spec.name, job["name"])
            from ..errors import InternalError

            error = InternalError(f"{spec.friendly_name} failed: {exc}")
        with self.store.transaction() as db:
            job = self.store.get("jobs", job["name"])
            task = job["tasks"][index]
            if job["state"] in TERMINAL:  # cancelled meanwhile
                return
            if error is not None:
                task["errors"].append(self._error_json(error.error_object(), task))
                self._task_state(task, FAILED)
                self._fail(db, job, kind, None)
            else:
                job.setdefault("output", {}).update(output or {})
                self._task_state(task, SUCCEEDED)
            self._save(db, job)

    def _advance_in_transaction(self, name: str):
        azure_task = None
        with self.store.transaction() as db:
            job = self.store.get("jobs", name)
            if job is None or job["state"] in TERMINAL or job["state"] == SUSPENDED:
                return job, None
            kind = self.kinds[job["kind"]]
            if job["state"] == NOT_STARTED:
                self._job_state(job, IN_PROGRESS)
            while True:
                # A provider task reported done still waits for its work item's outcome.
                waiting_on = set(job.get("workItemTasks") or [])
                index = next(
                    (
                        i
                        for i, t in enumerate(job["tasks"])
                        if t["state"] not in (SUCCEEDED, SKIPPED) or t["name"] in waiting_on
                    ),
                    None,
                )
                if index is None:
                    self._job_state(job, SUCCEEDED)
                    kind.on_succeeded(self.context, job, db)
                    break
                task = job["tasks"][index]
                spec = kind.spec_of(task)
                if task["state"] == FAILED:  # reported by the configuration server
                    self._fail(db, job, kind, None)
                    break
                if spec.runner == "vault":
                    self._task_state(task, IN_PROGRESS)
                    try:
                        spec.run(self.context, job, db)
                    except SiteRecoveryError as exc:
                        task["errors"].append(self._error_json(exc.error_object(), task))
                        self._task_state(task, FAILED)
                        self._fail(db, job, kind, None)
                        break
                    self._task_state(task, SUCCEEDED)
                    continue
                if spec.runner == "manual":
                    if task["state"] == SUCCEEDED:  # resumed: the job goes on
                        continue
                    self._task_state(task, SUSPENDED, "Waiting for the manual action to be resumed")
                    self._job_state(job, SUSPENDED)
                    break
                if spec.runner == "azure":
                    if task["state"] == NOT_STARTED:
                        self._task_state(task, IN_PROGRESS)
                    azure_task = index
                    break
                if spec.runner == "poll":
                    if task["state"] == NOT_STARTED:
                        self._task_state(task, IN_PROGRESS)
                    try:
                        output = spec.run(self.context, job, db)
                    except SiteRecoveryError as exc:
                        task["errors"].append(self._error_json(exc.error_object(), task))
                        self._task_state(task, FAILED)
                        self._fail(db, job, kind, None)
                        break
                    if output is None:  # not yet: ask again later, the thread goes on
                        self._delay(name, spec.poll_seconds)
                        break
                    job.setdefault("output", {}).update(output)
                    self._task_state(task, SUCCEEDED)
                    continue
                # provider: wait for the configuration server
                if task["name"] not in waiting_on:
                    self._enqueue_work_item(db, job, kind, index)
                if task["state"] == NOT_STARTED:
                    self._task_state(task, IN_PROGRESS, "Waiting for the configuration server")
                break
            self._save(db, job)
        return job, azure_task

    def _enqueue_work_item(self, db, job: dict, kind: JobKind, index: int) -> None:
        spec = kind.spec_of(job["tasks"][index])
        covered = []
        for t in job["tasks"][index:]:
            s = kind.spec_of(t)
            if s.runner != "provider" or s.work_item != spec.work_item:
                break
            covered.append({"name": t["name"], "friendlyName": t["friendlyName"]})
        payload = kind.work_item_payload(self.context, job, spec.work_item) or {}
        fabric = job["input"]["fabric"]
        item = self.work_items.enqueue(
            db, fabric=fabric, kind=spec.work_item, payload=payload, job=job["name"], tasks=covered
        )
        job["workItem"] = item["id"]
        job["workItemTasks"] = [t["name"] for t in covered]

    def _fail(self, db, job: dict, kind: JobKind, error: dict | None, state: str = FAILED) -> None:
        for task in job["tasks"]:
            if task["state"] in (NOT_STARTED, IN_PROGRESS, SUSPENDED):
                self._task_state(
                    task,
                    CANCELLED if task["state"] != NOT_STARTED or state == CANCELLED else SKIPPED,
                )
        if error is not None:
            job["errors"].append(error)
        for task in job["tasks"]:
            job["errors"].extend(e for e in task["errors"] if e not in job["errors"])
        self._job_state(job, state)
        if job.get("workItem"):
            self.work_items.cancel(db, job["workItem"])
        kind.on_failed(self.context, job, db)
        events.add_event(
            self.store,
            db,
            self.scope,
            time=self.clock.time(),
            event_type="JobStatus",
            severity="Critical" if state == FAILED else "Warning",
            description=f"{job['scenarioName']} - {DESCRIPTIONS[state]}",
            affected_object=job["targetObjectName"],
            correlation_id=job["targetObjectId"],
            fabric=job["input"].get("fabric"),
            provider=kind.provider,
            job={
                "jobId": self.scope.job(job["name"]),
                "jobFriendlyName": job["friendlyName"],
                "jobStatus": state,
                "affectedObjectType": job["targetInstanceType"],
            },
            health_errors=[self._health_error(e) for e in job["errors"]],
        )

    def _error_json(
        self, error: dict, task: dict | None, provider_error: dict | None = None
    ) -> dict:
        service = compact(
            {
                "code": str(error.get("code", "InternalError")),
                "message": error.get("message", ""),
                "possibleCauses": error.get("possibleCauses"),
                "recommendedAction": error.get("recommendedAction"),
                "activityId": error.get("activityId") or new_id(),
            }
        )
        out = {
            "serviceErrorDetails": service,
            "errorLevel": "Error",
            "creationTime": iso(self.clock.time()),
        }
        if task is not None:
            out["taskId"] = task["taskId"]
        if provider_error:
            out["providerErrorDetails"] = provider_error
        return out

    @staticmethod
    def _health_error(job_error: dict) -> dict:
        s = job_error.get("serviceErrorDetails", {})
        return compact(
            {
                "errorCode": s.get("code"),
                "errorMessage": s.get("message"),
                "possibleCauses": s.get("possibleCauses"),
                "recommendedAction": s.get("recommendedAction"),
            }
        )

    # -- the configuration server's reports ---------------------------------------------------
    def report(self, item_id: str, fabric: str, update: dict) -> dict:
        """A progress report or outcome for a work item; returns the updated work item.

        `update`: {"task"?: name or friendly name, "state": InProgress|Succeeded|Failed,
        "progress"?: 0-100, "message"?: str, "error"?: {code, message, possibleCauses,
        recommendedAction}, "result"?: {...}}. Without "task" it is the work item's outcome.
        """

        state, task_name = validate_report(update)
        with self.store.transaction() as db:
            item = self.store.get("work_items", item_id)
            if item is None or item["fabric"].lower() != fabric.lower():
                from ..errors import NotFound

                raise NotFound(f"{ids.T_FABRIC}/drlabProvider/workItems", item_id)
            if item["state"] == CANCELLED:
                raise WorkItemCancelled(
                    f"The work item '{item_id}' was cancelled (its job was cancelled or failed); "
                    "stop working on it and undo what was done."
                )
            if item["state"] in (SUCCEEDED, FAILED):
                raise WorkItemFinished(f"The work item '{item_id}' is already {item['state']}.")
            job = self.store.get("jobs", item["job"]) if item.get("job") else None
            kind = self.kinds[job["kind"]] if job else None
            self.work_items.record_report(db, item, update, state, task_name)
            task_name = task_name_of(item, task_name)
            if job is not None and job["state"] not in TERMINAL:
                self._apply_report(db, job, kind, item, update, state, task_name)
                self._save(db, job)
                self.store.after_commit(lambda: self.wake(job["name"]))
            self.work_items.save(db, item)
        return item

    def _apply_report(self, db, job, kind, item, update, state, task_name) -> None:
        covered = [t["name"] for t in item["tasks"]]
        tasks = {t["name"]: t for t in job["tasks"] if t["name"] in covered}
        message = update.get("message")
        progress = update.get("progress")
        if progress is not None:
            message = f"{message or DESCRIPTIONS[IN_PROGRESS]} ({int(progress)}%)"
        if task_name is not None:
            task = tasks[task_name]
            if task["state"] in (NOT_STARTED, IN_PROGRESS):
                if state == FAILED:
                    task["errors"].append(self._provider_error(update.get("error"), task))
                self._task_state(task, state, message if state == IN_PROGRESS else None)
            return
        if state == IN_PROGRESS:
            current = next((t for t in tasks.values() if t["state"] == IN_PROGRESS), None)
            if current is not None and message:
                current["stateDescription"] = message
            return
        if state == SUCCEEDED:
            for task in tasks.values():
                if task["state"] in (NOT_STARTED, IN_PROGRESS):
                    self._task_state(task, SUCCEEDED)
            kind.on_work_item_succeeded(self.context, job, item, update.get("result") or {}, db)
            job["workItem"] = None
            job["workItemTasks"] = []
            return
        # Failed: the first unfinished covered task carries the error.
        task = next((t for t in tasks.values() if t["state"] in (NOT_STARTED, IN_PROGRESS)), None)
        if task is None:
            task = next(t for t in tasks.values())
        if task["state"] in (NOT_STARTED, IN_PROGRESS):
            task["errors"].append(self._provider_error(update.get("error"), task))
            self._task_state(task, FAILED)
        else:
            job["errors"].append(self._provider_error(update.get("error"), None))
            job["workItem"] = None
            job["workItemTasks"] = []
            self._fail(db, job, kind, None)

    def _provider_error(self, error: dict | None, task: dict | None) -> dict:
        error = error or {
            "code": "ConfigurationServerError",
            "message": "The configuration server reported a failure.",
        }
        code = str(error.get("code", "ConfigurationServerError"))
        provider = compact(
            {
                "errorCode": int(code) if code.isdigit() else None,
                "errorMessage": error.get("message"),
                "errorId": new_id(),
                "possibleCauses": error.get("possibleCauses"),
                "recommendedAction": error.get("recommendedAction"),
            }
        )
        return self._error_json(error, task, provider)

    # -- cancel, restart, resume --------------------------------------------------------------
    def cancel(self, name: str) -> dict:
        with self.store.transaction() as db:
            job = self._require(name)
            kind = self.kinds[job["kind"]]
            if job["state"] in TERMINAL:
                raise OperationNotAllowed(
                    f"The job '{name}' is {job['state']} and can't be cancelled."
                )
            if not kind.cancellable and job["state"] != SUSPENDED:
                raise OperationNotAllowed(
                    f"The job '{name}' ({job['friendlyName']}) can't be cancelled."
                )
            self._fail(db, job, kind, None, state=CANCELLED)
            self._save(db, job)
        return job

    def restart(self, name: str) -> dict:
        job = self._require(name)
        kind = self.kinds[job["kind"]]
        if job["state"] not in (FAILED, CANCELLED) or not kind.restartable:
            raise OperationNotAllowed(
                f"The job '{name}' is {job['state']}: only a failed or cancelled job can be "
                "restarted."
            )
        if job.get("restartedAs"):
            raise OperationNotAllowed(
                f"The job '{name}' was already restarted as job '{job['restartedAs']}'."
            )
        new = self.start(
            kind.name,
            input=job["input"],
            target_id=job["targetObjectId"],
            target_name=job["targetObjectName"],
            result_path=job.get("resultPath"),
            fabric=job["input"].get("fabric"),
            affected=job.get("affected"),
            restarted_from=name,
        )
        with self.store.transaction() as db:
            old = self._require(name)
            old["restartedAs"] = new["name"]
            self._save(db, old)
        return new

    def resume(self, name: str, comments: str | None = None) -> dict:
        with self.store.transaction() as db:
            job = self._require(name)
            if job["state"] != SUSPENDED:
                raise OperationNotAllowed(
                    f"The job '{name}' is {job['state']}: only a suspended job can be resumed."
                )
            for task in job["tasks"]:
                if task["state"] == SUSPENDED:
                    task["comments"] = comments
                    self._task_state(task, SUCCEEDED)
            self._job_state(job, IN_PROGRESS)
            self._save(db, job)
            self.store.after_commit(lambda: self.wake(name))
        return job

    def _require(self, name: str) -> dict:
        job = self.store.get("jobs", name)
        if job is None:
            from ..errors import NotFound

            raise NotFound(ids.T_JOB, name)
        return job

    # -- the runner thread --------------------------------------------------------------------
    def wake(self, name: str) -> None:
        with self._cond:
            self._queue.append(name)
            self._idle.clear()
            self._cond.notify()

    def _delay(self, name: str, seconds: float) -> None:
        with self._cond:
            self._delayed[name] = time.monotonic() + seconds

    def _due(self) -> list[str]:
        """Poll tasks whose next ask is due (called with the condition held)."""
        now = time.monotonic()
        due = [n for n, at in self._delayed.items() if at <= now]
        for n in due:
            del self._delayed[n]
        return due

    def start_runner(self) -> None:
        for row in self.store.select("jobs", "state IN (?, ?)", (NOT_STARTED, IN_PROGRESS), "seq"):
            self._queue.append(row["name"])
        self._thread = threading.Thread(target=self._run, name="job-runner", daemon=True)
        self._thread.start()

    def stop_runner(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def run_pending(self) -> None:
        """Advance every queued job now (the runner's loop body; tests call it directly)."""
        with self._cond:
            names = list(dict.fromkeys([*self._queue, *self._due()]))
            self._queue.clear()
        for name in names:
            try:
                self.advance(name)
            except Exception:
                log.exception("job %s could not advance", name)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                if not self._queue:
                    self._idle.set()
                    soonest = min(self._delayed.values(), default=time.monotonic() + 1.0)
                    self._cond.wait(min(1.0, max(0.0, soonest - time.monotonic())))
            self.run_pending()


def task_json(task: dict, spec: TaskSpec | None) -> dict:
    out = compact(
        {
            "taskId": task["taskId"],
            "name": task["name"],
            "startTime": iso(task.get("start")),
            "endTime": iso(task.get("end")),
            "allowedActions": [],
            "friendlyName": task["friendlyName"],
            "state": task["state"],
            "stateDescription": task["stateDescription"],
            "taskType": "TaskDetails",
            "errors": task.get("errors", []),
        }
    )
    if spec is not None and spec.runner == "manual":
        out["customDetails"] = compact(
            {
                "instanceType": "ManualActionTaskDetails",
                "name": task.get("friendlyName") or spec.friendly_name,
                "instructions": task.get("instructions") or spec.instructions,
                "observation": task.get("comments"),
            }
        )
    return out


def allowed_actions(job: dict, kind: JobKind | None) -> list[str]:
    state = job["state"]
    if state == SUSPENDED:
        return ["Resume", "Cancel"]
    if state in (NOT_STARTED, IN_PROGRESS):
        return ["Cancel"] if kind is not None and kind.cancellable else []
    if state in (FAILED, CANCELLED) and kind is not None and kind.restartable:
        return [] if job.get("restartedAs") else ["Restart"]
    return []


def job_json(scope: ids.VaultScope, job: dict, kinds: dict[str, JobKind]) -> dict:
    kind = kinds.get(job["kind"])
    specs = {t["name"]: kind.spec_of(t) for t in job["tasks"]} if kind else {}
    props = compact(
        {
            "activityId": job.get("activityId"),
            "scenarioName": job["scenarioName"],
            "friendlyName": job["friendlyName"],
            "state": job["state"],
            "stateDescription": DESCRIPTIONS[job["state"]],
            "tasks": [task_json(t, specs.get(t["name"])) for t in job["tasks"]],
            "errors": job.get("errors", []),
            "startTime": iso(job["start"]),
            "endTime": iso(job.get("end")),
            "allowedActions": allowed_actions(job, kind),
            "targetObjectId": job.get("targetObjectId"),
            "targetObjectName": job.get("targetObjectName"),
            "targetInstanceType": job.get("targetInstanceType"),
            "customDetails": {
                "instanceType": "AsrJobDetails",
                "affectedObjectDetails": {
                    k: str(v) for k, v in (job.get("affected") or {}).items()
                },
            },
        }
    )
    return {
        "id": scope.job(job["name"]),
        "name": job["name"],
        "type": ids.T_JOB,
        "properties": props,
    }
