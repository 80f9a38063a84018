"""VCenter: the state root of the fake vCenter/ESXi (no HTTP here).

It owns the registry of managed objects, the singletons a ServiceContent names, the VMs and
their guests, the store, and the lifecycle: load or seed at start, autostart (VMs recorded
powered on get their guest back: re-adopted if it still runs, booted otherwise, like ESXi
autostart), a monitor that follows guests and datastore usage, and `reset()` back to the
topology's seed.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from . import soap, vm_devices
from .disks import flat_name, split_datastore_path
from .event_manager import EventManager
from .guest_operations import (
    GuestAuthManager,
    GuestFileManager,
    GuestOperations,
    GuestOperationsManager,
    GuestProcessManager,
)
from .guests import GuestFleet
from .host_system import HostSystem
from .property_collector import PropertyCollector
from .registry import Registry
from .search_index import SearchIndex
from .seed import build_infrastructure, seed_vms
from .service_instance import ServiceInstance
from .sessions import SessionManager, SessionStore
from .store import Store
from .task import TaskManager
from .view_manager import ViewManager
from .virtual_machine import POWERED_ON, VirtualMachine
from .vm_create import VmFactory
from .vm_power import set_power

log = logging.getLogger(__name__)

MONITOR_SECONDS = 1.0
USAGE_EVERY = 5  # monitor rounds between datastore usage recounts


class VCenter:
    vm_class = VirtualMachine
    host_class = HostSystem

    def __init__(
        self, *, topology: dict, state_dir, data_dir, clock, public_url="", guest_backend=None
    ):
        spec = topology["vcenter"]
        self.spec = spec
        self.clock = clock
        self.state_dir = Path(state_dir)
        self.data_dir = Path(data_dir)
        self.public_url = public_url
        self.stopping = threading.Event()
        self.registry = Registry()
        self.registry.vcenter = self
        self.store = Store(self.data_dir / "vcenter.sqlite", soap.DEFAULT_VERSION)
        self.instance_uuid = str(
            uuid.uuid5(uuid.NAMESPACE_DNS, f"drlab-vcenter/{topology['name']}")
        )
        self.sessions = SessionStore(spec.get("session_timeout_minutes", 30) * 60.0)
        self.sessions.on_end.append(self._session_ended)
        r = self.registry
        self.service_instance = r.add(ServiceInstance(r, "ServiceInstance", self))
        self.session_manager = r.add(
            SessionManager(r, "SessionManager", self, spec["user"], spec["password"])
        )
        self.property_collector = r.add(PropertyCollector(r, "propertyCollector", self))
        self.view_manager = r.add(ViewManager(r, "ViewManager", self))
        self.tasks = r.add(TaskManager(r, "TaskManager", self))
        self.events = r.add(EventManager(r, "EventManager", self))
        self.search_index = r.add(SearchIndex(r, "SearchIndex", self))
        self.guest_ops = GuestOperations(self)
        self.guest_operations = r.add(
            GuestOperationsManager(
                r,
                "guestOperationsManager",
                r.add(GuestProcessManager(r, "guestOperationsProcessManager", self.guest_ops)),
                r.add(GuestFileManager(r, "guestOperationsFileManager", self.guest_ops)),
                r.add(GuestAuthManager(r, "guestOperationsAuthManager", self.guest_ops)),
            )
        )
        self.vm_factory = VmFactory(self)
        self.guests = GuestFleet(self.state_dir, r, guest_backend)
        self.vms: dict[str, VirtualMachine] = {}
        self.datacenters: list = []
        self.root_folder = None
        self.first_vm_id = build_infrastructure(self, spec)
        self.ready = False
        self.ready_detail = "loading inventory"
        self.autostart_failures: dict[str, str] = {}
        self._monitor: threading.Thread | None = None
        self._load_or_seed()

    # -- lifecycle ----------------------------------------------------------------------------
    def _load_or_seed(self) -> None:
        with self.registry.lock:
            if self.store.get_meta("seeded"):
                self._load()
            else:
                self._seed()

    def _seed(self) -> None:
        self.store.begin()
        try:
            self.store.set_next_id("vm", self.first_vm_id)
            seed_vms(self, self.spec)
            self.store.set_meta("seeded", True)
        finally:
            self.store.commit()
        log.info("seeded %d VMs from the topology", len(self.vms))

    def _load(self) -> None:
        by_id = self.registry.get
        for rec in self.store.vm_records():
            vm = VirtualMachine(
                self.registry,
                rec["moid"],
                rec["name"],
                by_id(rec["folder"]),
                uuid=rec["uuid"],
                instance_uuid=rec["instance_uuid"],
                guest_id=rec["guest_id"],
                os_family=rec["os_family"],
                num_cpu=rec["num_cpu"],
                memory_mb=rec["memory_mb"],
                host=by_id(rec["host"]),
                pool=by_id(rec["pool"]),
                datastore=by_id(rec["datastore"]),
                vm_dir=rec["vm_dir"],
                devices=[vm_devices.device_from_xml(x) for x in rec["devices"]],
                nic_ips={int(k): v for k, v in rec["nic_ips"].items()},
                hostname=rec["hostname"],
                workload=rec["workload"],
                guest_account=rec["guest_account"],
                seeded=rec["seeded"],
                annotation=rec["annotation"],
                create_date=_dt(rec["create_date"]),
                modified=_dt(rec["modified"]),
                power_state=rec["power_state"],
                boot_time=_dt(rec["boot_time"]),
                clean_power_off=rec["clean_power_off"],
            )
            self.add_vm(vm, persist=False)
        self.events.load(self.store.events(), 1)
        log.info("loaded %d VMs from the store", len(self.vms))

    def start(self) -> None:
        """Autostart the guests (in the background), then follow them."""
        threading.Thread(target=self._autostart, name="autostart", daemon=True).start()

    def _autostart(self) -> None:
        self.ready_detail = "starting guests"
        with self.registry.lock:
            todo = [vm for vm in self.vms.values() if vm.power_state == POWERED_ON]
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="autostart") as pool:
            list(pool.map(self._bring_back, todo))
        self.ready = True
        self.ready_detail = "ready"
        if self._monitor is None:
            self._monitor = threading.Thread(target=self._watch, name="monitor", daemon=True)
            self._monitor.start()

    def _bring_back(self, vm: VirtualMachine) -> None:
        """A VM recorded powered on: re-adopt its running guest, or boot it (ESXi autostart)."""
        with self.tasks.entity_lock(vm):
            try:
                if self.guests.attach(vm) is not None:
                    log.info("autostart: re-adopted the running guest of %s", vm.name)
                    booted = False
                else:
                    self.guests.start(vm)
                    log.info("autostart: booted %s", vm.name)
                    booted = True
                with self.registry.lock:
                    vm.guest_status = self.guests.status(vm)
                    if booted or vm.boot_time is None:
                        set_power(vm, POWERED_ON)  # a new boot time
                    else:
                        vm.touch("guest", "guestHeartbeatStatus")
            except Exception as exc:
                self.autostart_failures[vm.name] = str(exc)
                log.exception("autostart of %s failed", vm.name)

    def _watch(self) -> None:
        rounds = 0
        while not self.stopping.wait(MONITOR_SECONDS):
            rounds += 1
            try:
                self.sessions.sweep()
                self._follow_guests()
                if rounds % USAGE_EVERY == 0:
                    self.refresh_usage()
            except Exception:
                log.exception("monitor round failed")

    def _follow_guests(self) -> None:
        with self.registry.lock:
            running = [vm for vm in self.vms.values() if vm.power_state == POWERED_ON]
        for vm in running:
            if self.tasks.entity_lock(vm).locked():
                continue  # a power operation is under way: it sets the guest state itself
            view = self.guests.status(vm)
            with self.registry.lock:
                if view != vm.guest_status and vm.power_state == POWERED_ON:
                    vm.guest_status = view
                    vm.touch("guest", "guestHeartbeatStatus")

    def refresh_usage(self) -> None:
        """Datastore free space and each VM's committed bytes, as guests write (only what
        changed is touched, so unchanged summaries keep their serialised XML)."""
        with self.registry.lock:
            for ds in self.all_datastores():
                if ds.refresh_usage():
                    for vm in ds.vms():
                        committed = self.vm_committed_bytes(vm)
                        if committed != vm.committed:
                            vm.committed = committed
                            vm.touch("summary")

    def stop(self) -> None:
        """The vCenter process ends; guests keep running (re-adopted at the next start)."""
        self.stopping.set()
        self.registry.bump()
        self.tasks.wait_idle(10)
        self.store.close()

    def reset(self) -> None:
        """Back to the topology's seed: guests killed, VMs and their files re-created from the
        topology (same ids and uuids), tasks and events cleared; sessions stay logged in."""
        self.ready = False
        self.ready_detail = "resetting"
        self.tasks.wait_idle(30)
        for vm in list(self.vms.values()):
            self.guests.power_off(vm)
        with self.registry.lock:
            for vm in list(self.vms.values()):
                self.remove_vm(vm)
            self.tasks.clear()
            self.events.clear()
            for ds in self.all_datastores():
                for child in ds.root.iterdir():
                    if child.is_dir():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
                ds.refresh_usage()
            self.store.wipe()
            self.autostart_failures.clear()
            self._seed()
        self._autostart()

    # -- inventory ----------------------------------------------------------------------------
    def add_vm(self, vm: VirtualMachine, persist: bool = True) -> None:
        self.vms[vm.moid] = vm
        self.registry.add(vm)
        vm.parent.add_child(vm)
        for obj in (vm.host, vm.pool, *vm.datastores(), *vm.networks()):
            obj.touch()
        if persist:
            self.store.save_vm(vm)

    def remove_vm(self, vm: VirtualMachine) -> None:
        self.vms.pop(vm.moid, None)
        vm.parent.remove_child(vm)
        self.registry.remove(vm)
        for obj in (vm.host, vm.pool, *vm.datastores(), *vm.networks()):
            obj.touch()
        self.store.delete_vm(vm.moid)
        self.guests.forget(vm)

    def all_datastores(self) -> list:
        return [ds for dc in self.datacenters for ds in dc.datastores()]

    def datastore_by_name(self, name):
        return next((d for d in self.all_datastores() if d.name == name), None)

    def datastore_by_ref(self, ref):
        if ref is None:
            return None
        return next((d for d in self.all_datastores() if d.moid == ref._moId), None)

    def network_by_name(self, name):
        for dc in self.datacenters:
            for net in dc.networks():
                if net.name == name:
                    return net
        return None

    def network_by_ref(self, ref):
        return next(
            (n for dc in self.datacenters for n in dc.networks() if n.moid == ref._moId), None
        )

    def host_by_name(self, name):
        return next((h for h in self.registry.of_type(HostSystem) if h.name == name), None)

    def vm_by_name(self, name):
        return next((vm for vm in self.vms.values() if vm.name == name), None)

    def datacenter_of(self, entity):
        node = entity
        while node is not None and node not in self.datacenters:
            node = node.parent
        return node

    def guest_account_for(self, os_family: str) -> dict | None:
        account = self.spec.get("guest_accounts", {}).get(os_family)
        return dict(account) if account else None

    def disk_files(self, disk) -> tuple[Path, Path]:
        """(descriptor, flat extent) of a virtual disk, from its datastore path."""
        ds_name, rel = split_datastore_path(disk.backing.fileName)
        datastore = self.datastore_by_name(ds_name)
        if datastore is None:
            raise ValueError(f"no datastore {ds_name!r}")
        descriptor = datastore.file(rel)
        return descriptor, descriptor.with_name(flat_name(descriptor.name))

    def vm_committed_bytes(self, vm: VirtualMachine) -> int:
        total = 0
        for disk in vm.disks():
            try:
                total += self.disk_files(disk)[1].stat().st_blocks * 512
            except (OSError, ValueError):
                continue
        return total

    def session_moid(self, call) -> str:
        return f"session[{call.session.key}]{uuid.uuid4().hex}"

    def _session_ended(self, session) -> None:
        with self.registry.lock:
            for obj in self.registry.owned_by(session.key):
                self.registry.remove(obj)
            self.property_collector.session_ended(session.key)

    # -- the control API's view ---------------------------------------------------------------
    def state(self) -> dict:
        with self.registry.lock:
            pids = self.guests.running_pids()
            return {
                "ready": self.ready,
                "datacenters": [
                    {
                        "name": dc.name,
                        "moid": dc.moid,
                        "clusters": [
                            {"name": c.name, "moid": c.moid, "hosts": [h.name for h in c.hosts]}
                            for c in dc.host_folder.children
                        ],
                        "datastores": [
                            {
                                "name": ds.name,
                                "moid": ds.moid,
                                "path": str(ds.root),
                                "capacity": ds.capacity,
                                "free": ds.free,
                            }
                            for ds in dc.datastores()
                        ],
                        "networks": [n.name for n in dc.networks()],
                    }
                    for dc in self.datacenters
                ],
                "vms": [self._vm_state(vm, pids) for vm in self.vms.values()],
                "sessions": len(self.sessions.all()),
                "recent_tasks": [
                    {
                        "moid": t.moid,
                        "name": t.method,
                        "state": t.state,
                        "entity": t.entity_name,
                        "error": t.error.text if t.error else None,
                    }
                    for t in self.tasks.recent()
                ],
                "autostart_failures": dict(self.autostart_failures),
            }

    def _vm_state(self, vm: VirtualMachine, pids: dict) -> dict:
        disks = []
        for disk in vm.disks():
            try:
                flat = str(self.disk_files(disk)[1])
            except ValueError:
                flat = None
            disks.append(
                {
                    "label": disk.deviceInfo.label,
                    "file": disk.backing.fileName,
                    "path": flat,
                    "capacity": vm_devices.disk_size(disk),
                }
            )
        return {
            "name": vm.name,
            "moid": vm.moid,
            "uuid": vm.uuid,
            "instance_uuid": vm.instance_uuid,
            "power_state": vm.power_state,
            "tools": vm.tools_state()[0],
            "host": vm.host.name,
            "guest_pid": pids.get(vm.moid),
            "ip_addresses": vm.ip_addresses(),
            "disks": disks,
        }


def _dt(epoch):
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None
