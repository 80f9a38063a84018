"""ReconfigVM_Task and the device changes it shares with CreateVM_Task.

A spec is checked in full against a copy of the VM's devices before anything changes: bad
input fails the task with the fault vCenter gives and leaves the VM and its files as they were.
Supported: numCPUs, memoryMB, annotation (CPU/memory only while powered off: no hot-add);
deviceChange adding a SCSI controller, adding a disk (a new sparse file, or an existing file),
growing a disk (vcsim's capacityInKB/capacityInBytes rule; a running guest is told), removing
a disk (its files with fileOperation=destroy), adding, re-pointing or removing a NIC. Any other
field or device type answers NotSupported naming it.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

from pyVmomi import vim

from . import disks, vm_devices
from .errors import (
    InvalidArgument,
    InvalidDatastore,
    InvalidDeviceSpec,
    InvalidPowerState,
    NotSupported,
)
from .registry import Call

log = logging.getLogger(__name__)

VirtualDisk = vim.vm.device.VirtualDisk
VirtualSCSIController = vim.vm.device.VirtualSCSIController
VirtualEthernetCard = vim.vm.device.VirtualEthernetCard
ADD, EDIT, REMOVE = "add", "edit", "remove"
CREATE, DESTROY = "create", "destroy"

# ConfigSpec fields a reconfiguration may set.
RECONFIG_FIELDS = {"numCPUs", "memoryMB", "annotation", "deviceChange", "changeVersion"}


def unsupported_fields(spec, allowed: set[str]) -> list[str]:
    found = []
    for prop in spec._GetPropertyList():
        if prop.name in allowed or prop.name in ("dynamicType", "dynamicProperty"):
            continue
        value = getattr(spec, prop.name)
        if value is not None and not (isinstance(value, list) and not value):
            found.append(prop.name)
    return found


@dataclass
class DiskFileOp:
    kind: str  # create | grow | destroy
    descriptor: object  # Path
    size: int = 0
    uuid: str | None = None


@dataclass
class DeviceChanges:
    """The outcome of a deviceChange list, applied to a copy: new devices and file work."""

    devices: list
    file_ops: list[DiskFileOp] = field(default_factory=list)
    resized: list[tuple[int, int]] = field(default_factory=list)  # (disk index, new size)


class DeviceChanger:
    """Applies VirtualDeviceSpecs to a device list for a VM being created or reconfigured."""

    def __init__(self, vcenter, *, vm_name, vm_dir, datastore, vm_uuid, vm_key, os_family):
        self.vc = vcenter
        self.vm_name = vm_name
        self.vm_dir = vm_dir
        self.datastore = datastore
        self.vm_uuid = vm_uuid
        self.vm_key = vm_key
        self.os_family = os_family

    def apply(self, devices: list, changes: list) -> DeviceChanges:
        result = DeviceChanges(devices=copy.deepcopy(devices))
        temp_keys: dict[int, int] = {}
        # Controllers first, so that disks added in the same spec can name them.
        order = sorted(
            enumerate(changes or []),
            key=lambda item: 0 if isinstance(item[1].device, VirtualSCSIController) else 1,
        )
        for index, change in order:
            op = str(change.operation) if change.operation else None
            device = change.device
            if device is None:
                raise InvalidDeviceSpec(index, "no device")
            if isinstance(device, VirtualSCSIController):
                self._controller(result, index, op, device, temp_keys)
            elif isinstance(device, VirtualDisk):
                self._disk(result, index, op, change, temp_keys)
            elif isinstance(device, VirtualEthernetCard):
                self._nic(result, index, op, device)
            else:
                raise NotSupported(f"device changes of type {type(device).__name__}")
        return result

    # -- SCSI controllers ---------------------------------------------------------------------
    def _controller(self, result, index, op, device, temp_keys):
        if op != ADD:
            raise NotSupported(f"{op} of a SCSI controller")
        if not isinstance(device, vm_devices.SCSI_CONTROLLERS):
            raise NotSupported(f"SCSI controller type {type(device).__name__}")
        buses = {d.busNumber for d in result.devices if isinstance(d, VirtualSCSIController)}
        bus = device.busNumber if device.busNumber is not None else 0
        if bus in buses:
            bus = next(b for b in range(4) if b not in buses)
        new = vm_devices.scsi_controller(self.os_family, key=1000 + bus, bus=bus, cls=type(device))
        if device.sharedBus:
            new.sharedBus = device.sharedBus
        temp_keys[device.key] = new.key
        result.devices.append(new)

    # -- disks --------------------------------------------------------------------------------
    def _disk(self, result, index, op, change, temp_keys):
        device = change.device
        if op == EDIT:
            current = self._find(result.devices, device.key, VirtualDisk, index)
            position = [d.key for d in result.devices if isinstance(d, VirtualDisk)].index(
                current.key
            )
            backing = device.backing
            if (
                backing is not None
                and backing.fileName
                and (backing.fileName != current.backing.fileName)
            ):
                raise NotSupported("changing a disk's backing file")
            size = vm_devices.new_disk_size(current, device, index)
            if size is not None:
                vm_devices.set_disk_size(current, size)
                result.file_ops.append(
                    DiskFileOp("grow", self._descriptor(current), size, current.backing.uuid)
                )
                result.resized.append((position, size))
        elif op == ADD:
            self._add_disk(result, index, change, temp_keys)
        elif op == REMOVE:
            current = self._find(result.devices, device.key, VirtualDisk, index)
            result.devices.remove(current)
            if change.fileOperation == DESTROY:
                result.file_ops.append(DiskFileOp("destroy", self._descriptor(current)))
        else:
            raise InvalidDeviceSpec(index, f"unknown operation {op!r}")

    def _add_disk(self, result, index, change, temp_keys):
        device = change.device
        controller_key = temp_keys.get(device.controllerKey, device.controllerKey)
        controllers = {d.key: d for d in result.devices if isinstance(d, VirtualSCSIController)}
        controller = controllers.get(controller_key)
        if controller is None:
            raise InvalidDeviceSpec(index, f"no SCSI controller with key {device.controllerKey}")
        unit = device.unitNumber
        if unit is None or unit < 0:
            unit = vm_devices.free_scsi_unit(result.devices, controller.key)
        elif unit == 7 or any(
            d.controllerKey == controller.key and d.unitNumber == unit for d in result.devices
        ):
            raise InvalidDeviceSpec(index, f"unit {unit} of the controller is taken")
        backing = device.backing
        if backing is not None and not isinstance(
            backing, vim.vm.device.VirtualDisk.FlatVer2BackingInfo
        ):
            raise NotSupported(f"disk backing {type(backing).__name__}")
        datastore = self.datastore
        file_name = (backing.fileName or "").strip() if backing is not None else ""
        if file_name:
            ds_name, rel = disks.split_datastore_path(file_name)
            datastore = self.vc.datastore_by_name(ds_name)
            if datastore is None:
                raise InvalidDatastore(ds_name)
            if not rel:
                file_name = ""  # "[ds]" alone: the disk goes in the VM's folder there
        elif backing is not None and backing.datastore is not None:
            datastore = self.vc.datastore_by_ref(backing.datastore) or datastore
        key = 2000 + 16 * controller.busNumber + unit
        if any(d.key == key for d in result.devices):
            key = max(d.key for d in result.devices) + 1
        disk_count = len([d for d in result.devices if isinstance(d, VirtualDisk)])
        if change.fileOperation == CREATE:
            size = device.capacityInBytes or (device.capacityInKB or 0) * 1024
            if size <= 0 or size % 512:
                raise InvalidDeviceSpec(index, "a new disk needs a capacity (multiple of 512)")
            if not file_name:
                file_name = self._free_disk_name(result, datastore)
            descriptor = datastore.file(disks.split_datastore_path(file_name)[1])
            if descriptor.exists():
                raise InvalidDeviceSpec(index, f"{file_name} already exists")
            disk = vm_devices.virtual_disk(
                key=key,
                label_index=disk_count + 1,
                controller_key=controller.key,
                unit=unit,
                size=size,
                file_name=file_name,
                datastore_ref=datastore.ref,
                vm_uuid=self.vm_uuid,
                vm_key=self.vm_key,
            )
            result.file_ops.append(DiskFileOp("create", descriptor, size, disk.backing.uuid))
        elif change.fileOperation is None:
            if not file_name:
                raise InvalidDeviceSpec(index, "adding an existing disk needs backing.fileName")
            descriptor = datastore.file(disks.split_datastore_path(file_name)[1])
            flat = descriptor.with_name(disks.flat_name(descriptor.name))
            if not flat.exists():
                raise InvalidDeviceSpec(index, f"{file_name} does not exist")
            disk = vm_devices.virtual_disk(
                key=key,
                label_index=disk_count + 1,
                controller_key=controller.key,
                unit=unit,
                size=flat.stat().st_size,
                file_name=file_name,
                datastore_ref=datastore.ref,
                vm_uuid=self.vm_uuid,
                vm_key=self.vm_key,
            )
        else:
            raise NotSupported(f"fileOperation {change.fileOperation} when adding a disk")
        controller.device = sorted(set(controller.device or []) | {disk.key})
        result.devices.append(disk)

    def _free_disk_name(self, result, datastore) -> str:
        taken = {d.backing.fileName for d in result.devices if isinstance(d, VirtualDisk)}
        taken |= {op_path for op_path in (str(op.descriptor) for op in result.file_ops)}
        for n in range(64):
            rel = f"{self.vm_dir}/{disks.disk_file_name(self.vm_name, n)}"
            path = datastore.path_of(rel)
            if (
                path not in taken
                and not datastore.file(rel).exists()
                and (str(datastore.file(rel)) not in taken)
            ):
                return path
        raise InvalidArgument("deviceChange", "no free disk file name")

    def _descriptor(self, disk):
        ds_name, rel = disks.split_datastore_path(disk.backing.fileName)
        datastore = self.vc.datastore_by_name(ds_name)
        if datastore is None:
            raise InvalidDatastore(ds_name)
        return datastore.file(rel)

    # -- NICs ---------------------------------------------------------------------------------
    def _nic(self, result, index, op, device):
        if op == REMOVE:
            current = self._find(result.devices, device.key, VirtualEthernetCard, index)
            result.devices.remove(current)
            return
        network = self._network_of(device, index)
        if op == EDIT:
            current = self._find(result.devices, device.key, VirtualEthernetCard, index)
            if network is not None:
                current.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                    deviceName=network.name, network=network.ref, useAutoDetect=False
                )
                current.deviceInfo.summary = network.name
            return
        if op != ADD:
            raise InvalidDeviceSpec(index, f"unknown operation {op!r}")
        if not isinstance(device, vm_devices.NIC_TYPES):
            raise NotSupported(f"network adapter type {type(device).__name__}")
        if network is None:
            raise InvalidDeviceSpec(index, "a network adapter needs a network backing")
        cards = [d for d in result.devices if isinstance(d, VirtualEthernetCard)]
        key = 4000 + len(cards)
        while any(d.key == key for d in result.devices):
            key += 1
        manual = str(device.addressType or "").lower() == "manual"
        if manual and not device.macAddress:
            raise InvalidDeviceSpec(index, "addressType manual needs a macAddress")
        mac = device.macAddress if manual else vm_devices.mac_for(self.vm_uuid, len(cards))
        result.devices.append(
            vm_devices.nic(
                key=key,
                index=len(cards) + 1,
                network=network,
                mac=mac.lower(),
                nic_type=type(device),
                assigned=not manual,
            )
        )

    def _network_of(self, device, index):
        backing = device.backing
        if backing is None:
            return None
        if not isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
            raise NotSupported(f"network backing {type(backing).__name__}")
        network = self.vc.network_by_name(backing.deviceName)
        if network is None and backing.network is not None:
            network = self.vc.network_by_ref(backing.network)
        if network is None:
            raise InvalidDeviceSpec(index, f"no network named {backing.deviceName!r}")
        return network

    @staticmethod
    def _find(devices, key, cls, index):
        for d in devices:
            if d.key == key and isinstance(d, cls):
                return d
        raise InvalidDeviceSpec(index, f"no {cls.__name__} with key {key}")


def run_file_ops(ops: list[DiskFileOp]) -> None:
    for op in ops:
        if op.kind == "create":
            disks.create_disk(op.descriptor, op.size, op.uuid)
        elif op.kind == "grow":
            disks.grow_disk(op.descriptor, op.size, op.uuid)
        elif op.kind == "destroy":
            disks.remove_disk(op.descriptor)


def reconfig_task(vm, call: Call, spec):
    vc = vm.vcenter

    def work(task):
        with vc.registry.lock:
            bad = unsupported_fields(spec, RECONFIG_FIELDS)
            if bad:
                raise NotSupported(f"ReconfigVM_Task of {', '.join(bad)}")
            if (spec.numCPUs or spec.memoryMB) and vm.power_state != "poweredOff":
                raise InvalidPowerState(vm.power_state, "poweredOff")
            if spec.numCPUs is not None and not 1 <= spec.numCPUs <= 128:
                raise InvalidArgument("numCPUs")
            if spec.memoryMB is not None and spec.memoryMB < 4:
                raise InvalidArgument("memoryMB")
            changer = DeviceChanger(
                vc,
                vm_name=vm.name,
                vm_dir=vm.vm_dir,
                datastore=vm.datastore,
                vm_uuid=vm.uuid,
                vm_key=vm.moid.removeprefix("vm-"),
                os_family=vm.os_family,
            )
            outcome = changer.apply(vm.devices, spec.deviceChange)
            run_file_ops(outcome.file_ops)
            vm.devices = outcome.devices
            if spec.numCPUs is not None:
                vm.num_cpu = spec.numCPUs
            if spec.memoryMB is not None:
                vm.memory_mb = int(spec.memoryMB)
            if spec.annotation is not None:
                vm.annotation = spec.annotation
            vm.changed()
            for ds in vm.datastores():
                ds.refresh_usage()
            vc.events.post_vm(
                vm,
                "VmReconfiguredEvent",
                f"Reconfigured {vm.name} on {vm.host.name}",
                chain=task.chain_id,
                configSpec=spec,
            )
            running = vm.power_state == "poweredOn"
        if running:
            for position, size in outcome.resized:
                vc.guests.disk_resized(vm, position, size)

    return vc.tasks.submit(call, "ReconfigVM_Task", "VirtualMachine.reconfigure", vm, work)
