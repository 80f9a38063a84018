"""A VM's virtual hardware as pyvmomi device objects: the default devices every VM has, SCSI
controllers, virtual disks backed by datastore files, NICs with MACs; and the disk-resize rule.

Keys follow vCenter's numbering (PCI 100, IDE 200/201, PS/2 300, SIO 400, video 500,
keyboard 600, mouse 700, SCSI controllers 1000+, disks 2000 + 16*bus + unit, CD-ROM 3000,
NICs 4000+, VMCI 12000), so scripts that look devices up by key behave as on a real VM.
"""

from __future__ import annotations

import hashlib
import uuid

from pyVmomi import SoapAdapter, vim
from pyVmomi.VmomiSupport import Object

from .errors import InvalidDeviceOperation

VirtualDevice = vim.vm.device.VirtualDevice
HW_VERSION_NUMBER = 19

GUEST_FULL_NAMES = {
    "windows2019srv_64Guest": "Microsoft Windows Server 2019 (64-bit)",
    "windows2019srvNext_64Guest": "Microsoft Windows Server 2022 (64-bit)",
    "windows2022srvNext_64Guest": "Microsoft Windows Server 2025 (64-bit)",
    "windows9Server64Guest": "Microsoft Windows Server 2016 or later (64-bit)",
    "windows9_64Guest": "Microsoft Windows 10 (64-bit)",
    "windows11_64Guest": "Microsoft Windows 11 (64-bit)",
    "rhel7_64Guest": "Red Hat Enterprise Linux 7 (64-bit)",
    "rhel8_64Guest": "Red Hat Enterprise Linux 8 (64-bit)",
    "rhel9_64Guest": "Red Hat Enterprise Linux 9 (64-bit)",
    "centos8_64Guest": "CentOS 8 (64-bit)",
    "ubuntu64Guest": "Ubuntu Linux (64-bit)",
    "sles15_64Guest": "SUSE Linux Enterprise 15 (64-bit)",
    "debian11_64Guest": "Debian GNU/Linux 11 (64-bit)",
    "otherLinux64Guest": "Other Linux (64-bit)",
    "otherGuest64": "Other (64-bit)",
}

SCSI_CONTROLLERS = (
    vim.vm.device.ParaVirtualSCSIController,
    vim.vm.device.VirtualLsiLogicSASController,
    vim.vm.device.VirtualLsiLogicController,
    vim.vm.device.VirtualBusLogicController,
)
NIC_TYPES = (
    vim.vm.device.VirtualVmxnet3,
    vim.vm.device.VirtualE1000,
    vim.vm.device.VirtualE1000e,
    vim.vm.device.VirtualVmxnet2,
    vim.vm.device.VirtualPCNet32,
)
NIC_SUMMARY = {
    "VirtualVmxnet3": "VMXNET 3",
    "VirtualE1000": "E1000",
    "VirtualE1000e": "E1000E",
}


def guest_full_name(guest_id: str) -> str:
    return GUEST_FULL_NAMES.get(guest_id, guest_id)


def os_family_of(guest_id: str) -> str:
    return "windows" if guest_id.lower().startswith("win") else "linux"


def _describe(label: str, summary: str) -> vim.Description:
    return vim.Description(label=label, summary=summary)


def default_devices(os_family: str) -> list:
    """What every VM has besides its disks and NICs: buses, input, video, VMCI, a CD-ROM."""
    return [
        vim.vm.device.VirtualIDEController(
            key=200, deviceInfo=_describe("IDE 0", "IDE 0"), busNumber=0, device=[3000]
        ),
        vim.vm.device.VirtualIDEController(
            key=201, deviceInfo=_describe("IDE 1", "IDE 1"), busNumber=1
        ),
        vim.vm.device.VirtualPS2Controller(
            key=300,
            deviceInfo=_describe("PS2 controller 0", "PS2 controller 0"),
            busNumber=0,
            device=[600, 700],
        ),
        vim.vm.device.VirtualPCIController(
            key=100,
            deviceInfo=_describe("PCI controller 0", "PCI controller 0"),
            busNumber=0,
            device=[500, 12000, 1000, 4000],
        ),
        vim.vm.device.VirtualSIOController(
            key=400, deviceInfo=_describe("SIO controller 0", "SIO controller 0"), busNumber=0
        ),
        vim.vm.device.VirtualKeyboard(
            key=600, deviceInfo=_describe("Keyboard", "Keyboard"), controllerKey=300, unitNumber=0
        ),
        vim.vm.device.VirtualPointingDevice(
            key=700,
            deviceInfo=_describe("Pointing device", "Pointing device; Device"),
            backing=vim.vm.device.VirtualPointingDevice.DeviceBackingInfo(
                deviceName="", useAutoDetect=False, hostPointingDevice="autodetect"
            ),
            controllerKey=300,
            unitNumber=1,
        ),
        vim.vm.device.VirtualVideoCard(
            key=500,
            deviceInfo=_describe("Video card ", "Video card"),
            controllerKey=100,
            unitNumber=0,
            videoRamSizeInKB=8192,
            numDisplays=1,
        ),
        vim.vm.device.VirtualVMCIDevice(
            key=12000,
            deviceInfo=_describe(
                "VMCI device",
                "Device on the virtual machine PCI bus that provides support for "
                "the virtual machine communication interface",
            ),
            controllerKey=100,
            unitNumber=17,
            id=-1,
        ),
        vim.vm.device.VirtualCdrom(
            key=3000,
            deviceInfo=_describe("CD/DVD drive 1", "Remote device"),
            backing=vim.vm.device.VirtualCdrom.RemotePassthroughBackingInfo(
                deviceName="", useAutoDetect=False, exclusive=False
            ),
            connectable=vim.vm.device.VirtualDevice.ConnectInfo(
                startConnected=False, allowGuestControl=True, connected=False, status="ok"
            ),
            controllerKey=200,
            unitNumber=0,
        ),
    ]


