"""Task and TaskManager: long work as a Task object moving queued -> running -> success/error.

Every state change goes through `Task.update`, under the registry lock, so a client's
WaitForUpdates sees each step. Work runs on its own thread; tasks on the same entity run one
after another (a per-entity lock), as vCenter serialises operations on one VM. A failure is a
vSphere fault stored in `info.error` (the task fails; the SOAP call that started it does not).

Not emulated: CancelTask (no task is cancelable), task history collectors
(CreateCollectorForTasks), SetTaskState/UpdateProgress from clients, CreateTask.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from pyVmomi import VmomiSupport, vim

from .errors import SystemError_, VimFault
from .registry import Call, ManagedObjectBase, refs

log = logging.getLogger(__name__)

KEEP_SECONDS = 600  # a finished task stays in recentTask this long (wall clock)
KEEP_MAX = 500


class Task(ManagedObjectBase):
    vim_type = vim.Task

    def __init__(self, registry, moid, *, method, description_id, entity, user, chain_id, now):
        super().__init__(registry, moid)
        self.method = method
        self.description_id = description_id
        self.entity = entity
        self.entity_name = getattr(entity, "name", None)
        self.user = user
        self.chain_id = chain_id
        self.state = "queued"
        self.progress: int | None = None
        self.error: VimFault | None = None
        self.result = None
        self.queue_time = now
        self.start_time = None
        self.complete_time = None
        self.finished_at: float | None = None  # monotonic, for trimming

    @property
    def done(self) -> bool:
        return self.state in ("success", "error")

    def update(self, **changes) -> None:
        with self.registry.lock:
            for key, value in changes.items():
                setattr(self, key, value)
            self.touch("info")

    def set_progress(self, percent: int) -> None:
        self.update(progress=max(0, min(100, int(percent))))

    def prop_info(self):
        method = VmomiSupport.GetWsdlMethod("urn:vim25", self.method) if self.method else None
        info = vim.TaskInfo(
            key=self.moid,
            task=self.ref,
            name=method,
            descriptionId=self.description_id,
            entity=self.entity.ref if self.entity is not None else None,
            entityName=self.entity_name,
            state=vim.TaskInfo.State(self.state),
            cancelled=False,
            cancelable=False,
            progress=self.progress if self.state == "running" else None,
            reason=vim.TaskReasonUser(userName=self.user),
            queueTime=self.queue_time,
            startTime=self.start_time,
            completeTime=self.complete_time,
            eventChainId=self.chain_id,
        )
        if self.error is not None:
            info.error = self.error.fault()
        if self.result is not None:
            info.result = self.result
        return info


class TaskManager(ManagedObjectBase):
    vim_type = vim.TaskManager
    volatile = frozenset({"recentTask"})

    def __init__(self, registry, moid, vcenter):
        super().__init__(registry, moid)
        self.vcenter = vcenter
        self.tasks: deque[Task] = deque()
        self._entity_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.threads: set[threading.Thread] = set()

    def entity_lock(self, entity) -> threading.Lock:
        with self._locks_guard:
            return self._entity_locks.setdefault(entity.moid, threading.Lock())

    def submit(
        self,
        call: Call,
        method: str,
        description_id: str,
        entity,
        work: Callable[[Task], object],
    ):
        """Queue `work(task)` as a task on `entity`; returns the Task's moref at once."""
        vc = self.vcenter
        with self.registry.lock:
            task = Task(
                self.registry,
                vc.store.next_id("task"),
                method=method,
                description_id=description_id,
                entity=entity,
                user=call.session.user if call.session else "vpxd-extension",
                chain_id=vc.events.next_chain_id(),
                now=vc.clock.now(),
            )
            self.registry.add(task)
            self.tasks.append(task)
            self._trim()
        self._spawn(f"task-{task.moid}", self._run, task, entity, work)
        return task.ref

    def in_background(self, entity, name: str, work: Callable[[], None]) -> None:
        """Run work that is not a task (ShutdownGuest, RebootGuest) after the entity's tasks."""

        def run():
            with self.entity_lock(entity):
                try:
                    work()
                except Exception:
                    log.exception("%s of %s failed", name, entity.name)

        self._spawn(name, run)

    def _spawn(self, name, target, *args) -> None:
        thread = threading.Thread(
            target=self._tracked, args=(target, *args), name=name, daemon=True
        )
        self.threads.add(thread)
        thread.start()

    def _tracked(self, target, *args):
        try:
            target(*args)
        finally:
            self.threads.discard(threading.current_thread())

    def _run(self, task: Task, entity, work) -> None:
        lock = self.entity_lock(entity) if entity is not None else threading.Lock()
        with lock:
            task.update(state="running", start_time=self.vcenter.clock.now(), progress=0)
            try:
                result = work(task)
            except VimFault as fault:
                log.info("task %s %s failed: %s", task.moid, task.method, fault.text)
                self._finish(task, error=fault)
            except Exception as exc:
                log.exception("task %s %s crashed", task.moid, task.method)
                self._finish(task, error=SystemError_(str(exc) or type(exc).__name__))
            else:
                self._finish(task, result=result)

    def _finish(self, task: Task, *, result=None, error=None) -> None:
        task.finished_at = time.monotonic()
        task.update(
            state="error" if error is not None else "success",
            error=error,
            result=result,
            progress=100,
            complete_time=self.vcenter.clock.now(),
        )

    def failed_task(self, call: Call, method: str, description_id: str, entity, fault: VimFault):
        """A task that fails with `fault` (a fault rule on a *_Task method)."""

        def work(task):
            raise fault

        return self.submit(call, method, description_id, entity, work)

    def recent(self, entity=None) -> list[Task]:
        with self.registry.lock:
            self._trim()
            return [t for t in self.tasks if entity is None or t.entity is entity]

    def _trim(self) -> None:
        now = time.monotonic()
        while self.tasks and (
            len(self.tasks) > KEEP_MAX
            or (self.tasks[0].done and now - (self.tasks[0].finished_at or now) > KEEP_SECONDS)
        ):
            self.registry.remove(self.tasks.popleft())

    def clear(self) -> None:
        with self.registry.lock:
            while self.tasks:
                self.registry.remove(self.tasks.popleft())

    def wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in list(self.threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def prop_recentTask(self):
        return refs(vim.Task, self.recent())

    def prop_maxCollector(self):
        return 32
