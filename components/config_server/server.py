"""The configuration server's life: install (passphrase), registration with the vault,
heartbeats to it, discovery of its vCenters, and the work the vault queues for it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from pathlib import Path

from lab.kit.vaultkeys import replication_data_key

from . import discovery, resync
from .groups import GroupCoordinator
from .ps_work import PsWorkQueue
from .registrar import Registrar
from .store import ConfigStore
from .vault import VaultClient, VaultCredentials, VaultError
from .work import WorkHandlers

log = logging.getLogger(__name__)

AGENT_VERSION = "9.62.0.0"
VAULT_CREDENTIALS = Path("services") / "arm" / "vault.credentials"
# A mobility agent, process server or master target unheard of for this long (lab time) is
# reported as not heartbeating.
STALE_AFTER = 15 * 60


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ConfigServer:
    def __init__(self, ctx):
        self.ctx = ctx
        self.name = ctx.name
        spec = ctx.topology["onprem"]["configuration_server"]
        self.ip = spec["ip"]
        self.heartbeat_seconds = float(spec["heartbeat_interval_seconds"])
        self.discovery_seconds = float(spec["discovery_interval_seconds"])
        self.clock = ctx.clock
        self.store = ConfigStore(ctx.data_dir / "config.db")
        self.vault: VaultClient | None = None
        self.registrar = Registrar(self.store, self.clock, None)
        self._write_passphrase()
        self.ps_work = PsWorkQueue()
        self.work = WorkHandlers(self)
        self.groups = GroupCoordinator(self)
        self.stop_event = ctx.stop_event
        self.registered = threading.Event()
        self._beat = threading.Event()
        self.last_error: str | None = None
        self._watchers: dict[str, threading.Thread] = {}
        self._discover_now: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []

    def _write_passphrase(self) -> None:
        # As `genpassphrase -v` shows it to the admin who installs agents and process servers.
        path = self.ctx.data_dir / "passphrase"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.registrar.passphrase + "\n")

    # -- run-as accounts: the credentials the admin gave the configuration server ---------------
    def run_as_accounts(self) -> dict[str, dict]:
        vc = self.ctx.topology.get("vcenter") or {}
        accounts = {}
        if vc:
            accounts["1"] = {
                "name": f"vCenter ({vc['user']})",
                "user": vc["user"],
                "password": vc["password"],
                "kind": "vcenter",
            }
        for i, (family, acct) in enumerate(sorted((vc.get("guest_accounts") or {}).items())):
            accounts[str(i + 2)] = {
                "name": f"{family} guest ({acct['user']})",
                "user": acct["user"],
                "password": acct["password"],
                "kind": family,
            }
        return accounts

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ConfigServer:
        self._spawn(self._register_loop, "vault-registration")
        for vc in self.store.vcenters():
            self.watch_vcenter(vc["name"])
        return self

    def _spawn(self, target, name: str, *args) -> threading.Thread:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)
        return t

    def stop(self) -> None:
        # Threads in a long poll (work items, vCenter watches) are daemons: they end with the
        # process. The database needs no close: every write is already committed (WAL).
        self.stop_event.set()
        self._beat.set()
        if self.vault is not None:
            self.vault.close()

    def ready(self) -> tuple[bool, str]:
        if not self.registered.is_set():
            return False, self.last_error or "registering with the vault"
        return True, "registered with the vault"

    def state(self) -> dict:
        return {
            "registered": self.registered.is_set(),
            "fabric": self.name,
            "process_servers": [
                {k: s[k] for k in ("id", "name", "url", "last_heartbeat", "health")}
                for s in self.store.servers("process_servers")
            ],
            "master_targets": [
                {k: s[k] for k in ("id", "name", "last_heartbeat", "health")}
                for s in self.store.servers("master_targets")
            ],
            "agents": [
                {
                    k: a[k]
                    for k in ("id", "vm_id", "hostname", "version", "last_heartbeat", "status")
                }
                for a in self.store.agents()
            ],
            "vcenters": self.store.vcenters(),
            "protections": self.store.protections(),
            "inventory_vms": len(self.store.inventory()),
            "pending_process_server_work": len(self.ps_work),
            "group_tags": {"taken": self.groups.tags_taken, "aborted": self.groups.tags_aborted},
            "last_error": self.last_error,
        }

    def reset(self) -> None:
        """Forget agents' replication settings (not registrations: those are the site's)."""
        for p in self.store.protections():
            self.store.remove_protection(p["vm_id"])

    # -- registration and heartbeats ----------------------------------------------------------
    def _register_loop(self) -> None:
        creds_path = self.ctx.state_dir / VAULT_CREDENTIALS
        while not self.stop_event.is_set():
            try:
                creds = VaultCredentials(creds_path)
                self.registrar.data_key_b64 = _b64(replication_data_key(creds.registration_key))
                self.vault = VaultClient(
                    creds, self.ctx.credential("configuration-server"), self.ctx.ca_cert, self.name
                )
                self.vault.register(f"{self.name}.lab.local", self.ip, AGENT_VERSION)
                self.registered.set()
                self.last_error = None
                log.info("registered with vault %s as fabric %s", creds.vault, self.name)
                break
            except FileNotFoundError:
                self.last_error = "waiting for the vault credentials file"
            except Exception as exc:  # the vault may not be up yet: keep trying
                self.last_error = f"vault registration: {exc}"
                log.warning("%s", self.last_error)
            self.stop_event.wait(0.3)
        if self.registered.is_set():
            self._spawn(self._heartbeat_loop, "vault-heartbeat")
            self._spawn(self.work.poll_loop, "vault-work")
            self.groups.start()

    def heartbeat_soon(self) -> None:
        """Report to the vault now (a server or agent registered), not at the next beat."""
        self._beat.set()

    def _heartbeat_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.vault.heartbeat(self.heartbeat_body())
            except VaultError as exc:
                log.warning("heartbeat to the vault: %s", exc)
            self._beat.wait(self.heartbeat_seconds)
            self._beat.clear()

    def heartbeat_body(self) -> dict:
        now = self.clock.time()
        body = {
            "health": "Normal",
            "hostName": f"{self.name}.lab.local",
            "ipAddress": self.ip,
            "agentVersion": AGENT_VERSION,
            "processServers": [],
            "masterTargets": [],
            "mobilityAgents": [],
            "vCenters": [],
            "runAsAccounts": [
                {"accountId": k, "accountName": v["name"]}
                for k, v in self.run_as_accounts().items()
            ],
        }
        protections = {p["vm_id"]: p for p in self.store.protections()}
        for ps in self.store.servers("process_servers"):
            h = ps["health"]
            stale = ps["last_heartbeat"] is None or now - ps["last_heartbeat"] > STALE_AFTER
            errors = [
                {"code": "PsHealth", "message": a, "level": "Warning"} for a in h.get("alerts", [])
            ]
            health = {"Healthy": "Normal"}.get(h.get("status"), h.get("status") or "Normal")
            if stale:
                health = "Critical"
                errors.append(
                    {
                        "code": "NoHeartbeat",
                        "level": "Error",
                        "message": "no heartbeat from the process server for 15 minutes",
                    }
                )
            body["processServers"].append(
                {
                    "id": ps["id"],
                    "name": ps["name"],
                    "ipAddress": ps["ip"],
                    "osType": "Windows",
                    "agentVersion": AGENT_VERSION,
                    "cacheTotalBytes": h.get("cache_capacity", 0),
                    "cacheFreeBytes": h.get("cache_free", 0),
                    "uploadBacklogBytes": h.get("backlog_bytes", 0),
                    "throughputBytesPerSecond": h.get("throughput_bps", 0),
                    "machineCount": sum(
                        1
                        for p in protections.values()
                        if p["settings"].get("process_server_id") == ps["id"]
                    ),
                    "serviceStatus": "Stopped" if stale else "Running",
                    "health": health,
                    "healthErrors": errors,
                }
            )
        for mt in self.store.servers("master_targets"):
            h = mt["health"]
            body["masterTargets"].append(
                {
                    "id": mt["id"],
                    "name": mt["name"],
                    "ipAddress": mt["ip"],
                    "osType": mt["os_family"].capitalize(),
                    "agentVersion": AGENT_VERSION,
                    "retentionVolumes": h.get("retention_volumes", []),
                    "dataStores": h.get("datastores", []),
                    "diskCount": h.get("disk_count", 1),
                }
            )
        for agent in self.store.agents():
            body["mobilityAgents"].append(
                mobility_agent_entry(agent, protections.get(agent["vm_id"]))
            )
        for vc in self.store.vcenters():
            entry = {"name": vc["name"], "discoveryStatus": vc["status"]}
            if vc["error"]:
                entry["error"] = {"code": "DiscoveryFailed", "message": vc["error"]}
            body["vCenters"].append(entry)
        return body

    # -- discovery ----------------------------------------------------------------------------
    def discover(self, vcenter: str) -> int:
        """Read one vCenter now and push its inventory to the vault; returns the VM count."""
        vc = next(v for v in self.store.vcenters() if v["name"] == vcenter)
        account = self.run_as_accounts().get(vc["run_as"]) or self.run_as_accounts()["1"]
        si = discovery.connect(
            vc["host"], vc["port"], account["user"], account["password"], self.ctx.ca_cert
        )
        try:
            vms = discovery.collect_vms(si)
        finally:
            discovery.disconnect(si)
        self._publish(vcenter, vms)
        return len(vms)

    def shutdown_vm(self, vm_id: str, timeout: float) -> str:
        """Shut a discovered VM down cleanly through its vCenter (planned failover)."""
        vm = self.store.vm(vm_id)
        if vm is None:
            raise LookupError(f"the VM {vm_id} is not in the discovered inventory")
        vc = next(v for v in self.store.vcenters() if v["name"] == vm["vcenter"])
        account = self.run_as_accounts().get(vc["run_as"]) or self.run_as_accounts()["1"]
        si = discovery.connect(
            vc["host"], vc["port"], account["user"], account["password"], self.ctx.ca_cert
        )
        try:
            return discovery.shutdown_guest(si, vm["moref"], timeout)
        finally:
            discovery.disconnect(si)

    def _publish(self, vcenter: str, vms: list[dict]) -> None:
        self.store.replace_inventory(vcenter, vms)
        self.vault.put_inventory(vcenter, [_inventory_vm(vm) for vm in vms])
        self.store.vcenter_status(vcenter, "Completed", at=self.clock.time())

    def watch_vcenter(self, vcenter: str) -> None:
        """Keep the vault's view of one vCenter current: watch it, and re-read periodically."""
        if vcenter in self._watchers and self._watchers[vcenter].is_alive():
            return
        self._discover_now[vcenter] = threading.Event()
        self._watchers[vcenter] = self._spawn(self._watch, f"discovery-{vcenter}", vcenter)

    def _watch(self, vcenter: str) -> None:
        while not self.stop_event.is_set():
            if not self.registered.wait(0.5):
                continue
            try:
                vc = next(v for v in self.store.vcenters() if v["name"] == vcenter)
                account = self.run_as_accounts().get(vc["run_as"]) or self.run_as_accounts()["1"]
                si = discovery.connect(
                    vc["host"], vc["port"], account["user"], account["password"], self.ctx.ca_cert
                )
            except Exception as exc:
                self.store.vcenter_status(vcenter, "Failed", error=str(exc))
                log.warning("vCenter %s: %s", vcenter, exc)
                self.stop_event.wait(2.0)
                continue
            last_full = 0.0
            changed = threading.Event()
            watch_stop = threading.Event()
            watcher = threading.Thread(
                target=self._watch_updates, args=(si, watch_stop, changed), daemon=True
            )
            watcher.start()
            try:
                while not self.stop_event.is_set() and watcher.is_alive():
                    due = time.monotonic() - last_full >= self.discovery_seconds
                    if changed.is_set() or due:
                        changed.clear()
                        self._publish(vcenter, discovery.collect_vms(si))
                        last_full = time.monotonic()
                    changed.wait(0.5)
            except Exception as exc:  # vCenter or vault went away: reconnect
                self.store.vcenter_status(vcenter, "Failed", error=str(exc))
                log.warning("discovery of %s: %s", vcenter, exc)
                self.stop_event.wait(1.0)
            finally:
                watch_stop.set()
                watcher.join(timeout=10)
                discovery.disconnect(si)

    def _watch_updates(self, si, stop: threading.Event, changed: threading.Event) -> None:
        try:
            discovery.watch(si, stop, changed.set, max_wait_seconds=2)
        except Exception as exc:  # the outer loop reconnects
            log.info("vCenter watch ended: %s", exc)

    # -- what agents are told -------------------------------------------------------------------
    def replication_for(self, agent: dict) -> dict | None:
        protection = self.store.protection(agent["vm_id"])
        if protection is None or protection["state"] != "Enabled":
            return None
        return protection["settings"]["agent"]


