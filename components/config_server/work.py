"""What the vault asks of the configuration server (provider-channel work items).

- AddVCenter: discover the vCenter through pyvmomi, push its inventory, keep watching it.
- EnableProtection: have the chosen process server push-install the mobility service, wait
  for the agent to register, and pair it: the agent's next heartbeat tells it to replicate.
- DisableProtection / PurgeProtection: stop replicating the VM (the agent stays installed,
  as with the real service unless uninstalled).
- ShutdownVm (planned failover): shut the source VM down cleanly through vCenter; its agent
  sends its last changes on the way down (the vault waits for that final point).
- ResyncProtection (the Resynchronize job): hand the agent the next resync generation in its
  replication settings, wait until it reports that generation Completed (the result names the
  tag of the worker's point) or Failed (`ResyncFailed`, with the agent's reason). See resync.py.

Each step is reported to the vault, so the job's tasks show it. A failure is reported with
the real service's kind of error code where one is known.
"""

from __future__ import annotations

import concurrent.futures
import logging
import secrets
import threading
import time

from . import resync
from .vault import VaultError

log = logging.getLogger(__name__)

INSTALL_TASK = "InstallMobilityServiceTask"
ENABLE_TASK = "EnableReplicationTask"
PUSH_INSTALL_TIMEOUT = 300.0
AGENT_REGISTRATION_TIMEOUT = 120.0
SHUTDOWN_TIMEOUT = 90.0  # the guest's clean shutdown, its agent's final drain included
RESYNC_TASK = "ResynchronizeTask"
RESYNC_TIMEOUT = 30 * 60.0  # wall seconds for the agent's checksum pass over every disk
RESYNC_POLL_SECONDS = 0.5
RESYNC_REPORT_SECONDS = 30.0  # an unchanged percentage is reported again (keeps the lease)
CANCEL_CHECK_SECONDS = 5.0


class WorkFailed(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        task: str | None = None,
        possible_causes: str | None = None,
        recommended_action: str | None = None,
    ):
        super().__init__(message)
        self.code, self.task = code, task
        self.possible_causes, self.recommended_action = possible_causes, recommended_action

    def error(self) -> dict:
        err = {"code": self.code, "message": str(self)}
        if self.possible_causes:
            err["possibleCauses"] = self.possible_causes
        if self.recommended_action:
            err["recommendedAction"] = self.recommended_action
        return err


class Stopped(Exception):
    """The configuration server is stopping, or the vault cancelled the work item: nothing
    more to report (a work item not finished is delivered again after a restart)."""


