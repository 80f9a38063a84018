"""`drlab vm`: the lab's VMs through the vCenter, with pyvmomi, as a user's script would do it.

    drlab vm list [--json]
    drlab vm power-on VM
    drlab vm power-off [--hard] VM     clean (ShutdownGuest, then wait) or hard (PowerOffVM_Task)
    drlab vm shutdown VM               ShutdownGuest, then wait for poweredOff
    drlab vm resize-disk VM DISK SIZE  DISK: 1-based index or label ("Hard disk 2"); SIZE: 8GiB
    drlab vm verify VM                 check the application's data on the VM's disks

`verify` is a lab route of the vCenter (`POST /_lab/vms/<name>/verify`), called over HTTPS
with the lab CA; it exits non-zero when the data does not check out.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import sys
import time
from urllib.parse import urlparse

import click
import requests
from rich import box
from rich.console import Console
from rich.table import Table

from .. import launcher
from ..kit.units import parse_size
from ._common import err, friendly_errors, lab_info, out, state_dir_option

SHUTDOWN_TIMEOUT = 120.0


def _vcenter(state_dir) -> tuple[dict, dict]:
    lab = lab_info(state_dir)
    env = lab.get("env", {})
    if "DRLAB_VCENTER_URL" not in env:
        raise launcher.LabError("this lab has no vCenter (its topology has no `vcenter:`)")
    return lab, env


@contextlib.contextmanager
def _connect(state_dir):
    """A pyvmomi session on the lab's vCenter, trusting the lab CA; faults become errors."""
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vmodl

    lab, env = _vcenter(state_dir)
    url = urlparse(env["DRLAB_VCENTER_URL"])
    context = ssl.create_default_context(cafile=lab["ca_cert"])
    try:
        si = SmartConnect(
            host=url.hostname,
            port=url.port,
            user=env["DRLAB_VCENTER_USER"],
            pwd=env["DRLAB_VCENTER_PASSWORD"],
            sslContext=context,
        )
    except (OSError, vmodl.MethodFault) as exc:
        raise launcher.LabError(f"cannot connect to the vCenter at {url.netloc}: {exc}") from exc
    try:
        yield si
    except vmodl.MethodFault as fault:
        raise launcher.LabError(f"{type(fault).__name__}: {fault.msg}") from None
    finally:
        with contextlib.suppress(Exception):
            Disconnect(si)


def _all_vms(si) -> list:
    from pyVmomi import vim

    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return list(view.view)
    finally:
        view.DestroyView()


def _find(si, name: str):
    for vm in _all_vms(si):
        if vm.name == name:
            return vm
    raise launcher.LabError(f"no VM named {name!r} in the lab's vCenter (see `drlab vm list`)")


def _wait(task) -> None:
    from pyVim.task import WaitForTask

    WaitForTask(task)


def _wait_powered_off(vm, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while vm.runtime.powerState != "poweredOff":
        if time.monotonic() > deadline:
            raise launcher.LabError(f"{vm.name} did not power off within {timeout:.0f} s")
        time.sleep(0.2)


def _rows(si) -> list[dict]:
    from pyVmomi import vim, vmodl

    pc = vmodl.query.PropertyCollector
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    paths = [
        "name",
        "runtime.powerState",
        "runtime.host",
        "guest.toolsRunningStatus",
        "guest.ipAddress",
        "config.hardware.numCPU",
        "config.hardware.memoryMB",
        "config.hardware.device",
        "config.guestId",
    ]
    spec = pc.FilterSpec(
        objectSet=[
            pc.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[pc.TraversalSpec(name="view", type=vim.view.ContainerView, path="view")],
            )
        ],
        propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=paths)],
    )
    try:
        result = content.propertyCollector.RetrievePropertiesEx([spec], pc.RetrieveOptions())
        objects = list(result.objects) if result else []
        while result and result.token:
            result = content.propertyCollector.ContinueRetrievePropertiesEx(result.token)
            objects.extend(result.objects)
    finally:
        view.DestroyView()
    rows = []
    for obj in objects:
        props = {p.name: p.val for p in obj.propSet}
        disks = [
            d
            for d in props.get("config.hardware.device", [])
            if isinstance(d, vim.vm.device.VirtualDisk)
        ]
        host = props.get("runtime.host")
        rows.append(
            {
                "name": props.get("name"),
                "moid": obj.obj._moId,
                "power_state": str(props.get("runtime.powerState")),
                "tools": props.get("guest.toolsRunningStatus"),
                "ip": props.get("guest.ipAddress"),
                "host": host.name if host is not None else None,
                "guest_id": props.get("config.guestId"),
                "cpus": props.get("config.hardware.numCPU"),
                "memory_mb": props.get("config.hardware.memoryMB"),
                "disks": [
                    {
                        "label": d.deviceInfo.label,
                        "file": d.backing.fileName,
                        "capacity_bytes": d.capacityInBytes or d.capacityInKB * 1024,
                    }
                    for d in disks
                ],
            }
        )
    return sorted(rows, key=lambda r: r["name"] or "")


def _size(n: int) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} B"