def scsi_controller(os_family: str, key: int = 1000, bus: int = 0, cls=None):
    if cls is None:
        cls = (
            vim.vm.device.VirtualLsiLogicSASController
            if os_family == "windows"
            else (vim.vm.device.ParaVirtualSCSIController)
        )
    return cls(
        key=key,
        deviceInfo=_describe(f"SCSI controller {bus}", controller_summary(cls)),
        controllerKey=100,
        unitNumber=3 + bus,
        busNumber=bus,
        hotAddRemove=True,
        sharedBus=vim.vm.device.VirtualSCSIController.Sharing.noSharing,
        scsiCtlrUnitNumber=7,
    )


def controller_summary(cls) -> str:
    return {
        vim.vm.device.ParaVirtualSCSIController: "VMware paravirtual SCSI",
        vim.vm.device.VirtualLsiLogicSASController: "LSI Logic SAS",
        vim.vm.device.VirtualLsiLogicController: "LSI Logic",
        vim.vm.device.VirtualBusLogicController: "BusLogic",
    }.get(cls, "SCSI controller")


def disk_uuid(vm_uuid: str, key: int) -> str:
    digest = hashlib.sha256(f"{vm_uuid}/{key}".encode()).hexdigest()
    return str(uuid.UUID("6000c29" + digest[:25]))


def virtual_disk(
    *,
    key: int,
    label_index: int,
    controller_key: int,
    unit: int,
    size: int,
    file_name: str,
    datastore_ref,
    vm_uuid: str,
    vm_key: str,
) -> vim.vm.device.VirtualDisk:
    disk = vim.vm.device.VirtualDisk(
        key=key,
        deviceInfo=_describe(f"Hard disk {label_index}", ""),
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName=file_name,
            datastore=datastore_ref,
            diskMode="persistent",
            thinProvisioned=True,
            uuid=disk_uuid(vm_uuid, key),
        ),
        controllerKey=controller_key,
        unitNumber=unit,
        capacityInKB=size // 1024,
        capacityInBytes=size,
        diskObjectId=f"{vm_key}-{key}",
    )
    set_disk_size(disk, size)
    return disk


def set_disk_size(disk, size: int) -> None:
    disk.capacityInKB = size // 1024
    disk.capacityInBytes = size
    disk.deviceInfo.summary = f"{size // 1024:,} KB"


def disk_size(disk) -> int:
    return disk.capacityInBytes if disk.capacityInBytes else disk.capacityInKB * 1024


def mac_for(vm_uuid: str, index: int) -> str:
    """A stable vCenter-generated MAC (00:50:56:80-bf:xx:xx) for a VM's NIC number `index`."""
    digest = hashlib.sha256(f"{vm_uuid}/nic{index}".encode()).digest()
    return f"00:50:56:{0x80 | (digest[0] & 0x3F):02x}:{digest[1]:02x}:{digest[2]:02x}"


def nic(
    *,
    key: int,
    index: int,
    network,
    mac: str,
    nic_type=vim.vm.device.VirtualVmxnet3,
    assigned: bool = True,
    connected: bool = False,
):
    device = nic_type(
        key=key,
        deviceInfo=_describe(f"Network adapter {index}", network.name),
        backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
            deviceName=network.name, network=network.ref, useAutoDetect=False
        ),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(
            startConnected=True,
            allowGuestControl=True,
            connected=connected,
            status="ok",
        ),
        controllerKey=100,
        unitNumber=7 + index - 1,
        addressType="assigned" if assigned else "manual",
        macAddress=mac,
        wakeOnLanEnabled=True,
    )
    return device


def free_scsi_unit(devices: list, controller_key: int) -> int:
    used = {d.unitNumber for d in devices if d.controllerKey == controller_key}
    for unit in range(16):
        if unit != 7 and unit not in used:  # unit 7 is the controller itself
            return unit
    raise ValueError("the SCSI controller has no free unit")


def new_disk_size(old, requested, index: int) -> int | None:
    """The size a disk edit asks for, by vcsim's rule; None when the size does not change.

    Whichever of capacityInKB / capacityInBytes the client changed wins (the common idiom
    changes KB and sends the old bytes back); both changed but disagreeing, or a shrink, is
    InvalidDeviceOperation.
    """
    old_bytes = disk_size(old)
    old_kb = old.capacityInKB
    kb, nbytes = requested.capacityInKB, requested.capacityInBytes
    kb_changed = kb is not None and kb != old_kb
    bytes_changed = nbytes is not None and nbytes != old_bytes
    if kb_changed and bytes_changed:
        if kb * 1024 != nbytes:
            raise InvalidDeviceOperation(
                index, "capacityInKB and capacityInBytes disagree", op="edit"
            )
        size = nbytes
    elif bytes_changed:
        size = nbytes
    elif kb_changed:
        size = kb * 1024
    else:
        return None
    if size < old_bytes:
        raise InvalidDeviceOperation(index, "a virtual disk cannot shrink", op="edit")
    if size % 512:
        raise InvalidDeviceOperation(index, "disk size must be a multiple of 512 bytes", op="edit")
    return size


# -- persistence: devices as pyvmomi XML ------------------------------------------------------
def device_to_xml(device, version: str) -> str:
    info = Object(name="device", type=VirtualDevice, version=version, flags=0)
    return SoapAdapter.SerializeToStr(device, info, version)


def device_from_xml(xml: str):
    return SoapAdapter.Deserialize(xml, VirtualDevice)
