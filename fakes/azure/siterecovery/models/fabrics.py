"""replicationFabrics: the configuration server (VMware) and the seeded "Microsoft Azure" fabric.

A configuration server registers itself with the vault's registration key
(`PUT replicationFabrics/{name}` with customDetails `{"instanceType": "VMware",
"registrationKey", "hostName", "ipAddress", "agentVersion"}`); the RegisterDra job creates
the fabric, its Recovery Services provider and its protection container. The fabric's
`VMwareDetails` (process servers, master targets, run-as accounts, loads) come from the
configuration server's heartbeats (`apply_heartbeat`); with no heartbeat for 15 minutes of
lab time the servers show Critical.

Not emulated: fabric removal, purge, consistency checks, gateway re-association, certificate
renewal, migration to AAD, other fabric types (Hyper-V, VMM, InMageRcm, VMwareV2).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

from .. import ids
from ..errors import InvalidInput, InvalidRegistrationKey, ProviderNotEmulated
from . import events
from .common import AZURE_FRIENDLY_NAME, HEARTBEAT_CRITICAL_SECONDS, compact, health_error, iso
from .jobs import JobKind, TaskSpec

HEALTH = ("Normal", "Warning", "Critical")
STATUS_COLOUR = {"Normal": "Green", "Warning": "Yellow", "Critical": "Red"}


# -- names ------------------------------------------------------------------------------------
def azure_fabric_name(scope: ids.VaultScope) -> str:
    """A 64-hex name, as the real service names the Azure fabric of a region."""
    seed = f"{scope.subscription_id}/{scope.vault}/Azure/{scope.location}".lower()
    return hashlib.sha256(seed.encode()).hexdigest()


def azure_container_name(scope: ids.VaultScope) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope.id}/azure-container".lower()))


def provider_id_of(fabric: str) -> str:
    """The Recovery Services provider (DRA) id of a configuration server's fabric."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"drlab-provider:{fabric.lower()}"))


def container_name_of(fabric: str) -> str:
    return f"cloud_{provider_id_of(fabric)}"


# -- seeding ----------------------------------------------------------------------------------
def seed_azure_fabric(vault, db) -> None:
    scope = vault.scope
    name, container = azure_fabric_name(scope), azure_container_name(scope)
    if vault.store.get("fabrics", name) is None:
        doc = {
            "name": name,
            "kind": "Azure",
            "friendlyName": AZURE_FRIENDLY_NAME,
            "location": scope.location,
            "internalIdentifier": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        }
        vault.store.put(db, "fabrics", (name,), doc, kind="Azure")
    if vault.store.get("containers", name, container) is None:
        doc = {
            "name": container,
            "fabric": name,
            "friendlyName": AZURE_FRIENDLY_NAME,
            "fabricType": "Azure",
            "role": "Recovery",
        }
        vault.store.put(db, "containers", (name, container), doc)


# -- registration -----------------------------------------------------------------------------
def check_registration(vault, fabric_name: str, body) -> dict:
    """The registration input, or an error (nothing is created on error)."""
    if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
        raise InvalidInput('The request body must be {"properties": {"customDetails": {...}}}.')
    details = body["properties"].get("customDetails")
    if not isinstance(details, dict) or not details.get("instanceType"):
        raise InvalidInput("'properties.customDetails.instanceType' is required.")
    kind = details["instanceType"]
    if kind != "VMware":
        raise ProviderNotEmulated(
            f"The operation 'ReplicationFabrics_Create' with customDetails.instanceType "
            f"'{kind}' is not emulated by drlab: a configuration server registers with "
            "instanceType 'VMware' and the vault's registration key.",
            target="ReplicationFabrics_Create",
        )
    key = details.get("registrationKey")
    if not isinstance(key, str) or not key:
        raise InvalidInput(
            "'customDetails.registrationKey' is required: the key from the vault credentials file."
        )
    if not hmac.compare_digest(key.encode(), vault.registration_key().encode()):
        raise InvalidRegistrationKey(vault.scope.vault)
    host = details.get("hostName")
    if not isinstance(host, str) or not host:
        raise InvalidInput("'customDetails.hostName' is required: the configuration server's name.")
    for field in ("ipAddress", "agentVersion"):
        if details.get(field) is not None and not isinstance(details[field], str):
            raise InvalidInput(f"'customDetails.{field}' must be a string.")
    existing = vault.store.get("fabrics", fabric_name)
    if existing is not None and existing["kind"] != "VMware":
        raise InvalidInput(f"The fabric '{fabric_name}' exists and is not a VMware fabric.")
    return {
        "fabric": fabric_name,
        "hostName": host,
        "ipAddress": details.get("ipAddress"),
        "agentVersion": details.get("agentVersion"),
    }


