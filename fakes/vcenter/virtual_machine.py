"""VirtualMachine: identity, hardware, power state and guest view of one VM, and its SOAP methods.

The VM's state is plain attributes plus its device list (pyvmomi device objects, persisted as
pyvmomi XML); `config`, `runtime`, `guest` and `summary` are built from them on read and
cached until the VM changes. What a powered-on VM runs is its guest process (`guests`); the
`guest` property reflects what that process last reported (tools, hostname, IPs).

Methods: PowerOnVM_Task, PowerOffVM_Task (hard), ResetVM_Task, ShutdownGuest, RebootGuest
(clean, through the guest), ReconfigVM_Task (`vm_reconfig`), Destroy_Task. Not emulated:
suspend, snapshots, clone, relocate/vMotion, templates, questions, console tickets; those
answer MethodNotFound.
"""

from __future__ import annotations

from datetime import datetime

from pyVmomi import vim

from . import vm_devices, vm_power, vm_reconfig
from .entity import GREEN, ManagedEntity
from .registry import Call, refs, soap_method, typed_array

GRAY = vim.ManagedEntity.Status.gray
POWERED_ON, POWERED_OFF = "poweredOn", "poweredOff"
HW_VERSION = f"vmx-{vm_devices.HW_VERSION_NUMBER}"
TOOLS_VERSION = 12352


