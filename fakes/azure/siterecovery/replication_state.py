"""The Python API the Site Recovery worker uses to write replication state into the vault.

The worker is a separate process sharing the ARM process's SQLite database (WAL mode, short
write transactions), so whatever it writes is what the next API call shows: protection state,
per-disk progress and RPO, recovery points, health errors, events. It never talks HTTP to the
ARM process and never starts jobs.

    from fakes.azure.siterecovery.replication_state import ReplicationState

    state = ReplicationState.for_lab(state_dir)           # <state>/services/arm/siterecovery.db
    for item in state.protected_items():                  # what to replicate
        ...
    state.update_item(item.key, protection_state="InitialReplicationInProgress",
                      protection_stage="Resync", resync_progress_percentage=40)
    state.update_disk(item.key, "disk-0", protection_stage="Resync", resync_progress_percentage=40,
                      rpo_in_seconds=None)
    rp = state.add_recovery_point(item.key, time=clock.time(), type="CrashConsistent",
                                  details={"snapshots": {...}})
    state.prune_recovery_points(item.key, keep=lambda p: ...)
    state.set_health_errors(item.key, [health_error("78144", "No app-consistent point ...")])
    state.add_event(event_type="VmHealth", severity="Warning", description=..., item=item.key)

Times are lab epoch seconds (`LabClock.time()`); the API renders them as ISO 8601.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lab.kit.labinfo import read_topology

from . import ids
from .models import events as events_model
from .models.common import health_error
from .models.failover import FAILED_OVER, FAILOVER_JOBS
from .models.protected_items import HEALTH, PROTECTION_STAGES, STATES
from .models.recovery_points import TYPES as RECOVERY_POINT_TYPES
from .store import DB_FILE, Store

__all__ = ["ReplicationState", "ProtectedItemKey", "ProtectedItemView", "health_error"]

ARM_SERVICE = "arm"

# Item-level fields the worker may write (python name -> stored key under `replication`).
_ITEM_FIELDS = {
    "resync_progress_percentage": "resyncProgressPercentage",
    "rpo_in_seconds": "rpoInSeconds",
    "compressed_data_rate_in_mb": "compressedDataRateInMB",
    "uncompressed_data_rate_in_mb": "uncompressedDataRateInMB",
    "last_rpo_calculated_time": "lastRpoCalculatedTime",
    "last_update_received_time": "lastUpdateReceivedTime",
    "last_recovery_point_received": "lastRecoveryPointReceived",
    "total_data_transferred": "totalDataTransferred",
    "total_progress_health": "totalProgressHealth",
}
# Disk-level fields (InMageAzureV2ProtectedDiskDetails), python name -> JSON name.
_DISK_FIELDS = {
    "protection_stage": "protectionStage",
    "health_error_code": "healthErrorCode",
    "rpo_in_seconds": "rpoInSeconds",
    "resync_required": "resyncRequired",
    "resync_progress_percentage": "resyncProgressPercentage",
    "resync_duration_in_seconds": "resyncDurationInSeconds",
    "file_system_capacity_in_bytes": "fileSystemCapacityInBytes",
    "source_data_in_megabytes": "sourceDataInMegaBytes",
    "ps_data_in_megabytes": "psDataInMegaBytes",
    "target_data_in_megabytes": "targetDataInMegaBytes",
    "disk_resized": "diskResized",
    "last_rpo_calculated_time": "lastRpoCalculatedTime",
    "resync_processed_bytes": "resyncProcessedBytes",
    "resync_total_transferred_bytes": "resyncTotalTransferredBytes",
    "resync_last_15_minutes_transferred_bytes": "resyncLast15MinutesTransferredBytes",
    "resync_last_data_transfer_time": "resyncLastDataTransferTimeUTC",
    "resync_start_time": "resyncStartTime",
    "progress_health": "progressHealth",
    "progress_status": "progressStatus",
}
_BOOL_AS_TEXT = {"resyncRequired", "diskResized"}


@dataclass(frozen=True)
class ProtectedItemKey:
    fabric: str
    container: str
    name: str


@dataclass(frozen=True)
class ProtectedItemView:
    """What the worker needs to know about a protected item to replicate it."""

    key: ProtectedItemKey
    id: str  # ARM id
    vm_id: str  # the VM's instance UUID (the protectable item's name)
    vm_name: str
    protection_state: str
    policy: dict  # InMageAzureV2 settings: crashConsistentFrequencyInMinutes, ...
    disks: list[dict]  # {diskId, diskName, capacityInBytes, logStorageAccountId, diskType}
    process_server_id: str
    log_storage_account_id: str
    target_resource_group_id: str
    target_vm_name: str
    multi_vm_group: str | None
    # Points a test failover or a failover made its VM from, and whether a failover job runs:
    # retention keeps those (a drill verifies against its point; a job is choosing one).
    points_in_use: frozenset = frozenset()
    failover_running: bool = False
    # The mobility agent's resync report (through the configuration server's heartbeat), and
    # the health error ids an operator resolved (resolveHealthErrors).
    agent_resync: dict | None = None
    resolved_errors: dict | None = None

    @property
    def failed_over(self) -> bool:
        """The VM runs in Azure now: nothing more is applied, no point added or pruned."""
        return self.protection_state in FAILED_OVER


class ReplicationState:
    def __init__(self, db_path: str | Path, scope: ids.VaultScope | None = None):
        self.store = Store(db_path)
        self._scope = scope

    @classmethod
    def for_lab(cls, state_dir: str | Path) -> ReplicationState:
        """The vault of the lab in `state_dir` (its topology names the vault)."""
        azure = read_topology(state_dir)["azure"]
        scope = ids.VaultScope(
            azure["subscription_id"],
            azure["resource_group"],
            azure["vault"],
            azure.get("location", "westeurope"),
        )
        return cls(Path(state_dir) / "services" / ARM_SERVICE / DB_FILE, scope)

    def close(self) -> None:
        self.store.close()

    @property
    def scope(self) -> ids.VaultScope:
        if self._scope is None:
            raise RuntimeError("pass the VaultScope to ReplicationState to write events")
        return self._scope

    # -- reading ------------------------------------------------------------------------------
    def protected_items(self) -> list[ProtectedItemView]:
        return [
            self._view(d)
            for d in self.store.docs("protected_items", order="fabric, container, name")
        ]

    def protected_item(self, key: ProtectedItemKey) -> ProtectedItemView:
        return self._view(self._doc(key))

    def _doc(self, key: ProtectedItemKey) -> dict:
        doc = self.store.get("protected_items", key.fabric, key.container, key.name)
        if doc is None:
            raise KeyError(f"no protected item {key.fabric}/{key.container}/{key.name}")
        return doc

    def _view(self, doc: dict) -> ProtectedItemView:
        enable = doc.get("enableInput") or {}
        capacity = {d["id"]: d for d in (doc.get("vm") or {}).get("disks", [])}
        policy = self.store.get("policies", doc["policy"]) or {"settings": {}}
        key = ProtectedItemKey(doc["fabric"], doc["container"], doc["name"])
        arm_id = (
            self._scope.protected_item(key.fabric, key.container, key.name)
            if self._scope
            else doc["name"]
        )
        return ProtectedItemView(
            key=key,
            id=arm_id,
            vm_id=doc.get("protectableItemName"),
            vm_name=doc["friendlyName"],
            protection_state=doc["protectionState"],
            policy=dict(policy["settings"]),
            disks=[
                {
                    **d,
                    "diskName": capacity.get(d["diskId"], {}).get("name", d["diskId"]),
                    "capacityInBytes": capacity.get(d["diskId"], {}).get("capacityInBytes"),
                }
                for d in enable.get("disksToInclude", [])
            ],
            process_server_id=enable.get("processServerId"),
            log_storage_account_id=enable.get("logStorageAccountId"),
            target_resource_group_id=enable.get("targetAzureV2ResourceGroupId"),
            target_vm_name=enable.get("targetAzureVmName"),
            multi_vm_group=enable.get("multiVmGroupName"),
            points_in_use=frozenset(
                made["point"]
                for made in (doc.get("testFailover"), doc.get("failover"))
                if made and made.get("point")
            ),
            failover_running=(doc.get("currentJob") or {}).get("scenarioName") in FAILOVER_JOBS,
            agent_resync=(self._agent(doc) or {}).get("resync"),
            resolved_errors=dict((doc.get("replication") or {}).get("resolvedHealthErrors") or {}),
        )

    def _agent(self, doc: dict) -> dict | None:
        vm = doc.get("protectableItemName")
        return self.store.get("mobility_agents", doc["fabric"], vm) if vm else None

    def recovery_points(self, key: ProtectedItemKey) -> list[dict]:
        """{name, time, type, multiVmSyncPoint, details}, newest first."""
        return self.store.docs(
            "recovery_points",
            "fabric = ? AND container = ? AND item = ?",
            (key.fabric, key.container, key.name),
            "time DESC",
        )

    # -- writing ------------------------------------------------------------------------------
    def update_item(
        self,
        key: ProtectedItemKey,
        *,
        protection_state: str | None = None,
        protection_stage: str | None = None,
        replication_health: str | None = None,
        seed_managed_disks: dict[str, str] | None = None,
        **fields,
    ) -> None:
        """Item-level replication state. `protection_state` must be one of the states the API
        knows (models.protected_items.STATES); other fields: see `_ITEM_FIELDS`."""
        unknown = set(fields) - set(_ITEM_FIELDS)
        if unknown:
            raise TypeError(f"unknown protected item fields: {', '.join(sorted(unknown))}")
        if protection_state is not None and protection_state not in STATES:
            raise ValueError(f"protection_state must be one of {', '.join(STATES)}")
        if protection_stage is not None and protection_stage not in PROTECTION_STAGES:
            raise ValueError(f"protection_stage must be one of {', '.join(PROTECTION_STAGES)}")
        if replication_health is not None and replication_health not in HEALTH:
            raise ValueError(f"replication_health must be one of {', '.join(HEALTH)}")
        with self.store.transaction() as db:
            doc = self._doc(key)
            rep = doc.setdefault("replication", {"disks": {}})
            if doc["protectionState"] in FAILED_OVER:
                protection_state = protection_stage = None  # a failover's state stands
            if protection_state is not None:
                doc["protectionState"] = protection_state
            if protection_stage is not None:
                doc["protectionStage"] = protection_stage
                rep["protectionStage"] = protection_stage
            if replication_health is not None:
                doc["replicationHealth"] = replication_health
            if seed_managed_disks is not None:
                rep.setdefault("seedManagedDisks", {}).update(seed_managed_disks)
            for name, value in fields.items():
                rep[_ITEM_FIELDS[name]] = value
            self.store.put(db, "protected_items", (key.fabric, key.container, key.name), doc)

    def update_disk(self, key: ProtectedItemKey, disk_id: str, **fields) -> None:
        """Per-disk state (InMageAzureV2ProtectedDiskDetails); see `_DISK_FIELDS`."""
        unknown = set(fields) - set(_DISK_FIELDS)
        if unknown:
            raise TypeError(f"unknown disk fields: {', '.join(sorted(unknown))}")
        with self.store.transaction() as db:
            doc = self._doc(key)
            included = {
                d["diskId"] for d in (doc.get("enableInput") or {}).get("disksToInclude", [])
            }
            if disk_id not in included:
                raise KeyError(f"disk {disk_id} is not protected in {key.name}")
            disk = (
                doc.setdefault("replication", {"disks": {}})
                .setdefault("disks", {})
                .setdefault(disk_id, {})
            )
            for name, value in fields.items():
                json_name = _DISK_FIELDS[name]
                if json_name in _BOOL_AS_TEXT and isinstance(value, bool):
                    value = "True" if value else "False"
                disk[json_name] = value
            self.store.put(db, "protected_items", (key.fabric, key.container, key.name), doc)

    def set_health_errors(self, key: ProtectedItemKey, errors: list[dict]) -> None:
        """Replace the item's health errors (build them with `health_error(...)`)."""
        with self.store.transaction() as db:
            doc = self._doc(key)
            doc["healthErrors"] = list(errors)
            self.store.put(db, "protected_items", (key.fabric, key.container, key.name), doc)

    def add_recovery_point(
        self,
        key: ProtectedItemKey,
        *,
        time: float,
        type: str,
        multi_vm_sync_point: bool = False,
        details: dict | None = None,
        name: str | None = None,
    ) -> str | None:
        """Record a recovery point; returns its name (the id the API uses), or None when the
        item has failed over meanwhile (its points no longer change)."""
        if type not in RECOVERY_POINT_TYPES:
            raise ValueError(f"type must be one of {', '.join(RECOVERY_POINT_TYPES)}")
        name = name or str(uuid.uuid4())
        with self.store.transaction() as db:
            doc = self._doc(key)
            if doc["protectionState"] in FAILED_OVER:
                return None  # a run that ended as the failover began: its point is not kept
            point = {
                "name": name,
                "fabric": key.fabric,
                "container": key.container,
                "item": key.name,
                "time": float(time),
                "type": type,
                "multiVmSyncPoint": bool(multi_vm_sync_point),
                "details": details or {},
            }
            self.store.put(
                db,
                "recovery_points",
                (key.fabric, key.container, key.name, name),
                point,
                time=float(time),
            )
            rep = doc.setdefault("replication", {"disks": {}})
            rep["lastRecoveryPointReceived"] = max(
                float(time), rep.get("lastRecoveryPointReceived") or 0
            )
            self.store.put(db, "protected_items", (key.fabric, key.container, key.name), doc)
        return name

    def delete_recovery_points(self, key: ProtectedItemKey, names: list[str]) -> int:
        with self.store.transaction() as db:
            return sum(
                self.store.delete(db, "recovery_points", key.fabric, key.container, key.name, n)
                for n in names
            )

    def prune_recovery_points(
        self, key: ProtectedItemKey, keep: Callable[[dict], bool]
    ) -> list[str]:
        """Delete the points for which `keep(point)` is false (retention); returns their names."""
        gone = [p["name"] for p in self.recovery_points(key) if not keep(p)]
        self.delete_recovery_points(key, gone)
        return gone

    def add_event(
        self,
        *,
        event_type: str,
        severity: str,
        description: str,
        time: float,
        item: ProtectedItemKey | None = None,
        affected_object: str | None = None,
        health_errors: list[dict] | None = None,
        details: dict | None = None,
    ) -> str:
        """A replication event (VmHealth, ServerHealth, AgentHealth); returns its name."""
        fabric = correlation = None
        if item is not None:
            doc = self._doc(item)
            affected_object = affected_object or doc["friendlyName"]
            correlation = doc.get("protectableItemName")
            fabric = item.fabric
        with self.store.transaction() as db:
            return events_model.add_event(
                self.store,
                db,
                self.scope,
                time=time,
                event_type=event_type,
                severity=severity,
                description=description,
                affected_object=affected_object,
                correlation_id=correlation,
                fabric=fabric,
                provider="InMageAzureV2",
                provider_details=details,
                health_errors=health_errors,
            )