class WorkHandlers:
    def __init__(self, server):
        self.server = server
        self._running: set[str] = set()
        self._lock = threading.Lock()

    @property
    def vault(self):
        return self.server.vault

    # -- the loop -----------------------------------------------------------------------------
    def poll_loop(self) -> None:
        stop = self.server.stop_event
        while not stop.is_set():
            try:
                items = self.vault.work_items(wait_seconds=10)
            except VaultError as exc:
                log.warning("work items: %s", exc)
                stop.wait(1.0)
                continue
            for item in items:
                with self._lock:
                    if item["id"] in self._running:
                        continue  # delivered again while we are still at it
                    self._running.add(item["id"])
                threading.Thread(target=self._handle, args=(item,), daemon=True).start()

    def _handle(self, item: dict) -> None:
        handler = {
            "AddVCenter": self.add_vcenter,
            "EnableProtection": self.enable_protection,
            "DisableProtection": self.disable_protection,
            "PurgeProtection": self.disable_protection,
            "ShutdownVm": self.shutdown_vm,
            "ResyncProtection": self.resync_protection,
        }.get(item["kind"])
        try:
            if handler is None:
                raise WorkFailed(
                    "NotSupported", f"this configuration server does not do {item['kind']}"
                )
            result = handler(item) or {}
            self._report(item, {"state": "Succeeded", "result": result})
        except Stopped as exc:
            log.info("%s %s not finished: %s", item["kind"], item["id"], exc)
        except WorkFailed as exc:
            log.warning("%s %s failed: %s", item["kind"], item["id"], exc)
            if exc.task:
                self._report(item, {"task": exc.task, "state": "Failed", "error": exc.error()})
            self._report(item, {"state": "Failed", "error": exc.error()})
        except Exception as exc:  # report it: a job must not wait forever on a crash here
            log.exception("%s %s failed", item["kind"], item["id"])
            self._report(
                item, {"state": "Failed", "error": {"code": "InternalError", "message": str(exc)}}
            )
        finally:
            with self._lock:
                self._running.discard(item["id"])

    def _report(self, item: dict, report: dict) -> None:
        try:
            self.vault.report(item["id"], report)
        except VaultError as exc:
            # 409: the job was cancelled or already finished; nothing more to tell it.
            log.info("report on work item %s not taken: %s", item["id"], exc)

    # -- AddVCenter ---------------------------------------------------------------------------
    def add_vcenter(self, item: dict) -> dict:
        p = item["payload"]
        name = p["vCenterName"]
        accounts = self.server.run_as_accounts()
        run_as = str(p.get("runAsAccountId") or "1")
        if run_as not in accounts or accounts[run_as]["kind"] != "vcenter":
            raise WorkFailed(
                "95218",
                f"the run-as account '{run_as}' is not a vCenter account",
                task="DiscoverVCenterTask",
            )
        self.server.store.upsert_vcenter(name, p["ipAddress"], int(p.get("port") or 443), run_as)
        self._report(item, {"task": "DiscoverVCenterTask", "state": "InProgress"})
        try:
            count = self.server.discover(name)
        except Exception as exc:
            self.server.store.vcenter_status(name, "Failed", error=str(exc))
            raise WorkFailed(
                "95126",
                f"the vCenter server {p['ipAddress']}:{p.get('port')} could not be discovered: "
                f"{exc}",
                task="DiscoverVCenterTask",
                possible_causes="wrong address or credentials, or the vCenter server is down",
                recommended_action="check the vCenter server and the run-as account",
            ) from exc
        self._report(item, {"task": "DiscoverVCenterTask", "state": "Succeeded"})
        self.server.watch_vcenter(name)
        log.info("added vCenter %s: %d VMs", name, count)
        return {"infrastructureId": name, "internalId": name}

    # -- EnableProtection ---------------------------------------------------------------------
    def enable_protection(self, item: dict) -> dict:
        p = item["payload"]
        store = self.server.store
        vm_id = p["vm"]["instanceUuid"]
        vm = store.vm(vm_id)
        if vm is None:
            raise WorkFailed(
                "95117", f"the VM {p['vm'].get('name')} is no longer discovered", task=INSTALL_TASK
            )
        ps = store.server("process_servers", p["processServerId"])
        if ps is None:
            raise WorkFailed(
                "95120",
                f"process server {p['processServerId']} is not registered",
                task=INSTALL_TASK,
            )
        started = self.server.clock.time()
        agent = store.agent(vm_id)
        if agent is None or not self._agent_alive(agent):
            self._push_install(item, vm, ps)
            agent = self._wait_for_agent(item, vm_id, started)
        else:
            self._report(
                item,
                {
                    "task": INSTALL_TASK,
                    "state": "Succeeded",
                    "message": "the mobility service is already installed",
                },
            )
        self._report(item, {"task": ENABLE_TASK, "state": "InProgress"})
        settings = self._agent_settings(p, vm, ps)
        store.set_protection(vm_id, settings, "Enabled", self.server.clock.time())
        # The agent learns at its next heartbeat; ask it for one now.
        self.server.groups.commands.send(agent["id"], {"kind": "heartbeat"})
        self._report(item, {"task": ENABLE_TASK, "state": "Succeeded"})
        return {
            "agentVersion": agent["version"],
            "agentId": agent["id"],
            "processServerId": ps["id"],
        }

    def _agent_alive(self, agent: dict) -> bool:
        last = agent.get("last_heartbeat")
        # Alive: heard from within a few heartbeat intervals (lab time runs at any speed).
        window = max(30.0, 6 * self.server.heartbeat_seconds) * self.server.clock.speed
        return last is not None and self.server.clock.time() - last < window

    def _guest_account(self, p: dict, vm: dict) -> dict:
        accounts = self.server.run_as_accounts()
        family = "windows" if vm["os_type"] == "Windows" else "linux"
        chosen = accounts.get(str(p.get("runAsAccountId") or ""))
        if chosen is None or chosen["kind"] not in ("windows", "linux"):
            chosen = next((a for a in accounts.values() if a["kind"] == family), None)
        if chosen is None:
            raise WorkFailed("95108", f"no guest account for a {family} VM", task=INSTALL_TASK)
        return chosen

    def _push_install(self, item: dict, vm: dict, ps: dict) -> None:
        server = self.server
        vc = next(v for v in server.store.vcenters() if v["name"] == vm["vcenter"])
        vc_account = server.run_as_accounts().get(vc["run_as"]) or server.run_as_accounts()["1"]
        guest = self._guest_account(item["payload"], vm)
        payload = {
            "kind": "push-install",
            "vm_name": vm["name"],
            "vm_moref": vm["moref"],
            "os_family": "windows" if vm["os_type"] == "Windows" else "linux",
            "vcenter": {
                "host": vc["host"],
                "port": vc["port"],
                "user": vc_account["user"],
                "password": vc_account["password"],
            },
            "guest_user": guest["user"],
            "guest_password": guest["password"],
            "cs_endpoint": server.ctx.url(server.name),
            "passphrase": server.registrar.passphrase,
            "ca_pem": server.ctx.pki.ca_cert_path.read_text(),
        }

        def on_report(step: str, state: str, error: str | None) -> None:
            if state == "InProgress":
                self._report(item, {"task": INSTALL_TASK, "state": "InProgress", "message": step})

        self._report(
            item,
            {
                "task": INSTALL_TASK,
                "state": "InProgress",
                "message": f"push install through process server {ps['name']}",
            },
        )
        work = server.ps_work.put(ps["id"], payload, on_report)
        deadline = time.monotonic() + PUSH_INSTALL_TIMEOUT
        while not work.done.wait(1.0):
            if time.monotonic() > deadline or server.stop_event.is_set():
                server.ps_work.cancel(work)
                raise WorkFailed(
                    "95103",
                    "the push install did not finish in time "
                    f"(process server {ps['name']} did not report)",
                    task=INSTALL_TASK,
                )
        if work.failed:
            raise WorkFailed(
                "95103",
                f"installation of the mobility service failed: {work.failed}",
                task=INSTALL_TASK,
                possible_causes="the guest credentials, VMware Tools, or the VM's state",
                recommended_action="check the run-as account and that the VM is running",
            )

    def _wait_for_agent(self, item: dict, vm_id: str, since: float) -> dict:
        deadline = time.monotonic() + AGENT_REGISTRATION_TIMEOUT
        while time.monotonic() < deadline and not self.server.stop_event.is_set():
            agent = self.server.store.agent(vm_id)
            if agent is not None and (agent["last_heartbeat"] or 0) >= since:
                self._report(item, {"task": INSTALL_TASK, "state": "Succeeded"})
                return agent
            time.sleep(0.1)  # the agent registers on its own schedule; bounded by the deadline
        raise WorkFailed(
            "95104",
            "the mobility agent did not register with the configuration server after installation",
            task=INSTALL_TASK,
        )

    def _agent_settings(self, p: dict, vm: dict, ps: dict) -> dict:
        wanted = [d.get("diskId") for d in p.get("disksToInclude") or []]
        disks = []
        for index, disk in enumerate(vm["disks"]):
            if not wanted or disk["id"] in wanted:
                disks.append({"index": index, "disk_id": disk["id"], "size": disk["capacity"]})
        policy = p.get("policy") or {}
        agent = {
            # A new enable is a new epoch: its streams never mix with an earlier one's.
            "epoch": secrets.token_hex(3),
            "protected_item": p["protectedItemName"],
            "process_server": {"id": ps["id"], "url": ps["url"]},
            "disks": disks,
            "policy": {
                "crash_consistent_minutes": policy.get("crashConsistentFrequencyInMinutes") or 5,
                "app_consistent_minutes": policy.get("appConsistentFrequencyInMinutes") or 0,
                "multi_vm_sync": policy.get("multiVmSyncStatus") == "Enable",
            },
            "group": p.get("multiVmGroupName") or None,
        }
        return {"process_server_id": ps["id"], "agent": agent, "enable": p}

    # -- DisableProtection ------------------------------------------------------------------
    def disable_protection(self, item: dict) -> dict:
        vm_id = item["payload"].get("vmId")
        if vm_id:
            self.server.store.remove_protection(vm_id)
            agent = self.server.store.agent(vm_id)
            if agent is not None:
                self.server.groups.commands.send(agent["id"], {"kind": "heartbeat"})
        self._report(item, {"task": "StopReplicationTask", "state": "Succeeded"})
        return {}

    # -- ShutdownVm ---------------------------------------------------------------------------
    def shutdown_vm(self, item: dict) -> dict:
        """One VM (`vmId`), or a recovery plan's (`vms`: [{vmId, vmName}]) side by side."""
        payload = item["payload"]
        vms = payload.get("vms") or [{"vmId": payload.get("vmId"), "vmName": payload.get("vmName")}]
        task = (item.get("tasks") or [{"name": "ShutdownVmTask"}])[0]["name"]
        self._report(item, {"task": task, "state": "InProgress"})
        failures = []

        def one(vm: dict):
            try:
                return vm["vmId"], self.server.shutdown_vm(vm["vmId"], SHUTDOWN_TIMEOUT)
            except Exception as exc:
                failures.append(f"{vm.get('vmName') or vm['vmId']}: {exc}")
                return vm["vmId"], None

        with concurrent.futures.ThreadPoolExecutor(max(1, min(8, len(vms)))) as pool:
            found = dict(pool.map(one, vms))
        if failures:
            raise WorkFailed(
                "539",
                f"the virtual machine(s) could not be shut down: {'; '.join(failures)}",
                task=task,
                possible_causes="VMware Tools are not running, or the vCenter server is down",
                recommended_action="shut the VMs down, then run an unplanned failover",
            )
        self._report(item, {"task": task, "state": "Succeeded"})
        return {"powerStateBefore": found}

    # -- ResyncProtection ---------------------------------------------------------------------
    def resync_protection(self, item: dict) -> dict:
        p = item["payload"]
        server = self.server
        vm_id, vm_name = p.get("vmId"), p.get("vmName") or p.get("vmId")
        protection = server.store.protection(vm_id) if vm_id else None
        if protection is None or protection["state"] != "Enabled":
            raise WorkFailed(
                "ProtectionNotEnabled",
                f"replication of {vm_name} is not enabled on this configuration server",
                task=RESYNC_TASK,
            )
        agent = server.store.agent(vm_id)
        if agent is None:
            raise WorkFailed(
                "AgentNotRegistered",
                f"the mobility agent of {vm_name} is not registered with this configuration server",
                task=RESYNC_TASK,
            )
        settings = protection["settings"]
        generation = resync.next_generation(settings, resync.reported(agent["status"]), item["id"])
        settings = resync.with_generation(
            settings, generation, item["id"], server.clock.time(), bool(p.get("automatic"))
        )
        server.store.set_protection(vm_id, settings, "Enabled", server.clock.time())
        # The agent learns at its next heartbeat; ask it for one now.
        server.groups.commands.send(agent["id"], {"kind": "heartbeat"})
        log.info("resync of %s: generation %d asked of agent %s", vm_name, generation, agent["id"])
        self._report(
            item,
            {
                "task": RESYNC_TASK,
                "state": "InProgress",
                "progress": 0,
                "message": f"resync generation {generation} asked of the mobility agent",
            },
        )
        reported = self._wait_for_resync(item, vm_id, vm_name, generation)
        if resync.outcome(reported, generation) == resync.FAILED:
            cause = reported.get("error") or "the agent gave no reason"
            raise WorkFailed(
                "ResyncFailed",
                f"resynchronization of {vm_name} (generation {generation}) failed: {cause}",
                task=RESYNC_TASK,
                possible_causes="the process server or the cache storage account could not be "
                "reached, or a source disk could not be read",
                recommended_action="fix the cause named, then resynchronize again",
            )
        self._report(item, {"task": RESYNC_TASK, "state": "Succeeded"})
        return resync.result(reported, settings["agent"], generation)

    def _wait_for_resync(self, item: dict, vm_id: str, vm_name: str, generation: int) -> dict:
        """The agent's resync status once it reports `generation` Completed or Failed."""
        server = self.server
        deadline = time.monotonic() + RESYNC_TIMEOUT
        last_percent, last_report = None, time.monotonic()
        next_cancel_check = time.monotonic() + CANCEL_CHECK_SECONDS
        while True:
            if server.stop_event.is_set():
                raise Stopped("the configuration server is stopping")
            protection = server.store.protection(vm_id)
            if protection is None or protection["state"] != "Enabled":
                raise WorkFailed(
                    "ProtectionDisabled",
                    f"replication of {vm_name} was disabled during the resynchronization",
                    task=RESYNC_TASK,
                )
            agent = server.store.agent(vm_id) or {}
            reported = resync.reported(agent.get("status"))
            if resync.outcome(reported, generation) is not None:
                return reported
            now = time.monotonic()
            if now > deadline:
                raise WorkFailed(
                    "ResyncTimedOut",
                    f"the mobility agent of {vm_name} did not finish resync generation "
                    f"{generation} within {RESYNC_TIMEOUT / 60:g} minutes "
                    f"(last reported: generation {reported.get('generation')}, "
                    f"{reported.get('state')}, {reported.get('percent', 0)}%)",
                    task=RESYNC_TASK,
                )
            percent = reported.get("percent") if reported.get("generation") == generation else None
            if percent is not None and (
                percent != last_percent or now - last_report >= RESYNC_REPORT_SECONDS
            ):
                self._report(
                    item,
                    {
                        "task": RESYNC_TASK,
                        "state": "InProgress",
                        "progress": max(0, min(100, int(percent))),
                        "message": f"resynchronizing (generation {generation})",
                    },
                )
                last_percent, last_report = percent, now
            if now >= next_cancel_check:
                next_cancel_check = now + CANCEL_CHECK_SECONDS
                self._check_not_cancelled(item)
            # The agent reports at its own heartbeat; bounded by the deadline.
            server.stop_event.wait(RESYNC_POLL_SECONDS)

    def _check_not_cancelled(self, item: dict) -> None:
        try:
            state = self.vault.work_item(item["id"]).get("state")
        except VaultError as exc:  # the vault may be restarting: ask again later
            log.info("work item %s: %s", item["id"], exc)
            return
        if state == "Cancelled":
            raise Stopped("the vault cancelled the work item")