def _register(vault, job, db) -> None:
    inp = job["input"]
    name = inp["fabric"]
    doc = vault.store.get("fabrics", name) or {
        "name": name,
        "kind": "VMware",
        "internalIdentifier": str(uuid.uuid4()),
        "providerId": provider_id_of(name),
        "registeredAt": vault.clock.time(),
        "heartbeat": None,
        "lastHeartbeat": None,
        "health": {},
    }
    doc.update(
        friendlyName=inp["hostName"],
        hostName=inp["hostName"],
        ipAddress=inp.get("ipAddress"),
        agentVersion=inp.get("agentVersion"),
        registeredBy=inp["registeredBy"],
    )
    vault.store.put(db, "fabrics", (name,), doc, kind="VMware")


def _create_container(vault, job, db) -> None:
    name = job["input"]["fabric"]
    container = container_name_of(name)
    if vault.store.get("containers", name, container) is None:
        doc = {
            "name": container,
            "fabric": name,
            "friendlyName": job["input"]["hostName"],
            "fabricType": "VMware",
            "role": "Primary",
        }
        vault.store.put(db, "containers", (name, container), doc)


REGISTER = JobKind(
    name="RegisterConfigurationServer",
    scenario="RegisterDra",
    friendly_name="Register the Azure Site Recovery Provider",
    target_type="Server",
    tasks=(
        TaskSpec("RegisterProviderTask", "Registering the configuration server", run=_register),
        TaskSpec(
            "CreateProtectionContainerTask",
            "Creating the protection container",
            run=_create_container,
        ),
    ),
)


# -- heartbeats -------------------------------------------------------------------------------
def _list_of_objects(body: dict, field: str) -> list[dict]:
    value = body.get(field, [])
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise InvalidInput(f"'{field}' must be a list of objects.")
    return value


def _number(obj: dict, field: str, where: str) -> None:
    v = obj.get(field)
    if v is not None and (not isinstance(v, int | float) or isinstance(v, bool) or v < 0):
        raise InvalidInput(f"'{where}.{field}' must be a non-negative number.")


def check_heartbeat(body) -> dict:
    if not isinstance(body, dict):
        raise InvalidInput("A heartbeat is a JSON object.")
    health = body.get("health", "Normal")
    if health not in HEALTH:
        raise InvalidInput(f"'health' must be one of {', '.join(HEALTH)}.")
    for field in ("processServers", "masterTargets", "mobilityAgents", "vCenters", "runAsAccounts"):
        _list_of_objects(body, field)
    for i, ps in enumerate(body.get("processServers", [])):
        where = f"processServers[{i}]"
        if not ps.get("id") or not ps.get("name"):
            raise InvalidInput(f"'{where}' needs 'id' and 'name'.")
        if ps.get("health", "Normal") not in HEALTH:
            raise InvalidInput(f"'{where}.health' must be one of {', '.join(HEALTH)}.")
        for f in (
            "cacheTotalBytes",
            "cacheFreeBytes",
            "uploadBacklogBytes",
            "throughputBytesPerSecond",
            "cpuLoadPercent",
            "totalMemoryBytes",
            "availableMemoryBytes",
        ):
            _number(ps, f, where)
    for i, mt in enumerate(body.get("masterTargets", [])):
        if not mt.get("id") or not mt.get("name"):
            raise InvalidInput(f"'masterTargets[{i}]' needs 'id' and 'name'.")
    for i, agent in enumerate(body.get("mobilityAgents", [])):
        if not agent.get("vmId"):
            raise InvalidInput(f"'mobilityAgents[{i}]' needs 'vmId' (the VM's instance UUID).")
        if agent.get("resync") is not None and not isinstance(agent["resync"], dict):
            raise InvalidInput(f"'mobilityAgents[{i}].resync' must be an object.")
    for i, vc in enumerate(body.get("vCenters", [])):
        if not vc.get("name"):
            raise InvalidInput(f"'vCenters[{i}]' needs 'name'.")
    for i, acct in enumerate(body.get("runAsAccounts", [])):
        if not acct.get("accountId"):
            raise InvalidInput(f"'runAsAccounts[{i}]' needs 'accountId'.")
    return body