class VirtualMachine(ManagedEntity):
    vim_type = vim.VirtualMachine
    derived = frozenset({"summary"})

    def __init__(self, registry, moid, name, folder, **state):
        super().__init__(registry, moid, name, folder)
        self.uuid: str = state["uuid"]
        self.instance_uuid: str = state["instance_uuid"]
        self.guest_id: str = state["guest_id"]
        self.os_family: str = state.get("os_family") or vm_devices.os_family_of(self.guest_id)
        self.num_cpu: int = state["num_cpu"]
        self.memory_mb: int = state["memory_mb"]
        self.host = state["host"]
        self.pool = state["pool"]
        self.datastore = state["datastore"]  # where the .vmx lives
        self.vm_dir: str = state["vm_dir"]
        self.devices: list = state["devices"]
        self.nic_ips: dict[int, list[str]] = state.get("nic_ips") or {}
        self.hostname: str = state.get("hostname") or name
        self.workload: dict | None = state.get("workload")
        self.guest_account: dict | None = state.get("guest_account")
        self.seeded: bool = state.get("seeded", False)
        self.annotation: str = state.get("annotation", "")
        self.create_date: datetime = state["create_date"]
        self.modified: datetime = state.get("modified") or self.create_date
        self.power_state: str = state.get("power_state", POWERED_OFF)
        self.boot_time: datetime | None = state.get("boot_time")
        self.clean_power_off: bool | None = state.get("clean_power_off")
        self.guest_status: dict | None = None  # what the running guest last reported
        self.committed: int | None = None  # bytes its disks really use (monitor refreshes)

    # -- relations ----------------------------------------------------------------------------
    @property
    def vcenter(self):
        return self.registry.vcenter

    def disks(self) -> list:
        return [d for d in self.devices if isinstance(d, vim.vm.device.VirtualDisk)]

    def nics(self) -> list:
        return [d for d in self.devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]

    def datastores(self) -> list:
        found = [self.datastore]
        for disk in self.disks():
            ds = self.vcenter.datastore_by_ref(disk.backing.datastore)
            if ds is not None and ds not in found:
                found.append(ds)
        return found

    def networks(self) -> list:
        found = []
        for card in self.nics():
            net = self.vcenter.network_by_name(getattr(card.backing, "deviceName", None))
            if net is not None and net not in found:
                found.append(net)
        return found

    def vmx_path(self) -> str:
        return self.datastore.path_of(f"{self.vm_dir}/{self.name}.vmx")

    def ip_addresses(self) -> list[str]:
        return [ip for card in self.nics() for ip in self.nic_ips.get(card.key, [])]

    @property
    def tools_running(self) -> bool:
        status = self.guest_status or {}
        return self.power_state == POWERED_ON and status.get("tools") == "guestToolsRunning"

    def changed(self, *props: str) -> None:
        """Record a change (of the named properties; none named: a reconfiguration, which
        moves config.modified and changeVersion), persist it, wake property waiters."""
        if not props:
            self.modified = self.vcenter.clock.now()
        self.touch(*props)
        self.vcenter.store.save_vm(self)

    def disk_files(self, disk) -> tuple:
        """(descriptor, flat extent) paths of one of this VM's disks."""
        return self.vcenter.disk_files(disk)

    # -- properties ---------------------------------------------------------------------------
    def prop_config(self):
        version = str(int(self.modified.timestamp() * 1_000_000))
        ds_urls = [
            vim.vm.ConfigInfo.DatastoreUrlPair(name=ds.name, url=f"/vmfs/volumes/{ds.volume}")
            for ds in self.datastores()
        ]
        for card in self.nics():
            card.connectable.connected = self.power_state == POWERED_ON
        return vim.vm.ConfigInfo(
            changeVersion=version,
            modified=self.modified,
            name=self.name,
            guestFullName=vm_devices.guest_full_name(self.guest_id),
            version=HW_VERSION,
            uuid=self.uuid,
            createDate=self.create_date,
            instanceUuid=self.instance_uuid,
            template=False,
            guestId=self.guest_id,
            alternateGuestName="",
            annotation=self.annotation,
            files=vim.vm.FileInfo(
                vmPathName=self.vmx_path(),
                snapshotDirectory=self.datastore.path_of(self.vm_dir + "/"),
                suspendDirectory=self.datastore.path_of(self.vm_dir + "/"),
                logDirectory=self.datastore.path_of(self.vm_dir + "/"),
            ),
            tools=vim.vm.ToolsConfigInfo(
                toolsVersion=TOOLS_VERSION,
                toolsInstallType=self._tools_install_type(),
                toolsUpgradePolicy="manual",
            ),
            flags=vim.vm.FlagInfo(),
            defaultPowerOps=vim.vm.DefaultPowerOpInfo(),
            hardware=vim.vm.VirtualHardware(
                numCPU=self.num_cpu,
                numCoresPerSocket=1,
                memoryMB=self.memory_mb,
                device=vim.vm.device.VirtualDevice.Array(self.devices),
            ),
            extraConfig=vim.option.OptionValue.Array(
                [vim.option.OptionValue(key="guestinfo.drlab.hostname", value=self.hostname)]
            ),
            datastoreUrl=vim.vm.ConfigInfo.DatastoreUrlPair.Array(ds_urls),
            changeTrackingEnabled=False,
            firmware="efi" if self.os_family == "windows" else "bios",
        )

    def _tools_install_type(self) -> str:
        return "guestToolsTypeMSI" if self.os_family == "windows" else "guestToolsTypeOpenVMTools"

    def runtime(self) -> vim.vm.RuntimeInfo:
        on = self.power_state == POWERED_ON
        return vim.vm.RuntimeInfo(
            host=self.host.ref,
            connectionState=vim.VirtualMachine.ConnectionState.connected,
            powerState=vim.VirtualMachine.PowerState(self.power_state),
            faultToleranceState=vim.VirtualMachine.FaultToleranceState.notConfigured,
            toolsInstallerMounted=False,
            bootTime=self.boot_time if on else None,
            suspendInterval=0,
            maxCpuUsage=self.num_cpu * 2000 if on else None,
            maxMemoryUsage=self.memory_mb if on else None,
            numMksConnections=0,
            recordReplayState=vim.VirtualMachine.RecordReplayState.inactive,
            cleanPowerOff=None if on else self.clean_power_off,
            onlineStandby=False,
            consolidationNeeded=False,
            paused=False,
            snapshotInBackground=False,
            suspendedToMemory=False,
        )

    def prop_runtime(self):
        return self.runtime()

    def tools_state(self) -> tuple[str, vim.vm.GuestInfo.ToolsStatus]:
        if self.tools_running:
            return "guestToolsRunning", vim.vm.GuestInfo.ToolsStatus.toolsOk
        return "guestToolsNotRunning", vim.vm.GuestInfo.ToolsStatus.toolsNotRunning

    def prop_guest(self):
        running, tools_status = self.tools_state()
        family = "windowsGuest" if self.os_family == "windows" else "linuxGuest"
        info = vim.vm.GuestInfo(
            toolsStatus=tools_status,
            toolsVersionStatus="guestToolsCurrent",
            toolsVersionStatus2="guestToolsCurrent",
            toolsRunningStatus=running,
            toolsVersion=str(TOOLS_VERSION),
            toolsInstallType=self._tools_install_type(),
            guestState="running" if self.tools_running else "notRunning",
            guestOperationsReady=self.tools_running,
            interactiveGuestOperationsReady=False,
            guestStateChangeSupported=True,
            hwVersion=HW_VERSION,
            net=vim.vm.GuestInfo.NicInfo.Array(),
        )
        if self.tools_running:
            status = self.guest_status or {}
            ips = list(status.get("ip_addresses") or self.ip_addresses())
            info.guestId = self.guest_id
            info.guestFamily = family
            info.guestFullName = vm_devices.guest_full_name(self.guest_id)
            info.hostName = status.get("hostname") or self.hostname
            info.ipAddress = ips[0] if ips else None
            info.net = vim.vm.GuestInfo.NicInfo.Array(
                [
                    vim.vm.GuestInfo.NicInfo(
                        network=card.backing.deviceName,
                        ipAddress=typed_array(
                            str, [ip for ip in self.nic_ips.get(card.key, []) if ip in ips]
                        ),
                        macAddress=card.macAddress,
                        connected=True,
                        deviceConfigId=card.key,
                    )
                    for card in self.nics()
                ]
            )
        return info

    def prop_guestHeartbeatStatus(self):
        return GREEN if self.tools_running else GRAY

    def prop_summary(self):
        guest = self.read("guest")
        disks = self.disks()
        if self.committed is None:
            self.committed = self.vcenter.vm_committed_bytes(self)
        committed = self.committed
        provisioned = sum(vm_devices.disk_size(d) for d in disks)
        return vim.vm.Summary(
            vm=self.ref,
            runtime=self.runtime(),
            guest=vim.vm.Summary.GuestSummary(
                guestId=self.guest_id,
                guestFullName=vm_devices.guest_full_name(self.guest_id),
                toolsStatus=guest.toolsStatus,
                toolsVersionStatus=guest.toolsVersionStatus,
                toolsVersionStatus2=guest.toolsVersionStatus2,
                toolsRunningStatus=guest.toolsRunningStatus,
                hostName=guest.hostName,
                ipAddress=guest.ipAddress,
                hwVersion=HW_VERSION,
            ),
            config=vim.vm.Summary.ConfigSummary(
                name=self.name,
                template=False,
                vmPathName=self.vmx_path(),
                memorySizeMB=self.memory_mb,
                cpuReservation=0,
                memoryReservation=0,
                numCpu=self.num_cpu,
                numEthernetCards=len(self.nics()),
                numVirtualDisks=len(disks),
                uuid=self.uuid,
                instanceUuid=self.instance_uuid,
                guestId=self.guest_id,
                guestFullName=vm_devices.guest_full_name(self.guest_id),
                annotation=self.annotation,
                installBootRequired=False,
                tpmPresent=False,
                numVmiopBackings=0,
                hwVersion=HW_VERSION,
            ),
            storage=vim.vm.Summary.StorageSummary(
                committed=committed,
                uncommitted=max(0, provisioned - committed),
                unshared=committed,
                timestamp=self.vcenter.clock.now(),
            ),
            quickStats=vim.vm.Summary.QuickStats(
                overallCpuUsage=0,
                guestMemoryUsage=0,
                hostMemoryUsage=0,
                guestHeartbeatStatus=self.prop_guestHeartbeatStatus(),
                uptimeSeconds=None,
            ),
            overallStatus=GREEN,
        )

    def prop_datastore(self):
        return refs(vim.Datastore, self.datastores())

    def prop_network(self):
        return refs(vim.Network, self.networks())

    def prop_resourcePool(self):
        return self.pool.ref

    def prop_rootSnapshot(self):
        return refs(vim.vm.Snapshot, [])

    # -- methods ------------------------------------------------------------------------------
    @soap_method("PowerOnVM_Task")
    def power_on_task(self, call: Call, host=None):
        return vm_power.power_on_task(self, call)

    @soap_method("PowerOffVM_Task")
    def power_off_task(self, call: Call):
        return vm_power.power_off_task(self, call)

    @soap_method("ResetVM_Task")
    def reset_task(self, call: Call):
        return vm_power.reset_task(self, call)

    @soap_method("ShutdownGuest")
    def shutdown_guest(self, call: Call):
        vm_power.shutdown_guest(self, call)

    @soap_method("RebootGuest")
    def reboot_guest(self, call: Call):
        vm_power.reboot_guest(self, call)

    @soap_method("ReconfigVM_Task")
    def reconfig_task(self, call: Call, spec):
        return vm_reconfig.reconfig_task(self, call, spec)

    @soap_method("Destroy_Task")
    def destroy_task(self, call: Call):
        return call.vcenter.vm_factory.destroy_task(self, call)

    # -- persistence --------------------------------------------------------------------------
    def to_record(self, version: str) -> dict:
        return {
            "moid": self.moid,
            "name": self.name,
            "folder": self.parent.moid,
            "uuid": self.uuid,
            "instance_uuid": self.instance_uuid,
            "guest_id": self.guest_id,
            "os_family": self.os_family,
            "num_cpu": self.num_cpu,
            "memory_mb": self.memory_mb,
            "host": self.host.moid,
            "pool": self.pool.moid,
            "datastore": self.datastore.moid,
            "vm_dir": self.vm_dir,
            "devices": [vm_devices.device_to_xml(d, version) for d in self.devices],
            "nic_ips": {str(k): v for k, v in self.nic_ips.items()},
            "hostname": self.hostname,
            "workload": self.workload,
            "guest_account": self.guest_account,
            "seeded": self.seeded,
            "annotation": self.annotation,
            "create_date": self.create_date.timestamp(),
            "modified": self.modified.timestamp(),
            "power_state": self.power_state,
            "boot_time": self.boot_time.timestamp() if self.boot_time else None,
            "clean_power_off": self.clean_power_off,
        }
