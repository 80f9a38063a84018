"""Discovery: what a vCenter holds, read through pyvmomi as the real configuration server does.

`collect_vms` reads every VM with one property-collector query over a container view (paged
with ContinueRetrievePropertiesEx). `watch` keeps a property filter on that view and waits
for changes (WaitForUpdatesEx), so the vault's protectable items follow vCenter promptly;
a periodic full read covers anything a watch could miss.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

log = logging.getLogger(__name__)

VM_PROPERTIES = [
    "name",
    "config.instanceUuid",
    "config.uuid",
    "config.guestId",
    "config.guestFullName",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "runtime.powerState",
    "guest.ipAddress",
    "guest.hostName",
    "guest.net",
]
# What a watch reacts to: cheap to compare, and covers adds, removals, power and disk changes.
WATCHED = ["name", "runtime.powerState", "config.hardware.device"]


def connect(host: str, port: int, user: str, password: str, ca_file: str):
    context = ssl.create_default_context(cafile=ca_file)
    return SmartConnect(host=host, port=port, user=user, pwd=password, sslContext=context)


def disconnect(si) -> None:
    try:
        Disconnect(si)
    except Exception:  # the session may already be gone; nothing to clean up then
        pass


def _vm_view(si):
    content = si.RetrieveContent()
    return content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)


def _filter_spec(view, paths):
    traversal = vmodl.query.PropertyCollector.TraversalSpec(
        name="view", type=vim.view.ContainerView, path="view", skip=False
    )
    return vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[
            vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traversal])
        ],
        propSet=[
            vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=paths)
        ],
    )


def collect_vms(si) -> list[dict]:
    content = si.RetrieveContent()
    view = _vm_view(si)
    try:
        collector = content.propertyCollector
        options = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=100)
        result = collector.RetrievePropertiesEx([_filter_spec(view, VM_PROPERTIES)], options)
        vms = []
        while result is not None:
            for obj in result.objects:
                vms.append(_vm(obj))
            if not result.token:
                break
            result = collector.ContinueRetrievePropertiesEx(result.token)
        return vms
    finally:
        view.DestroyView()


def _vm(obj) -> dict:
    props = {p.name: p.val for p in obj.propSet}
    instance_uuid = props.get("config.instanceUuid") or obj.obj._moId
    disks, nics = [], []
    for device in props.get("config.hardware.device") or []:
        if isinstance(device, vim.vm.device.VirtualDisk):
            backing = device.backing
            disks.append(
                {
                    "id": getattr(backing, "uuid", None) or f"{instance_uuid}-{device.key}",
                    "key": device.key,
                    "name": device.deviceInfo.label if device.deviceInfo else f"disk {device.key}",
                    "file": getattr(backing, "fileName", None),
                    "capacity": int(device.capacityInBytes or device.capacityInKB * 1024),
                }
            )
        elif isinstance(device, vim.vm.device.VirtualEthernetCard):
            nics.append(
                {
                    "mac": device.macAddress,
                    "key": device.key,
                    "network": device.deviceInfo.summary if device.deviceInfo else None,
                }
            )
    ips = []
    for net in props.get("guest.net") or []:
        ips.extend(net.ipAddress or [])
    if not ips and props.get("guest.ipAddress"):
        ips = [props["guest.ipAddress"]]
    guest_id = props.get("config.guestId") or ""
    return {
        "id": instance_uuid,
        "bios_uuid": props.get("config.uuid"),
        "moref": obj.obj._moId,
        "name": props.get("name"),
        "guest_id": guest_id,
        "os_name": props.get("config.guestFullName") or guest_id,
        "os_type": "Windows" if guest_id.lower().startswith("win") else "Linux",
        "power_state": str(props.get("runtime.powerState") or "poweredOff"),
        "hostname": props.get("guest.hostName"),
        "ip_addresses": ips,
        "cpus": props.get("config.hardware.numCPU"),
        "memory_mb": props.get("config.hardware.memoryMB"),
        "disks": sorted(disks, key=lambda d: d["key"]),
        "nics": nics,
    }


def watch(si, stop: threading.Event, on_change, max_wait_seconds: int = 5) -> None:
    """Call `on_change()` whenever a watched property of any VM changes, until `stop` is set.

    The first update set (the initial state) triggers a call too.
    """
    content = si.RetrieveContent()
    collector = content.propertyCollector.CreatePropertyCollector()
    view = _vm_view(si)
    filter_ = collector.CreateFilter(_filter_spec(view, WATCHED), partialUpdates=True)
    version = ""
    options = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=max_wait_seconds)
    try:
        while not stop.is_set():
            update = collector.WaitForUpdatesEx(version, options)
            if update is None:
                continue
            version = update.version
            on_change()
    finally:
        for cleanup in (filter_.Destroy, view.DestroyView, collector.Destroy):
            try:
                cleanup()
            except Exception:  # the session may already be gone
                pass


def shutdown_guest(si, moref: str, timeout: float) -> str:
    """Shut a VM's guest down cleanly (VMware Tools) and wait until it is powered off, as a
    planned failover does with the source. Returns the power state it found: an already
    powered-off VM is left as it is."""
    vm = vim.VirtualMachine(moref, si._stub)
    found = str(vm.runtime.powerState)
    if found == "poweredOff":
        return found
    vm.ShutdownGuest()
    deadline = time.monotonic() + timeout
    while str(vm.runtime.powerState) != "poweredOff":
        if time.monotonic() > deadline:
            raise TimeoutError(f"the VM did not power off within {timeout:g} s")
        time.sleep(0.25)  # the guest flushes and its services stop; bounded by the deadline
    return found
