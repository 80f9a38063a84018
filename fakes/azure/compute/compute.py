"""`Compute`: the root of Microsoft.Compute's state in the ARM process, and its Python API.

The HTTP handlers and in-process callers (Site Recovery's failover) share this object. The
Python API is synchronous: it returns when the work is done (a VM created with `boot=True`
returns once its guest is up, or with the boot's result when it did not come up):

    disk = compute.create_disk_from_snapshot(
        rg, "vm1-osdisk", "asr-seed-disks/<blob>?snapshot=<ts>",
        size_gb=None, tags={}, sku="Standard_LRS", os_type="Linux")
    view = compute.create_vm(rg, "vm1", size="Standard_D2s_v3", os_disk=disk["id"],
                             data_disks=[data["id"]],                 # LUN 0, 1, ... in order
                             nics=[NicSpec(vnet="vnet-test", subnet="default")],  # or NIC ids
                             tags={}, boot=True, guest=GuestSpec(workload={...}))
    view["power_state"], view["guest_running"], view["application_check"]["ok"], view["ip"]
    compute.vm_view(rg, "vm1"); compute.vm(rg, "vm1", instance_view=True)   # ARM JSON
    compute.start_vm / power_off_vm / deallocate_vm / restart_vm (rg, "vm1") -> view
    compute.delete_vm(rg, "vm1", delete_disks=True, delete_nics=True)
    compute.disk(rg, name); compute.delete_disk(rg, name); compute.create_empty_disk(rg, name, gb)

The HTTP side uses `begin_create_vm`, `begin_action` and `begin_delete_vm`: they check and
record synchronously (bad input changes nothing) and run the rest as a long-running
operation on a worker thread. `start()` re-adopts running guests and powers back on the VMs
recorded running, then resumes unfinished operations.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fakes.azure.arm.resource_ids import ResourceScope

from .disk_storage import DiskStorage
from .errors import InvalidParameter, OperationNotAllowed
from .guests import BOOT_TIMEOUT, AzureGuests, GuestDefaults, process_name
from .ids import T_DISK, T_VM, disk_id
from .models import check_tags
from .models.disks import DiskInput, ManagedDisks
from .models.operations import Operations
from .models.virtual_machines import (
    DiskAttachment,
    NicAttachment,
    VirtualMachines,
    VmInput,
    check_size,
    plan,
)
from .power import VmPower, key_of, transition_dict

log = logging.getLogger(__name__)

WORKERS = 8


@dataclass
class NicSpec:
    """A NIC for `create_vm` to make (named `<vm>-nic<i>`, deleted with the VM)."""

    vnet: str
    subnet: str
    private_ip: str | None = None  # static; None: the subnet's next free address
    name: str | None = None
    vnet_group: str | None = None  # default: the VM's resource group


@dataclass
class GuestSpec:
    """Who the guest is, where its disk does not say (each None: from the disk/topology)."""

    os_family: str | None = None  # "linux" | "windows"
    hostname: str | None = None
    accounts: dict | None = None  # {user: password}
    workload: dict | None = None  # WorkloadSpec as a dict


class Compute:
    def __init__(
        self,
        store,
        scope: ResourceScope,
        network,
        storage: DiskStorage | None,
        clock,
        state_dir: str | Path,
        defaults: GuestDefaults | None = None,
        backend=None,
    ):
        self.store = store
        self.scope = scope
        self.network = network
        self.storage = storage
        self.clock = clock
        self.defaults = defaults or GuestDefaults({}, {})
        self.boot_timeout = BOOT_TIMEOUT
        self.operations = Operations(store, clock)
        self.disks = ManagedDisks(store, scope, storage, clock)
        self.vms = VirtualMachines(store, scope, self.disks, network, clock)
        self.disks.power_of = self.vms.power_of
        self.guests = AzureGuests(state_dir, backend)
        self.power = VmPower(self)
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="compute-op")
        self.autostart_done = threading.Event()
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Compute:
        threading.Thread(target=self._autostart, name="compute-autostart", daemon=True).start()
        return self

    def _autostart(self) -> None:
        try:
            if self.storage is not None and not self.storage.wait_listening(120):
                log.warning("the disks storage account does not answer: no VM powered back on")
                return
            pending = self.operations.pending()
            busy = {op["resourceId"].lower() for op in pending}
            futures = []
            for doc in self.vms.list():
                if self.vms.id_of(doc).lower() in busy:
                    continue
                if doc["powerState"] in ("running", "starting"):
                    futures.append(self.pool.submit(self.power.bring_back, doc))
            for op in pending:
                log.info("resuming %s of %s", op["action"], op["resourceId"])
                futures.append(self.pool.submit(self.power.execute, op))
            for future in futures:
                future.result()
        except Exception:
            log.exception("compute autostart failed")
        finally:
            self.autostart_done.set()

    def close(self) -> None:
        """The ARM process stops; guests keep running (re-adopted at the next start)."""
        self._closed = True
        self.pool.shutdown(wait=False, cancel_futures=True)

    # -- disks --------------------------------------------------------------------------------
    def create_disk_from_snapshot(
        self,
        group: str,
        name: str,
        snapshot_ref: str,
        *,
        size_gb: int | None = None,
        tags: dict | None = None,
        sku: str = "Standard_LRS",
        os_type: str | None = None,
    ) -> dict:
        """A managed disk copied (server-side) from a blob or snapshot of the disks account,
        e.g. a recovery point's `details.snapshots[diskId]`. Its ARM JSON."""
        inp = DiskInput(
            location=self.scope.location,
            tags=check_tags(tags),
            create_option="Import",
            size_gb=size_gb,
            sku=sku,
            source_uri=snapshot_ref,
            os_type=os_type,
        )
        doc, _created = self.disks.create(group, name, inp)
        return self.disks.render(doc)

    def create_empty_disk(
        self, group: str, name: str, size_gb: int, *, tags=None, sku="Standard_LRS"
    ) -> dict:
        inp = DiskInput(self.scope.location, check_tags(tags), "Empty", size_gb, sku)
        doc, _created = self.disks.create(group, name, inp)
        return self.disks.render(doc)

    def disk(self, group: str, name: str) -> dict:
        return self.disks.render(self.disks.get(group, name))

    def delete_disk(self, group: str, name: str) -> bool:
        return self.disks.delete(group, name)

    def snapshot_disk(self, group: str, name: str) -> str:
        """Keep the disk's bytes as they are now (a blob snapshot, deleted with the disk):
        its reference in the disks account. Failover keeps one of each disk before boot."""
        return self.storage.snapshot(self.disks.get(group, name)["blob"])

    def disk_blob_url(self, group: str, name: str) -> str:
        """Where a managed disk's bytes are (the disks account), for checks and tools."""
        return self.storage.url(self.disks.get(group, name)["blob"])

    # -- VMs: the Python API ------------------------------------------------------------------
    def _disk_id(self, group: str, ref: str) -> str:
        return ref if ref.lower().startswith("/subscriptions/") else disk_id(self.scope, group, ref)

    def create_vm(
        self,
        group: str,
        name: str,
        *,
        size: str,
        os_disk: str,
        data_disks=(),
        nics=(),
        tags: dict | None = None,
        boot: bool = True,
        guest: GuestSpec | None = None,
    ) -> dict:
        """Create a VM on existing managed disks (ids or names in `group`) and NICs (ids, or
        `NicSpec`s made here); with `boot`, its guest boots before this returns. The view."""
        group = self.scope.group(group)
        if self.vms.find(group, name) is not None:
            raise OperationNotAllowed(f"The VM '{name}' exists.")
        if not nics:
            raise InvalidParameter("A virtual machine needs at least one network interface.")
        made: list[tuple[str, str]] = []
        attachments = []
        try:
            for i, nic in enumerate(nics):
                if isinstance(nic, NicSpec):
                    nic_name = nic.name or f"{name}-nic{i}"
                    body = self.network.create_nic(
                        group,
                        nic_name,
                        vnet=nic.vnet,
                        subnet=nic.subnet,
                        private_ip=nic.private_ip,
                        tags=tags,
                        vnet_group=nic.vnet_group,
                    )
                    made.append((group, nic_name))
                    attachments.append(NicAttachment(body["id"], i == 0, "Delete"))
                else:
                    attachments.append(NicAttachment(str(nic), i == 0, "Detach"))
            inp = VmInput(
                location=self.scope.location,
                tags=check_tags(tags),
                size=check_size(size),
                os_disk=DiskAttachment(self._disk_id(group, os_disk)),
                data_disks=[
                    DiskAttachment(self._disk_id(group, d), lun) for lun, d in enumerate(data_disks)
                ],
                nics=attachments,
            )
            overrides = vars(guest) if guest is not None else None
            doc, op = self._create(group, name, inp, overrides, boot)
        except BaseException:
            for g, n in made:
                self.network.delete_nic(g, n)
            raise
        if op is not None:
            done = self.power.execute(op)
            if done["status"] != "Succeeded":  # the VM stays, Failed, as in Azure
                raise OperationNotAllowed(done["error"]["message"], code=done["error"]["code"])
        return self.vm_view(group, name)

    def vm(self, group: str, name: str, instance_view: bool = False) -> dict:
        doc = self.vms.get(group, name)
        view = self.instance_view_of(doc) if instance_view else None
        return self.vms.render(doc, view)

    def vm_view(self, group: str, name: str) -> dict:
        """{power_state, guest_running, guest_pid, application_check: {ok, ...}, ip, ...}"""
        return self.power.view(self.vms.get(group, name))

    def instance_view_of(self, doc: dict) -> dict:
        return self.power.instance_view(doc, self.guests.status(key_of(doc)))

    def start_vm(self, group: str, name: str) -> dict:
        return self._act(group, name, "start")

    def power_off_vm(self, group: str, name: str, skip_shutdown: bool = False) -> dict:
        return self._act(group, name, "powerOff", skip_shutdown)

    def deallocate_vm(self, group: str, name: str) -> dict:
        return self._act(group, name, "deallocate")

    def restart_vm(self, group: str, name: str) -> dict:
        return self._act(group, name, "restart")

    def _act(self, group, name, action, skip_shutdown=False) -> dict:
        op = self.begin_action(group, name, action, skip_shutdown, run=False)
        if op is not None:
            done = self.power.execute(op)
            if done["status"] != "Succeeded":
                raise OperationNotAllowed(done["error"]["message"], code=done["error"]["code"])
        return self.vm_view(group, name)

    def delete_vm(
        self, group: str, name: str, delete_disks: bool = True, delete_nics: bool = True
    ) -> bool:
        """Power the guest off and delete the VM, its disks and NICs unless told to keep them
        (then they are only detached). False if there was no such VM."""
        op = self.begin_delete_vm(group, name, delete_disks, delete_nics, run=False)
        if op is None:
            return False
        done = self.power.execute(op)
        if done["status"] != "Succeeded":
            raise OperationNotAllowed(done["error"]["message"], code=done["error"]["code"])
        return True

    # -- VMs: what the HTTP API starts --------------------------------------------------------
    def begin_create_vm(self, group: str, name: str, inp: VmInput) -> tuple[dict, dict | None]:
        """(record, operation): a new VM is recorded and boots in the background; an existing
        one is updated at once (operation None)."""
        existing = self.vms.find(self.scope.group(group), name)
        if existing is not None:
            return self.vms.update_settings(existing, inp), None
        doc, op = self._create(group, name, inp, None, boot=True)
        self.pool.submit(self.power.execute, op)
        return doc, op

    def _create(self, group, name, inp: VmInput, overrides, boot: bool):
        with self.store.transaction():
            doc = self.vms.create(
                group, name, inp, power_state="starting" if boot else "deallocated"
            )
            doc["guest"] = {"overrides": overrides} if overrides else {}
            if not boot:
                doc["provisioningState"] = "Succeeded"
                self.vms.save(doc)
                return doc, None
            op = self.operations.begin(
                "create",
                self.vms.id_of(doc),
                group=doc["resourceGroup"],
                name=doc["name"],
                transition={
                    "action": "create",
                    "interim": "starting",
                    "final": "running",
                    "guest": "boot",
                },
            )
            doc["operation"] = {"id": op["id"], "action": "create"}
            self.vms.save(doc)
        return doc, op

    def begin_action(self, group, name, action, skip_shutdown=False, run=True) -> dict | None:
        """Record `action` on the VM and run it (in the background with `run`); None when
        the VM is already where the action leads."""
        with self.store.transaction():
            doc = self.vms.get(self.scope.group(group), name)
            self._check_idle(doc, action)
            transition = plan(action, doc["powerState"], skip_shutdown)
            if transition is None:
                return None
            op = self.operations.begin(
                action,
                self.vms.id_of(doc),
                group=doc["resourceGroup"],
                name=doc["name"],
                transition=transition_dict(transition),
            )
            doc["operation"] = {"id": op["id"], "action": action}
            doc["powerState"] = transition.interim
            self.vms.save(doc)
        if run:
            self.pool.submit(self.power.execute, op)
        return op

    def begin_delete_vm(
        self, group, name, delete_disks=None, delete_nics=None, run=True
    ) -> dict | None:
        with self.store.transaction():
            doc = self.vms.find(self.scope.group(group), name)
            if doc is None:
                return None
            self._check_idle(doc, "delete")
            op = self.operations.begin(
                "delete",
                self.vms.id_of(doc),
                group=doc["resourceGroup"],
                name=doc["name"],
                deleteDisks=delete_disks,
                deleteNics=delete_nics,
            )
            doc["operation"] = {"id": op["id"], "action": "delete"}
            doc["provisioningState"] = "Deleting"
            self.vms.save(doc)
        if run:
            self.pool.submit(self.power.execute, op)
        return op

    @staticmethod
    def _check_idle(doc: dict, action: str) -> None:
        current = doc.get("operation")
        if current:
            raise OperationNotAllowed(
                f"Operation '{action}' is not allowed on VM '{doc['name']}' since the "
                f"operation '{current['action']}' is in progress."
            )
        if doc["provisioningState"] == "Deleting":
            raise OperationNotAllowed(f"The VM '{doc['name']}' is being deleted.")

    # -- control API --------------------------------------------------------------------------
    def reset(self) -> None:
        """Every VM is powered off and deleted with its disks (blobs) and NICs' attachments;
        managed disks go too. (The network resets after this.)"""
        for doc in self.vms.list():
            try:
                self.guests.power_off(key_of(doc), self.power.config(doc))
            except Exception:
                self.guests.power_off(key_of(doc))
            self.vms.remove(doc["resourceGroup"], doc["name"])
            self.guests.remove_run_dir(doc["vmId"])
        for doc in self.disks.list():
            if self.storage is not None:
                self.storage.delete(doc["blob"])
        self.store.wipe(T_VM, T_DISK)
        self.store.wipe_operations()

    def state(self) -> dict:
        running = self.guests.running()
        vms = []
        for doc in self.vms.list():
            guest = doc.get("guest") or {}
            key = key_of(doc)
            vms.append(
                {
                    "id": self.vms.id_of(doc),
                    "provisioning_state": doc["provisioningState"],
                    "power_state": doc["powerState"],
                    "size": doc["size"],
                    "guest_pid": running.get(key),
                    "guest_process": process_name(*key),
                    "boot_ok": (guest.get("boot") or {}).get("ok"),
                    "application_check_ok": (guest.get("applicationCheck") or {}).get("ok"),
                    "operation": doc.get("operation"),
                }
            )
        disks = [
            {
                "id": self.disks.id_of(doc),
                "blob": doc["blob"],
                "size_bytes": doc["sizeBytes"],
                "state": self.disks.disk_state(doc),
                "managed_by": doc.get("managedBy"),
                "source": doc["creationData"].get("sourceUri")
                or doc["creationData"].get("sourceResourceId"),
            }
            for doc in self.disks.list()
        ]
        return {
            "virtual_machines": vms,
            "disks": disks,
            "operations": self.operations.counts(),
            "autostart_done": self.autostart_done.is_set(),
        }