def apply_heartbeat(vault, fabric: dict, body: dict) -> dict:
    """Record a configuration server's report; health changes become ServerHealth events."""
    now = vault.clock.time()
    with vault.store.transaction() as db:
        doc = vault.store.get("fabrics", fabric["name"])
        before = _health_map(doc, now)
        doc["heartbeat"] = body
        doc["lastHeartbeat"] = now
        for field in ("hostName", "ipAddress", "agentVersion"):
            if body.get(field):
                doc[field] = body[field]
        if body.get("hostName"):
            doc["friendlyName"] = body["hostName"]
        vault.store.put(db, "fabrics", (doc["name"],), doc, kind="VMware")
        after = _health_map(doc, now)
        for server, (label, health) in after.items():
            if before.get(server, (label, "Normal"))[1] != health:
                events.add_event(
                    vault.store,
                    db,
                    vault.scope,
                    time=now,
                    event_type="ServerHealth",
                    severity={"Normal": "OK", "Warning": "Warning", "Critical": "Critical"}[health],
                    description=f"{label} health is {health}",
                    affected_object=label.split("'")[1] if "'" in label else label,
                    correlation_id=server,
                    fabric=doc["name"],
                    provider="InMageAzureV2",
                )
        for agent in body.get("mobilityAgents", []):
            vault.store.put(
                db, "mobility_agents", (doc["name"], agent["vmId"]), {**agent, "receivedAt": now}
            )
        for vc in body.get("vCenters", []):
            vdoc = vault.store.get("vcenters", doc["name"], vc["name"])
            if vdoc is None:
                continue
            if vc.get("discoveryStatus"):
                vdoc["discoveryStatus"] = vc["discoveryStatus"]
            vdoc["lastHeartbeat"] = now
            if "error" in vc:
                vdoc["healthErrors"] = (
                    [
                        health_error(
                            vc["error"].get("code", "VCenterDiscoveryFailed"),
                            vc["error"].get("message", ""),
                            created=now,
                        )
                    ]
                    if vc["error"]
                    else []
                )
            vault.store.put(db, "vcenters", (doc["name"], vc["name"]), vdoc)
    return {
        "fabric": doc["name"],
        "receivedAt": iso(now),
        "pendingWorkItems": vault.store.count(
            "work_items", "fabric = ? AND state = 'Queued'", (doc["name"],)
        ),
    }


def _stale(doc: dict, now: float) -> bool:
    last = doc.get("lastHeartbeat")
    return last is None or now - last > HEARTBEAT_CRITICAL_SECONDS


def _health_map(doc: dict, now: float) -> dict[str, tuple[str, str]]:
    """server id -> (label, health) for the configuration server and its process servers."""
    hb = doc.get("heartbeat") or {}
    stale = _stale(doc, now)
    out = {
        doc.get("providerId", doc["name"]): (
            f"Configuration server '{doc.get('hostName')}'",
            "Critical" if stale else hb.get("health", "Normal"),
        )
    }
    for ps in hb.get("processServers", []):
        out[ps["id"]] = (
            f"Process server '{ps['name']}'",
            "Critical" if stale else ps.get("health", "Normal"),
        )
    return out


def process_servers(doc: dict) -> dict[str, dict]:
    """The fabric's process servers by id (lower-case), as last reported."""
    hb = doc.get("heartbeat") or {}
    return {ps["id"].lower(): ps for ps in hb.get("processServers", [])}


def master_targets(doc: dict) -> dict[str, dict]:
    hb = doc.get("heartbeat") or {}
    return {mt["id"].lower(): mt for mt in hb.get("masterTargets", [])}


# -- JSON -------------------------------------------------------------------------------------
def _percent(value) -> str | None:
    return None if value is None else f"{int(round(value))}%"


def _load_status(percent) -> str | None:
    if percent is None:
        return None
    return "Red" if percent > 95 else "Yellow" if percent > 80 else "Green"