def mobility_agent_entry(agent: dict, protection: dict | None) -> dict:
    """A mobility agent as the heartbeat to the vault shows it; with its resync status (disks
    by ASR disk id) while the VM is protected."""
    entry = {
        "vmId": agent["vm_id"],
        "agentId": agent["id"],
        "agentVersion": agent["version"],
        "lastHeartbeat": iso(agent["last_heartbeat"]),
        "registered": True,
    }
    if protection:
        entry["processServerId"] = protection["settings"]["process_server_id"]
        status = resync.reported(agent.get("status"))
        if status:
            entry["resync"] = resync.vault_status(status, protection["settings"].get("agent"))
    return entry


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def _inventory_vm(vm: dict) -> dict:
    return {
        "instanceUuid": vm["id"],
        "name": vm["name"],
        "osType": vm["os_type"],
        "guestId": vm["guest_id"],
        "powerState": vm["power_state"],
        "ipAddresses": vm["ip_addresses"],
        "cpuCount": vm["cpus"],
        "memoryMB": vm["memory_mb"],
        "disks": [
            {
                "id": d["id"],
                "name": (d["file"] or d["name"]).split("/")[-1].split("] ")[-1],
                "capacityInBytes": d["capacity"],
            }
            for d in vm["disks"]
        ],
        "nics": [
            {"id": str(n["key"]), "macAddress": n["mac"], "network": n["network"]}
            for n in vm["nics"]
        ],
    }
