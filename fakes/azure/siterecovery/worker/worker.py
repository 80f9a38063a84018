"""The Site Recovery worker: the Azure-side process that turns cache logs into seed disks and
recovery points (docs/site-recovery-worker.md).

Threads:

- connect: until both storage accounts answer (then `/_lab/ready` is 200);
- schedule (every `schedule_interval`): reads the vault's protected items, adopts a VM's
  epoch from its latest initial replication plan (creates its seed disks), purges VMs whose
  protected item is gone, and hands each disk to the apply pool (one run per disk at a time,
  so each stream stays sequential while disks and VMs overlap);
- status (every `status_interval`): progress, RPO, data rates, health and the RPO alarm into
  the vault (`status.StatusReporter`);
- janitor (every `janitor_interval`): recovery points a crash left unmade, retention, logs of
  stale epochs.

The vault is the ARM process's SQLite database, written through `replication_state`; the
worker's own progress is `progress.Progress`. A resync's switch to a new generation is in
`resync.py`. Not emulated: disk removal from a running replication, throttling.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fakes.azure.siterecovery.replication_state import ProtectedItemKey, ReplicationState
from lab.kit.faults import FaultRules
from lab.kit.vaultkeys import replication_data_key

from . import names, storage
from . import resync as resync_side
from .alerts import Monitor
from .engine import DiskApplier, DiskStatus, SeedDisk, VmReplication
from .errors import InjectedFault, NotReady
from .mirror import MirroredSeedDisks
from .pages import PageWriter
from .plan import InvalidPlan, IrPlan, current_plan, parse_plan
from .points import RecoveryPoints
from .progress import DB_FILE, Progress
from .rpo import DataRates
from .settings import Settings
from .status import LOG_MISSING, LOG_UNREADABLE, StatusReporter

log = logging.getLogger(__name__)

PRINCIPAL = "site-recovery"
APPLY_THREADS = 8  # disks applied at once
PAGE_THREADS = 8  # page writes in flight (Azurite is the bottleneck; latency is hidden)
PREFETCH_THREADS = 4
LOG_ERROR = "ReplicationApplyFailing"


class SiteRecoveryWorker:
    def __init__(self, ctx):
        self.ctx = ctx
        self.clock = ctx.clock
        self.stop_event = ctx.stop_event
        self.faults = FaultRules()
        self.progress = Progress(Path(ctx.data_dir) / DB_FILE)
        self.settings = Settings.load(self.progress)
        accounts = ctx.topology["storage"]["accounts"]
        self.cache_account = next(a for a in accounts if a["role"] == "cache")
        self.disks_account = next((a for a in accounts if a["role"] == "disks"), None)
        services = ctx.lab.get("services", {})
        self.idle_reason: str | None = None
        if "azurite" not in services:
            self.idle_reason = "this lab runs no cache storage account (service azurite)"
        elif self.disks_account is None or "azurite-disks" not in services:
            self.idle_reason = "this lab runs no disks storage account (service azurite-disks)"
        self.cache: storage.AzureCache | None = None
        self.seeds: storage.AzureSeedDisks | None = None
        self.vault = None
        self.key: bytes | None = None
        self.points: RecoveryPoints | None = None
        self.reporter: StatusReporter | None = None
        self.monitor = Monitor(ctx)
        self.vms: dict[str, VmReplication] = {}
        self.disk_status: dict[tuple[str, int], DiskStatus] = {}
        self.disk_errors: dict[tuple[str, int], str] = {}
        self.issues: dict[tuple[str, int], tuple] = {}  # (kind, detail), since wall, since lab
        self.rates: dict[str, DataRates] = {}
        self.last_update: dict[str, float] = {}
        self.summaries: dict[str, dict] = {}
        self.running: set[tuple[str, int]] = set()
        self.retry_after: dict[tuple[str, int], float] = {}
        self._plans: dict[str, IrPlan | None] = {}
        self._plan_checked: dict[str, float] = {}
        self._resync_checked: dict[str, float] = {}
        self._lock = threading.RLock()
        self._vault_lock = threading.Lock()
        self._storage_ready = threading.Event()
        self._storage_error: str | None = None
        self.apply_pool = ThreadPoolExecutor(APPLY_THREADS, thread_name_prefix="apply")
        self.page_pool = ThreadPoolExecutor(PAGE_THREADS, thread_name_prefix="pages")
        self.prefetch_pool = ThreadPoolExecutor(PREFETCH_THREADS, thread_name_prefix="prefetch")
        self.writer = PageWriter(None, self._fault, self.page_pool)
        self.started_at = time.monotonic()
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> SiteRecoveryWorker:
        if self.idle_reason:
            log.info("sr-worker idle: %s", self.idle_reason)
            return self
        loops = (
            (self._connect_loop, "connect"),
            (self._loop(self._pass, "schedule_interval"), "schedule"),
            (self._loop(self._status_tick, "status_interval"), "status"),
            (self._loop(self._janitor_tick, "janitor_interval"), "janitor"),
            (self._loop(self._flush_tick, "status_interval"), "flush"),
        )
        for target, name in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _flush_tick(self) -> None:
        if self.seeds is not None:
            self.seeds.flush_due()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.seeds is not None:
            self.seeds.close()
        self.apply_pool.shutdown(wait=True, cancel_futures=True)
        self.page_pool.shutdown(wait=True, cancel_futures=True)
        self.prefetch_pool.shutdown(wait=False, cancel_futures=True)
        self.monitor.close()
        if self.vault is not None:
            self.vault.close()
        self.progress.close()

    def ready(self) -> tuple[bool, str]:
        if self.idle_reason:
            return True, f"idle: {self.idle_reason}"
        if self._storage_ready.is_set():
            return True, "cache and disks storage accounts answer"
        return False, f"waiting for the storage accounts: {self._storage_error or 'connecting'}"

    def reset(self) -> None:
        self.settings.reset(self.progress)

    def _loop(self, step, interval_setting: str):
        def run():
            while not self.stop_event.is_set():
                if self._storage_ready.is_set():
                    try:
                        step()
                    except Exception:
                        log.exception("%s failed; trying again", step.__name__)
                self.stop_event.wait(getattr(self.settings, interval_setting))

        return run

    def _fault(self, operation: str) -> None:
        error = self.faults.apply(operation)
        if error is not None:
            raise InjectedFault(operation, error.code, error.message, error.status)

    # -- connecting -----------------------------------------------------------------------------
    def _credential(self):
        try:
            self.ctx.principal(PRINCIPAL)
        except KeyError:
            return None  # the account key below
        return self.ctx.credential(PRINCIPAL)

    def _storage_listening(self) -> bool:
        """Both Azurites accept connections (checked first: a storage call to one that is
        still starting waits out the SDK's retries, many seconds)."""
        for service in ("azurite", "azurite-disks"):
            port = self.ctx.lab["services"][service]["port"]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                return False
        return True

    def _connect_loop(self) -> None:
        delay = 0.1
        while not self.stop_event.is_set():
            if not self._storage_listening():
                self.stop_event.wait(0.1)
                continue
            try:
                self._connect()
                self._storage_ready.set()
                log.info("connected to the cache and disks storage accounts")
                return
            except Exception as exc:
                self._storage_error = f"{type(exc).__name__}: {exc}"
                log.debug("storage not ready: %s", self._storage_error)
            self.stop_event.wait(delay)
            delay = min(delay * 2, 2.0)

    def _connect(self) -> None:
        credential = self._credential()
        cache, disks = self.cache_account, self.disks_account
        cache_client = storage.service_client(
            f"{self.ctx.url('azurite')}/{cache['name']}",
            credential or {"account_name": cache["name"], "account_key": cache["key"]},
            self.ctx.ca_cert,
        )
        disks_client = storage.service_client(
            f"{self.ctx.url('azurite-disks')}/{disks['name']}",
            credential or {"account_name": disks["name"], "account_key": disks["key"]},
            self.ctx.ca_cert,
        )
        self.cache = storage.AzureCache(cache_client)
        azure_seeds = storage.AzureSeedDisks(
            disks_client, account_name=disks["name"], account_key=disks["key"]
        )
        self.cache.ensure()
        azure_seeds.ensure()
        # Records go to a local mirror of each seed disk; the page blobs get them in large
        # runs before each snapshot (see mirror.py: Azurite's small page writes are slow).
        self.seeds = MirroredSeedDisks(azure_seeds, self.ctx.data_dir / "mirror", self._fault)
        self.disks_reader = lambda container: storage.AzureSeedDisks(
            disks_client, container, account_name=disks["name"], account_key=disks["key"]
        )  # verify: other containers of the disks account (a failed-over VM's managed disks)
        self.writer.seeds = self.seeds

    def _prepared(self) -> bool:
        """The vault database and its key exist (the ARM process made them)."""
        with self._vault_lock:
            return self.vault is not None or self._open_vault()

    def _open_vault(self) -> bool:
        arm = Path(self.ctx.state_dir) / "services" / "arm"
        if not (arm / "siterecovery.db").exists() or not (arm / "vault.credentials").exists():
            return False
        credentials = json.loads((arm / "vault.credentials").read_text())
        self.key = replication_data_key(credentials["registrationKey"])
        vault = ReplicationState.for_lab(self.ctx.state_dir)
        self.points = RecoveryPoints(
            self.progress,
            vault,
            self.seeds,
            manifest_exists=self.cache.exists,
            delete_manifest=self.cache.delete,
            on_point=self._on_point,
            faults=self._fault,
        )
        self.reporter = StatusReporter(self.progress, vault, self.monitor, service=self.ctx.name)
        # The VMs adopted before a restart, and the points a crash left unmade.
        self.vault = vault
        for row in self.progress.vms():
            vm = self._vm_from_progress(row["vm_id"])
            if vm is not None:
                self.vms[vm.vm_id] = vm
                self.points.catch_up(vm)
        return True

    def _vm_from_progress(self, vm_id: str) -> VmReplication | None:
        row = self.progress.vm(vm_id)
        if row is None:
            return None
        plan = parse_plan(row["plan"])
        seeds = {
            s["disk_index"]: SeedDisk(s["disk_index"], s["disk_id"], s["blob"], s["size"])
            for s in self.progress.seed_disks(vm_id, row["epoch"])
        }
        item = ProtectedItemKey(row["fabric"], row["container"], row["item"])
        return VmReplication(
            row["vm_id"], row["epoch"], item, plan, seeds, int(row.get("generation") or 0)
        )

    # -- the schedule pass ----------------------------------------------------------------------
    def _pass(self) -> None:
        if not self._prepared():
            return
        items = {i.vm_id.lower(): i for i in self.vault.protected_items() if i.vm_id}
        for row in self.progress.vms():
            item = items.get(row["vm_id"].lower())
            if item is None or item.key.name.lower() != row["item"].lower():
                self._purge(row["vm_id"])
        now = time.monotonic()
        for item in items.values():
            adopted = self._adopted(item.vm_id)
            if adopted is not None and now - self._plan_checked.get(adopted.vm_id, 0) < (
                self.settings.plan_interval
            ):
                continue
            self._plan_checked[item.vm_id] = now
            plan = self._latest_plan(item.vm_id)
            if plan is None or plan.protected_item.lower() != item.key.name.lower():
                continue
            if adopted is not None and adopted.epoch == plan.epoch:
                if adopted.item != item.key:
                    self.progress.set_item(adopted.vm_id, (*_key_tuple(item.key),))
                    self.vms[adopted.vm_id] = self._vm_from_progress(adopted.vm_id)
                continue
            if adopted is not None and plan.lab_time <= adopted.plan.lab_time:
                continue
            self._adopt(item, plan)
        failed_over = {i.vm_id.lower() for i in items.values() if i.failed_over}
        for vm in list(self.vms.values()):
            if vm.vm_id.lower() in failed_over:
                continue  # the VM runs in Azure: its replication has ended
            vm = self._resync_switch(vm)
            for index in vm.indexes:
                self._dispatch(vm, index)

    def _resync_switch(self, vm: VmReplication) -> VmReplication:
        """Begin the VM's newest resync generation, if its agent asked for one (resync.py)."""
        now = time.monotonic()
        if now - self._resync_checked.get(vm.vm_id, 0.0) < self.settings.plan_interval:
            return vm
        self._resync_checked[vm.vm_id] = now
        plan = resync_side.latest_plan(self.cache, vm, self._plans)
        if plan is not None and self._busy(vm.vm_id):
            self._resync_checked.pop(vm.vm_id, None)  # look again at the next pass
            return vm
        if plan is None:
            return vm  # nothing new, or a run of the old generation is finishing
        sizes = {}
        for index, seed in vm.seeds.items():
            size = max(seed.size, plan.sizes.get(index, 0))
            if size > seed.size:  # the source disk grew
                self._fault("resize")
                self.seeds.resize(seed.blob, size)
                self.progress.set_seed_size(vm.vm_id, vm.epoch, index, size)
            sizes[index] = size
        resync_side.publish_checksums(self.seeds, self.cache, vm, plan, sizes)
        self.progress.switch_generation(vm.vm_id, vm.epoch, plan.generation, vm.indexes)
        switched = self._vm_from_progress(vm.vm_id)
        self.vms[vm.vm_id] = switched
        with self._lock:  # the old streams' issues are over
            for k in [k for k in self.issues if k[0] == vm.vm_id]:
                self.issues.pop(k, None)
        self._clean_stale_streams(switched)
        self.monitor.publish(
            "ResyncStarted",
            {
                "vm_id": vm.vm_id,
                "protected_item": vm.item.name,
                "epoch": vm.epoch,
                "generation": plan.generation,
                "reason": plan.reason,
            },
            Vm=vm.vm_id,
        )
        log.info("resync %d of %s begins (%s)", plan.generation, vm.vm_id, plan.reason)
        return switched

    def _adopted(self, vm_id: str) -> VmReplication | None:
        return next((v for v in self.vms.values() if v.vm_id.lower() == vm_id.lower()), None)

    def _latest_plan(self, vm_id: str) -> IrPlan | None:
        plans = []
        for name, _size in self.cache.list(f"{names.MANIFESTS}/{vm_id}/ir-plan-"):
            if name not in self._plans:
                try:
                    self._plans[name] = parse_plan(self.cache.read(name))
                except InvalidPlan as exc:
                    log.warning("initial replication plan %s ignored: %s", name, exc)
                    self._plans[name] = None
                except Exception as exc:  # deleted meanwhile, storage hiccup: next pass
                    log.debug("plan %s not read: %s", name, exc)
                    continue
            if self._plans[name] is not None:
                plans.append(self._plans[name])
        return current_plan(plans, vm_id, self.progress.retired_epochs(vm_id))

    def _busy(self, vm_id: str) -> bool:
        with self._lock:
            return any(k[0] == vm_id for k in self.running)

    def _adopt(self, item, plan: IrPlan) -> None:
        vm_id = plan.vm_id
        if self._busy(vm_id):
            return  # a run of the old epoch is finishing; adopt at the next pass
        old = self.progress.vm(vm_id)
        if old is not None and old["epoch"] != plan.epoch:
            self._retire(vm_id, old["epoch"])
        if old is None or old["epoch"] != plan.epoch:
            seeds = []
            for disk in plan.disks:
                blob = names.seed_blob(vm_id, plan.epoch, disk.index)
                self._fault("create_seed")
                self.seeds.create(blob, disk.size)  # nothing recorded yet: a fresh blob is right
                seeds.append(
                    {"index": disk.index, "disk_id": disk.disk_id, "blob": blob, "size": disk.size}
                )
            self.progress.adopt(vm_id, plan.epoch, _key_tuple(item.key), plan.to_json(), seeds)
        vm = self._vm_from_progress(vm_id)
        self.vms[vm_id] = vm
        self.rates[vm_id] = DataRates()
        log.info(
            "replicating %s (%s) epoch %s: %d disk(s)",
            item.vm_name,
            vm_id,
            plan.epoch,
            len(plan.disks),
        )
        self._record_seed_disks(vm, item)
        self.monitor.publish(
            "InitialReplicationStarted",
            {
                "vm": item.vm_name,
                "vm_id": vm_id,
                "protected_item": item.key.name,
                "epoch": plan.epoch,
                "disks": len(plan.disks),
                "allocated_bytes": plan.allocated,
            },
            Vm=item.vm_name,
        )

    def _record_seed_disks(self, vm: VmReplication, item) -> None:
        base = item.target_resource_group_id
        seeds = {
            s.disk_id: f"{base}/providers/Microsoft.Compute/disks/{s.blob}" if base else s.blob
            for s in vm.seeds.values()
        }
        known = {d["diskId"] for d in item.disks}
        state = (
            "InitialReplicationInProgress"
            if item.protection_state in ("InitialReplicationPending",)
            else None
        )
        now = self.clock.time()
        with self.vault.store.transaction():
            self.vault.update_item(
                vm.item,
                protection_state=state,
                protection_stage="Resync" if state else None,
                seed_managed_disks={k: v for k, v in seeds.items() if k in known},
                resync_progress_percentage=0,
            )
            for seed in vm.seeds.values():
                if seed.disk_id in known:
                    self.vault.update_disk(
                        vm.item,
                        seed.disk_id,
                        protection_stage="Resync",
                        resync_progress_percentage=0,
                        resync_start_time=now,
                    )
                else:
                    log.warning(
                        "plan disk %s is not a protected disk of %s", seed.disk_id, item.vm_name
                    )

    def _retire(self, vm_id: str, epoch: str) -> None:
        """An older epoch of a VM: its seed disks, snapshots, points and logs go."""
        log.info("retiring epoch %s of %s", epoch, vm_id)
        row = self.progress.vm(vm_id)
        points = self.progress.points(vm_id, epoch)
        if row is not None and points:
            key = ProtectedItemKey(row["fabric"], row["container"], row["item"])
            self.vault.delete_recovery_points(key, [p["name"] for p in points])
        generations = range(int((row or {}).get("generation") or 0) + 1)
        for seed in self.progress.seed_disks(vm_id, epoch):
            self.seeds.delete(seed["blob"])
            for g in generations:
                for stream in (
                    names.pass_stream(epoch, seed["disk_index"], g),
                    names.journal_stream(epoch, seed["disk_index"], g),
                ):
                    self.cache.delete_prefix(names.stream_prefix(vm_id, stream))
        for g in generations:
            self.cache.delete_prefix(resync_side.engine.sums_prefix(vm_id, epoch, g))
        for p in points:
            self.cache.delete(names.manifest_blob(vm_id, p["tag_id"]))
        self.cache.delete(names.plan_blob(vm_id, epoch))
        self.progress.retire(vm_id, epoch)
        self._forget_memory(vm_id)

    def _purge(self, vm_id: str) -> None:
        """The protected item is gone (disabled, purged): so is everything of its VM."""
        if self._busy(vm_id):
            self.vms.pop(vm_id, None)  # its runs stop; purge at the next pass
            return
        log.info("purging replication of %s: its protected item is gone", vm_id)
        for seed in self.progress.seed_disks(vm_id):
            self.seeds.delete(seed["blob"])
        self.cache.delete_prefix(f"{vm_id}/")
        self.cache.delete_prefix(f"{names.MANIFESTS}/{vm_id}/")
        self.cache.delete_prefix(f"{resync_side.engine.SUMS_PREFIX}/{vm_id}/")
        self.progress.forget_vm(vm_id)
        self._forget_memory(vm_id)
        self.monitor.publish("ReplicationPurged", {"vm_id": vm_id}, Vm=vm_id)

    def _forget_memory(self, vm_id: str) -> None:
        with self._lock:
            self.vms.pop(vm_id, None)
            for table in (self.disk_status, self.disk_errors, self.issues, self.retry_after):
                for k in [k for k in table if k[0] == vm_id]:
                    table.pop(k, None)
        self.rates.pop(vm_id, None)
        self.summaries.pop(vm_id, None)
        self.last_update.pop(vm_id, None)
        self._plans = {k: v for k, v in self._plans.items() if f"/{vm_id}/" not in k}
        if self.reporter is not None:
            self.reporter.forget(vm_id)

    # -- applying -------------------------------------------------------------------------------
    def _dispatch(self, vm: VmReplication, index: int) -> None:
        k = (vm.vm_id, index)
        with self._lock:
            if k in self.running or time.monotonic() < self.retry_after.get(k, 0.0):
                return
            self.running.add(k)
        try:
            self.apply_pool.submit(self._run_disk, vm, index)
        except RuntimeError:  # shutting down
            with self._lock:
                self.running.discard(k)

    def _run_disk(self, vm: VmReplication, index: int) -> None:
        k = (vm.vm_id, index)
        try:
            applier = DiskApplier(
                vm,
                index,
                cache=self.cache,
                seeds=self.seeds,
                progress=self.progress,
                key=self.key,
                writer=self.writer,
                on_tag=self.points.tag_reached,
                on_applied=self._on_applied,
                faults=self._fault,
                prefetch=self.prefetch_pool,
            )
            status = applier.run(
                should_stop=lambda: self.stop_event.is_set() or self.vms.get(vm.vm_id) is not vm
            )
            self._note(k, status, None)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("applying disk %d of %s failed (will retry): %s", index, vm.vm_id, error)
            self._note(k, None, error)
            self.retry_after[k] = time.monotonic() + self.settings.retry_seconds
        finally:
            with self._lock:
                self.running.discard(k)

    def _note(self, k: tuple[str, int], status: DiskStatus | None, error: str | None) -> None:
        with self._lock:
            if status is not None:
                self.disk_status[k] = status
                self.disk_errors.pop(k, None)
                if status.gap:
                    issue = ("gap", status.stream, status.gap)
                elif status.blocked:
                    issue = ("blocked", status.stream, status.blocked)
                else:
                    issue = None
            else:
                self.disk_errors[k] = error
                issue = ("error", error)
            previous = self.issues.get(k)
            if issue is None:
                self.issues.pop(k, None)
            elif previous is None or previous[0] != issue:
                self.issues[k] = (issue, time.monotonic(), self.clock.time())

    def _issues_for(self, vm: VmReplication) -> list[dict]:
        """Problems that lasted longer than the grace period, as health errors to show."""
        out = []
        grace = self.settings.gap_grace_seconds
        with self._lock:
            entries = [(k, v) for k, v in self.issues.items() if k[0] == vm.vm_id]
        for (_vm, index), (issue, since_wall, since_lab) in entries:
            if time.monotonic() - since_wall < grace:
                continue
            disk = vm.seeds[index]
            where = f"disk {index} ({disk.disk_id}) of VM {vm.vm_id}"
            if issue[0] == "gap":
                first, last = issue[2]
                message = (
                    f"Replication logs {first}..{last} of stream {issue[1]} ({where}) have not "
                    f"reached the cache storage account; the disk waits for them."
                )
                out.append({"code": LOG_MISSING, "message": message, "since": since_lab})
            elif issue[0] == "blocked":
                out.append(
                    {"code": LOG_UNREADABLE, "message": f"{where}: {issue[2]}", "since": since_lab}
                )
            else:
                out.append(
                    {"code": LOG_ERROR, "message": f"{where}: {issue[1]}", "since": since_lab}
                )
        return out

    def _on_applied(self, vm: VmReplication, index: int, message, sealed: int) -> None:
        now = self.clock.time()
        self.rates.setdefault(vm.vm_id, DataRates()).add(now, message.payload_bytes, sealed)
        self.last_update[vm.vm_id] = now

    def _on_point(self, vm: VmReplication, point: dict) -> None:
        self.monitor.publish(
            "RecoveryPointCreated",
            {"vm_id": vm.vm_id, "protected_item": vm.item.name, "epoch": vm.epoch, **point},
            Vm=vm.vm_id,
        )

    # -- status and janitor ---------------------------------------------------------------------
    def _status_tick(self) -> None:
        if not self._prepared():
            return
        for vm in list(self.vms.values()):
            try:
                item = self.vault.protected_item(vm.item)
                rates = self.rates.get(vm.vm_id)
                now = self.clock.time()
                self.summaries[vm.vm_id] = self.reporter.report(
                    vm,
                    item,
                    now,
                    rates=rates.rates(now) if rates else (0.0, 0.0),
                    last_update=self.last_update.get(vm.vm_id),
                    issues=self._issues_for(vm),
                )
            except KeyError:
                continue  # the item is gone: the next pass purges the VM
            except Exception:
                log.exception("status of %s not reported; trying again", vm.vm_id)

    def _janitor_tick(self) -> None:
        if not self._prepared():
            return
        for vm in list(self.vms.values()):
            try:
                item = self.vault.protected_item(vm.item)
                if item.failed_over:
                    continue  # its points stay as they are until commit
                self.points.catch_up(vm)
                if item.failover_running:
                    continue  # a failover job is choosing a point: prune after it
                retention = float(item.policy.get("recoveryPointHistory") or 1440)
                pruned = self.points.prune(vm, self.clock.time(), retention, item.points_in_use)
                if pruned:
                    log.info("retention pruned %d recovery point(s) of %s", len(pruned), vm.vm_id)
                self._clean_stale_streams(vm)
            except KeyError:
                continue
            except Exception:
                log.exception("janitor pass over %s failed; trying again", vm.vm_id)

    def _clean_stale_streams(self, vm: VmReplication) -> None:
        known_old = self.progress.retired_epochs(vm.vm_id) | {
            p.epoch
            for p in self._plans.values()
            if p is not None and p.vm_id == vm.vm_id and p.lab_time < vm.plan.lab_time
        }
        prefixes = self.cache.prefixes(f"{vm.vm_id}/")
        stale = names.stale_stream_prefixes(prefixes, vm.vm_id, vm.epoch, known_old, vm.generation)
        for prefix in stale:
            count = self.cache.delete_prefix(prefix)
            log.info("deleted %d stale log(s) of %s (%s)", count, vm.vm_id, prefix)
        # The resync's checksums, once no agent will read them again (a VM that never
        # resynced has none: retiring an epoch deletes its own).
        if not vm.generation:
            return
        passes = [
            self.progress.stream(vm.vm_id, names.pass_stream(vm.epoch, i, vm.generation))
            for i in vm.indexes
        ]
        keep = not all(p and p["done"] for p in passes)
        for prefix in resync_side.stale_sums_prefixes(self.cache, vm, keep_current=keep):
            self.cache.delete_prefix(prefix)

    # -- what /_lab/state shows -----------------------------------------------------------------
    def state(self) -> dict:
        out = {
            "ready": self.ready()[0],
            "idle": self.idle_reason,
            "vms": [],
            "page_bytes_written": self.writer.bytes_written,
            "monitor": self.monitor.stats(),
            "settings": self.settings.to_json(),
        }
        if self.vault is None:
            return out
        for vm in list(self.vms.values()):
            out["vms"].append(self._vm_state(vm))
        return out

    def _vm_state(self, vm: VmReplication) -> dict:
        from .status import summarize

        row = self.progress.vm(vm.vm_id) or {}
        streams = self.progress.streams(vm.vm_id, vm.epoch)
        points = self.progress.points(vm.vm_id, vm.epoch)
        protected = self.progress.point(vm.vm_id, vm.epoch, vm.first_tag) is not None
        summary = summarize(vm, streams, self.clock.time(), protected)
        with self._lock:
            statuses = {k[1]: v for k, v in self.disk_status.items() if k[0] == vm.vm_id}
            errors = {k[1]: v for k, v in self.disk_errors.items() if k[0] == vm.vm_id}
        stream_rows = []
        for s in streams:
            status = statuses.get(s["disk_index"])
            current = status is not None and status.stream == s["stream"]
            stream_rows.append(
                {
                    "stream": s["stream"],
                    "disk_index": s["disk_index"],
                    "initial": bool(s["initial"]),
                    "applied": s["applied"],
                    "done": bool(s["done"]),
                    "logs_applied": s["logs"],
                    "payload_bytes": s["payload_bytes"],
                    "sealed_bytes": s["sealed_bytes"],
                    "captured_at": s["captured_at"],
                    "pending_logs": status.pending if current else 0,
                    "gap": list(status.gap) if current and status.gap else None,
                    "blocked": status.blocked if current else None,
                    "error": errors.get(s["disk_index"]) if current or not status else None,
                }
            )
        latest = points[0] if points else None
        return {
            "vm_id": vm.vm_id,
            "protected_item": vm.item.name,
            "epoch": vm.epoch,
            "protection": summary["state"],
            "initial_replication": {
                "percent": summary["ir_percent"],
                "applied_bytes": summary["ir_bytes"],
                "allocated_bytes": summary["ir_allocated"],
                "done": summary["ir_done"],
            },
            "rpo_seconds": summary["rpo"],
            "disk_rpo_seconds": {d["index"]: d["rpo"] for d in summary["disks"]},
            "rpo_alert": bool(row.get("rpo_alert")),
            "recovery_points": len(points),
            "last_recovery_point": (
                {k: latest[k] for k in ("name", "tag_id", "time", "type", "manifest")}
                if latest
                else None
            ),
            "seed_disks": {s.index: s.blob for s in vm.seeds.values()},
            "seed_disk_sizes": {s.index: s.size for s in vm.seeds.values()},
            "resync_generation": vm.generation,
            "streams": stream_rows,
        }

    def require_ready(self) -> None:
        if self.idle_reason:
            raise NotReady(f"the worker is idle: {self.idle_reason}")
        if not self._storage_ready.is_set() or not self._prepared():
            raise NotReady("the worker is not connected to storage and the vault yet")


def _key_tuple(key) -> tuple[str, str, str]:
    return (key.fabric, key.container, key.name)