@click.group("vm")
def command():
    """The lab's VMs, through its vCenter (pyvmomi): list, power, resize disks, verify data."""


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@state_dir_option
@friendly_errors
def list_vms(as_json, state_dir):
    """List every VM: power state, tools, IP, host, CPUs, memory, disks."""
    with _connect(state_dir) as si:
        rows = _rows(si)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} VM(s) in the lab's vCenter", box=box.SIMPLE_HEAD)
    for col in ("name", "power", "tools", "ip", "host", "cpu", "memory", "disks"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(
            r["name"],
            "on" if r["power_state"] == "poweredOn" else "off",
            "running" if r["tools"] == "guestToolsRunning" else "-",
            r["ip"] or "-",
            r["host"] or "-",
            str(r["cpus"]),
            _size(r["memory_mb"] * 2**20),
            " + ".join(_size(d["capacity_bytes"]) for d in r["disks"]),
        )
    # Piped output is not squeezed into 80 columns (names and IPs stay whole).
    console = out if out.is_terminal else Console(width=120)
    console.print(table)


@command.command("power-on")
@click.argument("vm_name", metavar="VM")
@state_dir_option
@friendly_errors
def power_on(vm_name, state_dir):
    """Power a VM on (PowerOnVM_Task); returns once its guest runs."""
    with _connect(state_dir) as si:
        vm = _find(si, vm_name)
        _wait(vm.PowerOnVM_Task())
        out.print(f"{vm_name} is powered on")


@command.command("power-off")
@click.option(
    "--hard", is_flag=True, help="Pull the plug (PowerOffVM_Task): the guest flushes nothing."
)
@click.option(
    "--timeout",
    default=SHUTDOWN_TIMEOUT,
    show_default=True,
    help="Seconds to wait for a clean shutdown.",
)
@click.argument("vm_name", metavar="VM")
@state_dir_option
@friendly_errors
def power_off(hard, timeout, vm_name, state_dir):
    """Power a VM off: a clean guest shutdown by default, --hard for a forced power-off."""
    with _connect(state_dir) as si:
        vm = _find(si, vm_name)
        if hard:
            _wait(vm.PowerOffVM_Task())
        else:
            vm.ShutdownGuest()
            _wait_powered_off(vm, timeout)
        out.print(f"{vm_name} is powered off" + (" (hard)" if hard else ""))


@command.command("shutdown")
@click.option(
    "--timeout",
    default=SHUTDOWN_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the VM to power off.",
)
@click.argument("vm_name", metavar="VM")
@state_dir_option
@friendly_errors
def shutdown(timeout, vm_name, state_dir):
    """Shut the guest OS down cleanly (ShutdownGuest) and wait until the VM is off."""
    with _connect(state_dir) as si:
        vm = _find(si, vm_name)
        vm.ShutdownGuest()
        _wait_powered_off(vm, timeout)
        out.print(f"{vm_name} shut down cleanly")


@command.command("resize-disk")
@click.argument("vm_name", metavar="VM")
@click.argument("disk", metavar="DISK")
@click.argument("size", metavar="SIZE")
@state_dir_option
@friendly_errors
def resize_disk(vm_name, disk, size, state_dir):
    """Grow a disk: DISK is its 1-based number or label ("Hard disk 2"), SIZE e.g. 8GiB."""
    from pyVmomi import vim

    new_size = parse_size(size)
    with _connect(state_dir) as si:
        vm = _find(si, vm_name)
        disks = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        target = None
        if disk.isdigit() and 1 <= int(disk) <= len(disks):
            target = disks[int(disk) - 1]
        else:
            target = next((d for d in disks if d.deviceInfo.label.lower() == disk.lower()), None)
        if target is None:
            labels = ", ".join(d.deviceInfo.label for d in disks)
            raise launcher.LabError(f"{vm_name} has no disk {disk!r} (it has: {labels})")
        target.capacityInKB = new_size // 1024
        target.capacityInBytes = new_size
        change = vim.vm.device.VirtualDeviceSpec(operation="edit", device=target)
        _wait(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=[change])))
        out.print(f"{vm_name}: {target.deviceInfo.label} is now {_size(new_size)}")


@command.command("verify")
@click.option("--json", "as_json", is_flag=True, help="The whole check as JSON.")
@click.argument("vm_name", metavar="VM")
@state_dir_option
@friendly_errors
def verify(as_json, vm_name, state_dir):
    """Check the application's data on a VM's disks; exits 1 when it does not check out."""
    lab, _env = _vcenter(state_dir)
    url = f"{lab['services']['vcenter']['url']}/_lab/vms/{vm_name}/verify"
    try:
        response = requests.post(url, verify=lab["ca_cert"], timeout=120)
    except requests.RequestException as exc:
        raise launcher.LabError(f"the vCenter is not reachable: {exc}") from exc
    if response.status_code == 404:
        raise launcher.LabError(f"no VM named {vm_name!r} in the lab's vCenter")
    response.raise_for_status()
    result = response.json()
    if as_json:
        click.echo(json.dumps(result, indent=2))
    elif result.get("ok"):
        out.print(
            f"{vm_name}: application data OK ({result.get('records_checked', 0)} records, "
            f"committed transaction {result.get('committed_txn', 0)})"
        )
    else:
        err.print(f"[bold red]{vm_name}: application data does NOT check out[/]")
        for line in result.get("errors", []):
            err.print(f"  - {line}", highlight=False, markup=False)
    if not result.get("ok"):
        sys.exit(1)
