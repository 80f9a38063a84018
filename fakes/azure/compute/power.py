"""What runs a VM operation: the guest effect of each transition, boot results, the view.

`VmPower` executes operations recorded by `Operations` (create, start, powerOff, deallocate,
restart, delete) against the guest runtime and moves the VM's record to the end state, in
the caller's thread (the Python API) or a worker thread (the HTTP API's long-running
operations). Each step is idempotent (booting re-adopts a guest already running, a shutdown
of a guest that is gone is done), so an operation interrupted by a restart of the ARM
process is simply run again.

It also renders what a VM shows of its guest: the instance view (`statuses` with
`PowerState/...` and the lab's `ApplicationCheck/...`, `vmAgent`, `drlabGuest`) and the
Python API's `vm_view`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from .errors import ArmError, DiskStorageUnavailable, OperationNotAllowed
from .guests import BOOT_TIMEOUT, AzureGuests, GuestDefaults
from .models import iso
from .models.virtual_machines import POWER_DISPLAY, Transition

log = logging.getLogger(__name__)


def key_of(doc: dict) -> tuple[str, str]:
    return (doc["resourceGroup"].lower(), doc["name"].lower())


def application_check(status: dict | None) -> dict:
    """The application's check at boot, as the guest reports it."""
    app = (status or {}).get("app")
    if not app:
        return {"checked": False, "ok": False, "errors": ["no journaled application in this guest"]}
    check = app.get("last_check") or {}
    return {
        "checked": bool(check),
        "ok": bool(check.get("ok")),
        "committed_seq": check.get("committed_seq"),
        "committed_txn": check.get("committed_txn"),
        "records_checked": check.get("records_checked"),
        "errors": list(check.get("errors") or []),
        "app_state": app.get("state"),
    }


