"""replicationvCenters: vCenter servers a configuration server discovers VMs from.

Adding one (`PUT replicationvCenters/{name}`: ipAddress, port, processServerId,
runAsAccountId) runs the "Add vCenter server" job, whose discovery task is a work item for the
configuration server: it connects to the vCenter (pyvmomi, with the credentials of the run-as
account it holds), and pushes the inventory over the provider channel. discoveryStatus goes
Pending -> Completed (or Failed with the configuration server's error).

Not emulated: update (PATCH) and removal of a vCenter.
"""

from __future__ import annotations

import uuid

from .. import ids
from ..errors import FabricNotRegistered, InvalidInput
from .common import compact, health_error, iso
from .fabrics import process_servers
from .jobs import JobKind, TaskSpec


def check_add(vault, fabric: dict, name: str, body) -> dict:
    if fabric["kind"] != "VMware":
        raise FabricNotRegistered(
            f"The fabric '{fabric['name']}' is not a configuration server: vCenter servers are "
            "added to a VMware fabric."
        )
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise InvalidInput('The request body must be {"properties": {"ipAddress": ..., ...}}.')
    ip = props.get("ipAddress")
    if not isinstance(ip, str) or not ip:
        raise InvalidInput("'properties.ipAddress' (the vCenter server's address) is required.")
    port = str(props.get("port") or "443")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"'properties.port' must be a TCP port, not '{port}'.")
    known = process_servers(fabric)
    ps = props.get("processServerId")
    if ps is None:
        if not known:
            raise InvalidInput(
                "'properties.processServerId' is required: the configuration server has not "
                "reported any process server yet."
            )
        ps = next(iter(known.values()))["id"]
    elif ps.lower() not in known:
        raise InvalidInput(
            f"The process server '{ps}' is not known to the configuration server "
            f"'{fabric.get('hostName')}' "
            f"(known: {', '.join(p['id'] for p in known.values()) or 'none'})."
        )
    accounts = {a["accountId"] for a in (fabric.get("heartbeat") or {}).get("runAsAccounts", [])}
    run_as = props.get("runAsAccountId")
    if run_as is not None and accounts and run_as not in accounts:
        raise InvalidInput(
            f"The run-as account '{run_as}' is not an account of the configuration server "
            f"(accounts: {', '.join(sorted(accounts))})."
        )
    return {
        "fabric": fabric["name"],
        "vcenter": name,
        "friendlyName": props.get("friendlyName") or name,
        "ipAddress": ip,
        "port": port,
        "processServerId": ps,
        "runAsAccountId": run_as,
    }


def _on_create(vault, job, db) -> None:
    inp = job["input"]
    doc = vault.store.get("vcenters", inp["fabric"], inp["vcenter"]) or {
        "name": inp["vcenter"],
        "fabric": inp["fabric"],
        "internalId": str(uuid.uuid4()),
        "infrastructureId": None,
        "lastHeartbeat": None,
    }
    doc.update(
        friendlyName=inp["friendlyName"],
        ipAddress=inp["ipAddress"],
        port=inp["port"],
        processServerId=inp["processServerId"],
        runAsAccountId=inp.get("runAsAccountId"),
        discoveryStatus="Pending",
        healthErrors=[],
    )
    vault.store.put(db, "vcenters", (inp["fabric"], inp["vcenter"]), doc)


def _check_fabric(vault, job, db) -> None:
    fabric = vault.store.get("fabrics", job["input"]["fabric"])
    if fabric is None or fabric["kind"] != "VMware":
        raise FabricNotRegistered(
            f"The configuration server '{job['input']['fabric']}' is no longer registered."
        )


def _payload(vault, job, kind) -> dict:
    inp = job["input"]
    return compact(
        {
            "vCenterName": inp["vcenter"],
            "friendlyName": inp["friendlyName"],
            "ipAddress": inp["ipAddress"],
            "port": inp["port"],
            "processServerId": inp["processServerId"],
            "runAsAccountId": inp.get("runAsAccountId"),
        }
    )


def _on_discovered(vault, job, item, result, db) -> None:
    inp = job["input"]
    doc = vault.store.get("vcenters", inp["fabric"], inp["vcenter"])
    if doc is None:
        return
    doc["discoveryStatus"] = "Completed"
    doc["lastHeartbeat"] = vault.clock.time()
    doc["infrastructureId"] = result.get("infrastructureId") or doc.get("infrastructureId")
    if result.get("internalId"):
        doc["internalId"] = result["internalId"]
    vault.store.put(db, "vcenters", (inp["fabric"], inp["vcenter"]), doc)


def _finish(vault, job, db) -> None:
    """Nothing left to do in the vault: the inventory arrives over the provider channel."""


def _on_failed(vault, job, db) -> None:
    inp = job["input"]
    doc = vault.store.get("vcenters", inp["fabric"], inp["vcenter"])
    if doc is None:
        return
    doc["discoveryStatus"] = "Failed"
    errors = job.get("errors") or []
    if errors:
        s = errors[0].get("serviceErrorDetails", {})
        doc["healthErrors"] = [
            health_error(
                s.get("code", "VCenterDiscoveryFailed"),
                s.get("message", ""),
                created=vault.clock.time(),
                category="FabricInfrastructure",
            )
        ]
    vault.store.put(db, "vcenters", (inp["fabric"], inp["vcenter"]), doc)


ADD_VCENTER = JobKind(
    name="AddVCenter",
    scenario="AddVCenter",
    friendly_name="Add vCenter server",
    target_type="VCenter",
    tasks=(
        TaskSpec("PrerequisitesCheckTask", "Prerequisites check", run=_check_fabric),
        TaskSpec(
            "DiscoverVCenterTask",
            "Discovering the vCenter server",
            runner="provider",
            work_item="AddVCenter",
        ),
        TaskSpec("UpdateVCenterTask", "Updating the vCenter server details", run=_finish),
    ),
    on_create=_on_create,
    on_failed=_on_failed,
    work_item_payload=_payload,
    on_work_item_succeeded=_on_discovered,
    cancellable=True,
)


def vcenter_json(vault, doc: dict) -> dict:
    props = compact(
        {
            "friendlyName": doc["friendlyName"],
            "internalId": doc.get("internalId"),
            "lastHeartbeat": iso(doc.get("lastHeartbeat")),
            "discoveryStatus": doc.get("discoveryStatus"),
            "processServerId": doc.get("processServerId"),
            "ipAddress": doc.get("ipAddress"),
            "infrastructureId": doc.get("infrastructureId"),
            "port": doc.get("port"),
            "runAsAccountId": doc.get("runAsAccountId"),
            "fabricArmResourceName": doc["fabric"],
            "healthErrors": doc.get("healthErrors", []),
        }
    )
    return {
        "id": vault.scope.vcenter(doc["fabric"], doc["name"]),
        "name": doc["name"],
        "type": ids.T_VCENTER,
        "location": vault.scope.location,
        "properties": props,
    }