def _space_status(total, free) -> str | None:
    if not total or free is None:
        return None
    ratio = free / total
    return "Red" if ratio < 0.25 else "Yellow" if ratio < 0.30 else "Green"


def process_server_json(ps: dict, fabric: dict, now: float, machines: int) -> dict:
    stale = _stale(fabric, now)
    errors = [
        health_error(
            e.get("code", "ProcessServerHealth"),
            e.get("message", ""),
            level=e.get("level", "Error"),
            entity_id=ps["id"],
        )
        for e in ps.get("healthErrors", [])
    ]
    if stale:
        errors.append(
            health_error(
                "NoHeartbeat",
                f"The process server '{ps['name']}' has not sent a heartbeat for 15 minutes.",
                level="Error",
                entity_id=ps["id"],
                recommended_action=(
                    "Check that the configuration server and process server are running and "
                    "can reach the vault."
                ),
            )
        )
    throughput = ps.get("throughputBytesPerSecond")
    return compact(
        {
            "friendlyName": ps["name"],
            "id": ps["id"],
            "ipAddress": ps.get("ipAddress"),
            "osType": ps.get("osType", "Windows"),
            "agentVersion": ps.get("agentVersion"),
            "lastHeartbeat": iso(fabric.get("lastHeartbeat")),
            "versionStatus": "Supported",
            "hostId": ps.get("hostId", ps["id"]),
            "machineCount": str(ps.get("machineCount", machines)),
            "replicationPairCount": str(ps.get("replicationPairCount", machines)),
            "cpuLoad": _percent(ps.get("cpuLoadPercent")),
            "cpuLoadStatus": _load_status(ps.get("cpuLoadPercent")),
            "totalMemoryInBytes": ps.get("totalMemoryBytes"),
            "availableMemoryInBytes": ps.get("availableMemoryBytes"),
            "totalSpaceInBytes": ps.get("cacheTotalBytes"),
            "availableSpaceInBytes": ps.get("cacheFreeBytes"),
            "spaceUsageStatus": _space_status(ps.get("cacheTotalBytes"), ps.get("cacheFreeBytes")),
            "psServiceStatus": "Stopped" if stale else ps.get("serviceStatus", "Running"),
            "healthErrors": errors,
            "health": "Critical" if stale else ps.get("health", "Normal"),
            "psStatsRefreshTime": iso(fabric.get("lastHeartbeat")),
            "throughputUploadPendingDataInBytes": ps.get("uploadBacklogBytes"),
            "throughputInBytes": None if throughput is None else int(throughput),
            "throughputInMBps": None if throughput is None else int(throughput // 2**20),
            "throughputStatus": STATUS_COLOUR.get(ps.get("health", "Normal")),
            "marsCommunicationStatus": "Connected" if not stale else "Disconnected",
            "marsRegistrationStatus": "Registered",
        }
    )


def master_target_json(mt: dict, fabric: dict) -> dict:
    return compact(
        {
            "id": mt["id"],
            "ipAddress": mt.get("ipAddress"),
            "name": mt["name"],
            "osType": mt.get("osType", "Windows"),
            "agentVersion": mt.get("agentVersion"),
            "lastHeartbeat": iso(fabric.get("lastHeartbeat")),
            "versionStatus": "Supported",
            "retentionVolumes": mt.get("retentionVolumes", []),
            "dataStores": mt.get("dataStores", []),
            "validationErrors": [],
            "healthErrors": [],
            "diskCount": mt.get("diskCount"),
            "osVersion": mt.get("osVersion"),
        }
    )


def fabric_json(vault, doc: dict, counts: dict | None = None) -> dict:
    scope = vault.scope
    if doc["kind"] == "Azure":
        custom = {
            "instanceType": "Azure",
            "location": doc.get("location"),
            "containerIds": [scope.container(doc["name"], azure_container_name(scope))],
        }
        props = {
            "friendlyName": doc["friendlyName"],
            "encryptionDetails": {"kekState": "None"},
            "rolloverEncryptionDetails": {"kekState": "None"},
            "internalIdentifier": doc["internalIdentifier"],
            "bcdrState": "Valid",
            "customDetails": custom,
            "healthErrorDetails": [],
            "health": "Normal",
        }
        return {
            "id": scope.fabric(doc["name"]),
            "name": doc["name"],
            "type": ids.T_FABRIC,
            "location": scope.location,
            "properties": props,
        }
    now = vault.clock.time()
    counts = counts if counts is not None else fabric_counts(vault, doc["name"])
    hb = doc.get("heartbeat") or {}
    stale = _stale(doc, now)
    pss = [
        process_server_json(ps, doc, now, counts["byProcessServer"].get(ps["id"].lower(), 0))
        for ps in hb.get("processServers", [])
    ]
    health = "Critical" if stale else hb.get("health", "Normal")
    errors = []
    if stale:
        errors.append(
            health_error(
                "NoHeartbeat",
                f"The configuration server '{doc.get('hostName')}' has not sent a heartbeat "
                + ("for 15 minutes." if doc.get("lastHeartbeat") else "yet."),
                entity_id=doc.get("providerId"),
                category="FabricInfrastructure",
            )
        )
    custom = compact(
        {
            "instanceType": "VMware",
            "processServers": pss,
            "masterTargetServers": [
                master_target_json(mt, doc) for mt in hb.get("masterTargets", [])
            ],
            "runAsAccounts": [
                compact({"accountId": a["accountId"], "accountName": a.get("accountName")})
                for a in hb.get("runAsAccounts", [])
            ],
            "replicationPairCount": str(counts["protected"]),
            "processServerCount": str(len(pss)),
            "agentCount": str(counts["agents"]),
            "protectedServers": str(counts["protected"]),
            "cpuLoad": _percent(hb.get("cpuLoadPercent")),
            "cpuLoadStatus": _load_status(hb.get("cpuLoadPercent")),
            "totalMemoryInBytes": hb.get("totalMemoryBytes"),
            "availableMemoryInBytes": hb.get("availableMemoryBytes"),
            "totalSpaceInBytes": hb.get("totalSpaceBytes"),
            "availableSpaceInBytes": hb.get("availableSpaceBytes"),
            "csServiceStatus": "Stopped" if stale else "Running",
            "ipAddress": doc.get("ipAddress"),
            "agentVersion": doc.get("agentVersion"),
            "hostName": doc.get("hostName"),
            "lastHeartbeat": iso(doc.get("lastHeartbeat")),
            "versionStatus": "Supported",
        }
    )
    props = {
        "friendlyName": doc["friendlyName"],
        "encryptionDetails": {"kekState": "None"},
        "rolloverEncryptionDetails": {"kekState": "None"},
        "internalIdentifier": doc["internalIdentifier"],
        "bcdrState": "Valid",
        "customDetails": custom,
        "healthErrorDetails": errors,
        "health": health,
    }
    return {
        "id": scope.fabric(doc["name"]),
        "name": doc["name"],
        "type": ids.T_FABRIC,
        "location": scope.location,
        "properties": props,
    }


def fabric_counts(vault, fabric: str) -> dict:
    by_ps: dict[str, int] = {}
    protected = 0
    for item in vault.store.docs("protected_items", "fabric = ?", (fabric,)):
        protected += 1
        ps = (item.get("enableInput") or {}).get("processServerId")
        if ps:
            by_ps[ps.lower()] = by_ps.get(ps.lower(), 0) + 1
    agents = vault.store.count("mobility_agents", "fabric = ?", (fabric,))
    return {"protected": protected, "byProcessServer": by_ps, "agents": agents}


def provider_json(vault, doc: dict) -> dict:
    now = vault.clock.time()
    pid = doc["providerId"]
    props = compact(
        {
            "fabricType": "VMware",
            "friendlyName": doc.get("hostName"),
            "providerVersion": doc.get("agentVersion"),
            "serverVersion": doc.get("agentVersion"),
            "providerVersionState": "Latest",
            "fabricFriendlyName": doc.get("friendlyName"),
            "lastHeartBeat": iso(doc.get("lastHeartbeat")),
            "connectionStatus": "NotConnected" if _stale(doc, now) else "Connected",
            "protectedItemCount": vault.store.count(
                "protected_items", "fabric = ?", (doc["name"],)
            ),
            "allowedScenarios": [],
            "healthErrorDetails": [],
            "draIdentifier": pid,
            "machineName": doc.get("hostName"),
        }
    )
    return {
        "id": vault.scope.recovery_services_provider(doc["name"], pid),
        "name": pid,
        "type": ids.T_PROVIDER,
        "location": vault.scope.location,
        "properties": props,
    }