class VmPower:
    def __init__(self, compute):
        self.c = compute  # the Compute root: models, network, storage, guests, operations
        self.guests: AzureGuests = compute.guests
        self.defaults: GuestDefaults = compute.defaults

    # -- guest configuration ------------------------------------------------------------------
    def _storage(self):
        if self.c.storage is None:
            raise DiskStorageUnavailable("This lab runs no disks storage account.")
        return self.c.storage

    def disk_refs(self, doc: dict) -> list:
        storage = self._storage()
        refs = []
        for i, ref in enumerate([doc["osDisk"], *doc["dataDisks"]]):
            disk = self.c.disks.by_id(ref["id"])
            label = "OS disk" if i == 0 else f"Data disk {ref['lun']}"
            refs.append(
                self.guests.disk_ref(
                    label, storage.guest_url(disk["blob"]), disk["sizeBytes"], storage.ca_cert
                )
            )
        return refs

    def identity(self, doc: dict, disks: list, overrides: dict | None = None) -> dict:
        """Who the guest is: its registry (hostname, OS family), then the caller's overrides,
        then the topology's accounts and workload."""
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        found = self.guests.read_identity(disks[0]) or {}
        family = overrides.get("os_family") or found.get("os_family")
        if not family:
            family = (doc.get("osType") or "Linux").lower()
        hostname = overrides.get("hostname") or found.get("hostname") or doc["name"]
        accounts = overrides.get("accounts") or self.defaults.accounts.get(family, {})
        workload = overrides.get("workload")
        if workload is None:
            workload = self.defaults.workloads.get(hostname.lower(), {})
        return {
            "os_family": family,
            "hostname": hostname,
            "accounts": dict(accounts),
            "workload": dict(workload),
            "has_os": bool(found),
        }

    def config(self, doc: dict):
        disks = self.disk_refs(doc)
        identity = doc["guest"].get("identity")
        if identity is None:
            identity = self.identity(doc, disks, doc["guest"].get("overrides"))
            doc = self.c.vms.update(
                doc["resourceGroup"], doc["name"], guest={**doc["guest"], "identity": identity}
            )
        network = self.network_of(doc)
        ips = []
        for nic in doc["nics"]:
            ips += self.c.network.nic_addresses(nic["id"])
        return self.guests.config(
            key=key_of(doc),
            vm_uuid=doc["vmId"],
            vm_name=doc["name"],
            identity=identity,
            disks=disks,
            ips=ips,
            network=network,
        )

    def network_of(self, doc: dict) -> dict:
        primary = next((n for n in doc["nics"] if n["primary"]), doc["nics"][0])
        return self.c.network.nic_network(primary["id"]).to_dict()

    # -- running operations -------------------------------------------------------------------
    def execute(self, op: dict) -> dict:
        """Run an operation to its end; returns the finished record (never raises)."""
        try:
            if op["action"] == "delete":
                self._delete(op)
            else:
                self._transition(op)
        except Exception as exc:
            if not isinstance(exc, OperationNotAllowed | DiskStorageUnavailable):
                log.exception("%s of %s failed", op["action"], op["resourceId"])
            self._failed(op)
            return self.c.operations.finish(op, exc)
        return self.c.operations.finish(op)

    def _failed(self, op: dict) -> None:
        doc = self.c.vms.find(op["group"], op["name"])
        if doc is None:
            return
        fields = {"operation": None}
        if op["action"] in ("create", "delete"):
            fields["provisioningState"] = "Failed"
        t = op.get("transition")
        if t and doc["powerState"] == t["interim"]:
            # What the guest is now decides: running if a guest runs, else stopped.
            running = self.guests.pid(key_of(doc)) is not None
            fields["powerState"] = "running" if running else "stopped"
        self.c.vms.update(doc["resourceGroup"], doc["name"], **fields)

    def _transition(self, op: dict) -> None:
        t = Transition(**op["transition"])
        doc = self.c.vms.get(op["group"], op["name"])
        key = key_of(doc)
        guest = dict(doc["guest"])
        if t.guest == "boot":
            guest.update(self.boot(doc))
        elif t.guest == "reboot":
            handle = self.guests.reboot(key, self.config(doc))
            guest.update(self._booted(handle))
        elif t.guest == "shutdown":
            self.guests.shutdown(key, self.config(doc))
            guest["pid"] = None
        elif t.guest == "power_off":
            self.guests.power_off(key, self.config(doc))
            guest["pid"] = None
        fields = {"powerState": t.final, "operation": None, "guest": guest}
        if op["action"] == "create":
            fields["provisioningState"] = "Succeeded"
        self.c.vms.update(doc["resourceGroup"], doc["name"], **fields)

    def boot(self, doc: dict) -> dict:
        """Boot (or re-adopt) the guest; what the VM records of it. A guest that does not
        come up (no operating system, a broken disk) is a boot result, not an error."""
        config = self.config(doc)
        fresh = self.c.vms.get(doc["resourceGroup"], doc["name"])
        guest = {"identity": fresh["guest"].get("identity")}
        try:
            handle = self.guests.boot(key_of(doc), config, timeout=self.c.boot_timeout)
        except self.guests.backend.GuestError as exc:
            log.info("%s did not boot: %s", doc["name"], exc.message)
            return {
                **guest,
                "pid": None,
                "boot": {"ok": False, "error": exc.message, "at": self.c.clock.time()},
                "applicationCheck": {
                    "checked": False,
                    "ok": False,
                    "errors": [f"the guest did not boot: {exc.message}"],
                },
            }
        return {**guest, **self._booted(handle)}

    def _booted(self, handle) -> dict:
        status = handle.status()
        return {
            "pid": handle.pid,
            "boot": {
                "ok": True,
                "error": None,
                "at": self.c.clock.time(),
                "bootCount": status.get("boot_count"),
                "previousShutdownClean": status.get("previous_shutdown_clean"),
            },
            "applicationCheck": application_check(status),
        }

    def _delete(self, op: dict) -> None:
        doc = self.c.vms.find(op["group"], op["name"])
        if doc is None:
            return
        key = key_of(doc)
        if self.c.storage is not None:
            self.guests.power_off(key, self.config(doc))  # deleting does not shut down
        else:
            self.guests.power_off(key)
        doc = self.c.vms.remove(doc["resourceGroup"], doc["name"])
        if doc is None:
            return
        delete_disks, delete_nics = op.get("deleteDisks"), op.get("deleteNics")
        for ref in [doc["osDisk"], *doc["dataDisks"]]:
            if delete_disks or (delete_disks is None and ref["deleteOption"] == "Delete"):
                disk = self.c.disks.by_id(ref["id"])
                self.c.disks.delete(disk["resourceGroup"], disk["name"])
        for ref in doc["nics"]:
            if delete_nics or (delete_nics is None and ref["deleteOption"] == "Delete"):
                nic = self.c.network.network_interfaces.by_id(ref["id"])
                self.c.network.delete_nic(nic["resourceGroup"], nic["name"])
        self.guests.remove_run_dir(doc["vmId"])

    # -- after a restart ----------------------------------------------------------------------
    def bring_back(self, doc: dict) -> None:
        """A VM recorded running: re-adopt its guest, or boot it again."""
        key = key_of(doc)
        try:
            config = self.config(doc)
            handle = self.guests.attach(key, config)
            if handle is not None:
                log.info("re-adopted the running guest of %s (pid %d)", doc["name"], handle.pid)
                guest = {**doc["guest"], "pid": handle.pid}
            else:
                guest = {**doc["guest"], **self.boot(doc)}
                log.info("powered %s back on", doc["name"])
            self.c.vms.update(doc["resourceGroup"], doc["name"], guest=guest, powerState="running")
        except Exception:
            log.exception("bringing %s back failed", doc["name"])

    # -- what a VM shows of its guest ---------------------------------------------------------
    def instance_view(self, doc: dict, status: dict | None) -> dict:
        guest = doc.get("guest") or {}
        now = iso(self.c.clock.time())
        statuses = [
            {
                "code": f"ProvisioningState/{doc['provisioningState'].lower()}",
                "level": "Error" if doc["provisioningState"] == "Failed" else "Info",
                "displayStatus": f"Provisioning {doc['provisioningState'].lower()}",
                "time": iso(guest.get("boot", {}).get("at") or doc["timeCreated"]),
            },
            {
                "code": f"PowerState/{doc['powerState']}",
                "level": "Info",
                "displayStatus": POWER_DISPLAY[doc["powerState"]],
            },
        ]
        boot = guest.get("boot")
        check = guest.get("applicationCheck")
        if boot and not boot["ok"]:
            statuses.append(
                {
                    "code": "GuestBoot/failed",
                    "level": "Error",
                    "displayStatus": "The operating system did not boot",
                    "message": boot["error"],
                }
            )
        elif check:
            statuses.append(
                {
                    "code": "ApplicationCheck/" + ("ok" if check["ok"] else "failed"),
                    "level": "Info" if check["ok"] else "Error",
                    "displayStatus": "Application data checked at boot",
                    "message": (
                        f"committed seq {check.get('committed_seq')}, "
                        f"{check.get('records_checked')} records checked"
                        if check["ok"]
                        else "; ".join(check.get("errors") or ["check failed"])
                    ),
                }
            )
        agent = (
            {
                "vmAgentVersion": "drlab-guest",
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Ready",
                        "message": "Guest Agent is running",
                        "time": now,
                    }
                ],
            }
            if status
            else {
                "vmAgentVersion": "Unknown",
                "statuses": [
                    {
                        "code": "ProvisioningState/Unavailable",
                        "level": "Warning",
                        "displayStatus": "Not Ready",
                        "message": "The guest agent is not running.",
                        "time": now,
                    }
                ],
            }
        )
        identity = guest.get("identity") or {}
        view = {
            "computerName": (status or {}).get("hostname") or identity.get("hostname"),
            "osName": (identity.get("os_family") or "").capitalize() or None,
            "hyperVGeneration": "V1",
            "vmAgent": agent,
            "disks": [
                {
                    "name": ref["name"],
                    "statuses": [
                        {
                            "code": "ProvisioningState/succeeded",
                            "level": "Info",
                            "displayStatus": "Provisioning succeeded",
                        }
                    ],
                }
                for ref in [doc["osDisk"], *doc["dataDisks"]]
            ],
            "statuses": statuses,
            "drlabGuest": self._guest_summary(doc, status),
        }
        return view

    def _guest_summary(self, doc: dict, status: dict | None) -> dict:
        guest = doc.get("guest") or {}
        try:
            network = self.network_of(doc)
        except ArmError:  # a NIC deleted under the VM: show the rest
            network = {}
        return {
            "running": status is not None,
            "pid": self.guests.pid(key_of(doc)),
            "hostname": (status or {}).get("hostname")
            or (guest.get("identity") or {}).get("hostname"),
            "bootCount": (status or {}).get("boot_count"),
            "boot": guest.get("boot"),
            "applicationCheck": guest.get("applicationCheck"),
            "network": network,
        }

    def view(self, doc: dict) -> dict:
        """The Python API's view of a VM."""
        status = self.guests.status(key_of(doc))
        guest = doc.get("guest") or {}
        try:
            network = self.network_of(doc)
        except ArmError:
            network = {}
        ips = []
        for nic in doc["nics"]:
            try:
                ips += self.c.network.nic_addresses(nic["id"])
            except ArmError:
                continue
        return {
            "id": self.c.vms.id_of(doc),
            "name": doc["name"],
            "resource_group": doc["resourceGroup"],
            "vm_id": doc["vmId"],
            "size": doc["size"],
            "provisioning_state": doc["provisioningState"],
            "power_state": doc["powerState"],
            "guest_running": status is not None,
            "guest_pid": self.guests.pid(key_of(doc)),
            "hostname": (status or {}).get("hostname")
            or (guest.get("identity") or {}).get("hostname"),
            "boot": guest.get("boot"),
            "application_check": guest.get("applicationCheck"),
            "ip": network.get("private_ip"),
            "ips": ips,
            "network": network,
            "os_disk": doc["osDisk"]["id"],
            "data_disks": [d["id"] for d in doc["dataDisks"]],
            "nics": [n["id"] for n in doc["nics"]],
            "tags": dict(doc["tags"]),
            "operation": doc.get("operation"),
        }


def transition_dict(t: Transition | None) -> dict | None:
    return asdict(t) if t is not None else None


__all__ = ["BOOT_TIMEOUT", "VmPower", "application_check", "key_of", "transition_dict"]
