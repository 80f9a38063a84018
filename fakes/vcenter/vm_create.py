"""VMs coming and going: seeded from the topology, CreateVM_Task on a VM folder, Destroy_Task.

A VM lives in `[datastore] <vm dir>/`: its `.vmx` (a small text file, as ESXi writes), and its
disks `<vm>.vmdk` + `<vm>-flat.vmdk`, `<vm>_1.vmdk` + `<vm>_1-flat.vmdk`, ... (a disk may sit
on another datastore, in a folder of the same name). Seeded VMs get uuids and MACs derived from
their names, so a lab seeds the same identities every time; created VMs get random ones.

CreateVM_Task accepts name, guestId, numCPUs, numCoresPerSocket, memoryMB, annotation,
files.vmPathName, uuid, instanceUuid, version and deviceChange (SCSI controllers, disks, NICs;
see `vm_reconfig`); any other ConfigSpec field answers NotSupported naming it.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid as uuidlib

from . import disks, vm_devices
from .errors import (
    DuplicateName,
    InvalidArgument,
    InvalidDatastore,
    InvalidDatastorePath,
    InvalidName,
    InvalidPowerState,
    NotSupported,
)
from .registry import Call
from .virtual_machine import POWERED_OFF, VirtualMachine
from .vm_reconfig import DeviceChanger, run_file_ops, unsupported_fields

log = logging.getLogger(__name__)

CREATE_FIELDS = {
    "name",
    "guestId",
    "numCPUs",
    "numCoresPerSocket",
    "memoryMB",
    "annotation",
    "files",
    "uuid",
    "instanceUuid",
    "version",
    "deviceChange",
    "changeVersion",
}
NO_WORKLOAD = {
    "churn_mb_s": 0.0,
    "io_size_kb": 8,
    "hot_fraction": 0.1,
    "hot_share": 0.8,
    "app": False,
    "app_tps": 0.0,
    "quiesce": False,
    "seed": None,
}
_NAME = re.compile(r"^[^/\\%]{1,80}$")


def write_vmx(vm: VirtualMachine) -> None:
    """The .vmx ESXi would write: enough for a person (or a script) looking at the datastore."""
    lines = [
        '.encoding = "UTF-8"',
        'config.version = "8"',
        f'virtualHW.version = "{vm_devices.HW_VERSION_NUMBER}"',
        f'displayName = "{vm.name}"',
        f'guestOS = "{vm.guest_id.removesuffix("Guest").lower()}"',
        f'numvcpus = "{vm.num_cpu}"',
        f'memSize = "{vm.memory_mb}"',
        f'uuid.bios = "{vm.uuid}"',
        f'vc.uuid = "{vm.instance_uuid}"',
    ]
    for disk in vm.disks():
        ctl = next((d for d in vm.devices if d.key == disk.controllerKey), None)
        bus = ctl.busNumber if ctl is not None else 0
        lines.append(f'scsi{bus}:{disk.unitNumber}.fileName = "{disk.backing.fileName}"')
        lines.append(f'scsi{bus}:{disk.unitNumber}.present = "TRUE"')
    for i, card in enumerate(vm.nics()):
        lines.append(f'ethernet{i}.networkName = "{card.backing.deviceName}"')
        lines.append(f'ethernet{i}.address = "{card.macAddress}"')
        lines.append(f'ethernet{i}.present = "TRUE"')
    path = vm.datastore.file(f"{vm.vm_dir}/{vm.name}.vmx")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


class VmFactory:
    def __init__(self, vcenter):
        self.vc = vcenter

    # -- seeding ------------------------------------------------------------------------------
    def seed(self, spec: dict, folder, *, dc_name: str, guest_account: dict, parse_size):
        """A VM of the topology: record, files and disks (not yet booted)."""
        vc = self.vc
        name = spec["name"]
        vm_uuid = str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, f"drlab-vm/{dc_name}/{name}"))
        instance_uuid = str(
            uuidlib.uuid5(uuidlib.NAMESPACE_DNS, f"drlab-vm-instance/{dc_name}/{name}")
        )
        host = vc.host_by_name(spec["host"])
        datastore = vc.datastore_by_name(spec["datastore"])
        moid = vc.store.next_id("vm")
        os_family = spec["os_family"]
        devices = vm_devices.default_devices(os_family)
        controller = vm_devices.scsi_controller(os_family)
        devices.append(controller)
        file_ops = []
        for i, disk_spec in enumerate(spec["disks"]):
            ds = vc.datastore_by_name(disk_spec.get("datastore") or spec["datastore"])
            size = parse_size(disk_spec["size"])
            unit = i if i < 7 else i + 1
            file_name = ds.path_of(f"{name}/{disks.disk_file_name(name, i)}")
            disk = vm_devices.virtual_disk(
                key=2000 + unit,
                label_index=i + 1,
                controller_key=controller.key,
                unit=unit,
                size=size,
                file_name=file_name,
                datastore_ref=ds.ref,
                vm_uuid=vm_uuid,
                vm_key=moid.removeprefix("vm-"),
            )
            devices.append(disk)
            file_ops.append((ds.file(f"{name}/{disks.disk_file_name(name, i)}"), size, disk))
        controller.device = [d.key for _, _, d in file_ops]
        nic_ips = {}
        for i, nic_spec in enumerate(spec["nics"]):
            network = vc.network_by_name(nic_spec["network"])
            card = vm_devices.nic(
                key=4000 + i,
                index=i + 1,
                network=network,
                mac=nic_spec.get("mac") or vm_devices.mac_for(vm_uuid, i),
                assigned=not nic_spec.get("mac"),
            )
            devices.append(card)
            nic_ips[card.key] = [nic_spec["ip"]]
        now = vc.clock.now()
        vm = VirtualMachine(
            vc.registry,
            moid,
            name,
            folder,
            uuid=vm_uuid,
            instance_uuid=instance_uuid,
            guest_id=spec["guest_id"],
            os_family=os_family,
            num_cpu=spec["cpus"],
            memory_mb=spec["memory_mb"],
            host=host,
            pool=host.parent.resource_pool,
            datastore=datastore,
            vm_dir=name,
            devices=devices,
            nic_ips=nic_ips,
            hostname=name,
            workload=spec.get("workload"),
            guest_account=spec.get("guest_account") or guest_account,
            seeded=True,
            create_date=now,
            power_state="poweredOn" if spec.get("power", "on") == "on" else "poweredOff",
        )
        for descriptor, size, disk in file_ops:
            disks.create_disk(descriptor, size, disk.backing.uuid)
        write_vmx(vm)
        return vm

    # -- CreateVM_Task ------------------------------------------------------------------------
    def create_task(self, call: Call, folder, config, pool, host=None):
        vc = self.vc

        def work(task):
            with vc.registry.lock:
                vm = self._create(call, folder, config, pool, host, task)
            return vm.ref

        return vc.tasks.submit(call, "CreateVM_Task", "Folder.createVm", folder, work)

    def _create(self, call, folder, config, pool_ref, host_ref, task):
        vc = self.vc
        bad = unsupported_fields(config, CREATE_FIELDS)
        if bad:
            raise NotSupported(f"CreateVM_Task with {', '.join(bad)}")
        name = (config.name or "").strip()
        if not _NAME.match(name):
            raise InvalidName(config.name or "")
        for child in folder.children:
            if child.name == name:
                raise DuplicateName(name, child.ref)
        pool = vc.registry.find(pool_ref, call.session.key if call.session else None)
        cluster = pool.parent
        if host_ref is not None:
            host = vc.registry.find(host_ref)
            if host not in cluster.hosts:
                raise InvalidArgument("host", "the host is not in the resource pool's cluster")
        else:
            host = min(cluster.hosts, key=lambda h: len(h.vms()))
        vm_path = config.files.vmPathName if config.files is not None else None
        if not vm_path:
            raise InvalidArgument("files.vmPathName")
        try:
            ds_name, rel = disks.split_datastore_path(vm_path)
        except ValueError:
            raise InvalidDatastorePath(vm_path) from None
        datastore = vc.datastore_by_name(ds_name)
        if datastore is None:
            raise InvalidDatastore(ds_name)
        vm_dir = rel.rsplit("/", 1)[0] if "/" in rel else (rel.removesuffix(".vmx") or name)
        if not rel or rel.endswith("/"):
            vm_dir = rel.rstrip("/") or name
        base, n = vm_dir, 1
        while datastore.file(vm_dir).exists():
            vm_dir, n = f"{base}_{n}", n + 1
        guest_id = config.guestId or "otherGuest64"
        os_family = vm_devices.os_family_of(guest_id)
        num_cpu = config.numCPUs or 1
        memory_mb = int(config.memoryMB or 1024)
        if not 1 <= num_cpu <= 128:
            raise InvalidArgument("numCPUs")
        if memory_mb < 4:
            raise InvalidArgument("memoryMB")
        moid = vc.store.next_id("vm")
        vm_uuid = config.uuid or str(uuidlib.uuid4())
        changer = DeviceChanger(
            vc,
            vm_name=name,
            vm_dir=vm_dir,
            datastore=datastore,
            vm_uuid=vm_uuid,
            vm_key=moid.removeprefix("vm-"),
            os_family=os_family,
        )
        outcome = changer.apply(vm_devices.default_devices(os_family), config.deviceChange)
        now = vc.clock.now()
        vm = VirtualMachine(
            vc.registry,
            moid,
            name,
            folder,
            uuid=vm_uuid,
            instance_uuid=config.instanceUuid or str(uuidlib.uuid4()),
            guest_id=guest_id,
            os_family=os_family,
            num_cpu=num_cpu,
            memory_mb=memory_mb,
            host=host,
            pool=pool,
            datastore=datastore,
            vm_dir=vm_dir,
            devices=outcome.devices,
            hostname=name,
            workload=dict(NO_WORKLOAD),
            guest_account=vc.guest_account_for(os_family),
            seeded=False,
            annotation=config.annotation or "",
            create_date=now,
            power_state=POWERED_OFF,
        )
        vc.events.post_vm(
            vm,
            "VmBeingCreatedEvent",
            f"Creating {name} on {host.name}",
            chain=task.chain_id,
            configSpec=config,
        )
        datastore.file(vm_dir).mkdir(parents=True, exist_ok=True)
        run_file_ops(outcome.file_ops)
        write_vmx(vm)
        vc.add_vm(vm)
        vc.events.post_vm(
            vm,
            "VmCreatedEvent",
            f"Created virtual machine {name} on {host.name}",
            chain=task.chain_id,
        )
        log.info("created VM %s (%s) in [%s] %s", name, moid, datastore.name, vm_dir)
        return vm

    # -- Destroy_Task -------------------------------------------------------------------------
    def destroy_task(self, vm: VirtualMachine, call: Call):
        vc = self.vc

        def work(task):
            with vc.registry.lock:
                if vm.power_state != POWERED_OFF:
                    raise InvalidPowerState(vm.power_state, POWERED_OFF)
                vc.events.post_vm(
                    vm,
                    "VmRemovedEvent",
                    f"Removed {vm.name} on {vm.host.name}",
                    chain=task.chain_id,
                )
                self.remove_files(vm)
                vc.remove_vm(vm)

        return vc.tasks.submit(call, "Destroy_Task", "VirtualMachine.destroy", vm, work)

    def remove_files(self, vm: VirtualMachine) -> None:
        """Delete the VM's folder and its disks on other datastores."""
        for disk in vm.disks():
            try:
                ds_name, rel = disks.split_datastore_path(disk.backing.fileName)
            except ValueError:
                continue
            ds = self.vc.datastore_by_name(ds_name)
            if ds is not None:
                descriptor = ds.file(rel)
                disks.remove_disk(descriptor)
                try:
                    descriptor.parent.rmdir()  # only if it is now empty
                except OSError:
                    pass
        shutil.rmtree(vm.datastore.file(vm.vm_dir), ignore_errors=True)
        for ds in vm.datastores():
            ds.refresh_usage()
