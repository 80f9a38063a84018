"""The vault: the root of Site Recovery's state in one process (store, jobs, work items).

`Vault.open(...)` opens (or creates) the database, seeds what the real service has before
anyone calls it (the vault's registration key, the "Microsoft Azure" fabric and container of
the vault's region) and registers the job kinds. `write_credentials` writes the vault
credentials file a configuration server registers with (as an admin downloads it from the
portal). State survives a restart: everything is in SQLite; the job runner picks up the
jobs that were running.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

from .. import ids
from ..store import DB_FILE, Store
from . import (
    fabrics,
    failover_jobs,
    mappings,
    plan_jobs,
    plans,
    policies,
    protected_items,
    resync,
    vcenters,
)
from .fabrics import azure_container_name, azure_fabric_name
from .jobs import JobEngine
from .work_items import WorkItems

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "vault.credentials"
JOB_KINDS = (
    fabrics.REGISTER,
    vcenters.ADD_VCENTER,
    policies.CREATE_POLICY,
    mappings.ASSOCIATE,
    protected_items.ENABLE,
    protected_items.DISABLE,
    protected_items.PURGE,
    *failover_jobs.KINDS,
    *resync.KINDS,
    *plans.KINDS,
    *plan_jobs.KINDS,
)


class Vault:
    def __init__(self, store: Store, clock, scope: ids.VaultScope):
        self.store = store
        self.clock = clock
        self.scope = scope
        self.work_items = WorkItems(store, clock)
        self.jobs = JobEngine(store, clock, scope, self.work_items, context=self)
        for kind in JOB_KINDS:
            self.jobs.register(kind)
        self.resync_scheduler = None  # the ARM process sets one (resync_schedule.py)

    @classmethod
    def open(cls, data_dir: str | Path, clock, scope: ids.VaultScope) -> Vault:
        vault = cls(Store(Path(data_dir) / DB_FILE), clock, scope)
        vault.seed()
        return vault

    # -- seeding ------------------------------------------------------------------------------
    def seed(self) -> None:
        if self.store.meta("registration_key") is None:
            self.store.set_meta("registration_key", secrets.token_urlsafe(48))
        with self.store.transaction() as db:
            fabrics.seed_azure_fabric(self, db)

    def registration_key(self) -> str:
        return self.store.meta("registration_key") or ""

    def credentials(self, arm_url: str | None = None) -> dict:
        """The vault credentials: what a configuration server needs to register."""
        data = {
            "vaultName": self.scope.vault,
            "subscriptionId": self.scope.subscription_id,
            "resourceGroup": self.scope.resource_group,
            "location": self.scope.location,
            "vaultId": self.scope.id,
            "siteRecoveryApiVersion": "2025-08-01",
            "registrationKey": self.registration_key(),
            "azureFabricId": self.scope.fabric(azure_fabric_name(self.scope)),
            "azureContainerId": self.scope.container(
                azure_fabric_name(self.scope), azure_container_name(self.scope)
            ),
        }
        if arm_url:
            data["armUrl"] = arm_url
        return data

    def write_credentials(self, path: str | Path, arm_url: str | None = None) -> Path:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.credentials(arm_url), f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
        return path

    # -- control API --------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to a freshly seeded vault; the registration key stays (credentials files the
        configuration server holds remain valid)."""
        self.store.wipe()
        self.seed()

    def state(self) -> dict:
        def by_state(table: str) -> dict:
            rows = (
                self.store.connection()
                .execute(f"SELECT state, COUNT(*) AS n FROM {table} GROUP BY state")
                .fetchall()
            )
            return {r["state"]: r["n"] for r in rows}

        items = {}
        for doc in self.store.docs("protected_items"):
            items[doc["protectionState"]] = items.get(doc["protectionState"], 0) + 1
        return {
            "vault": self.scope.id,
            "fabrics": [
                {"name": r["name"], "kind": r["kind"]}
                for r in self.store.select("fabrics", order="name")
            ],
            "vcenters": self.store.count("vcenters"),
            "protectable_items": self.store.count("protectable_items"),
            "protected_items": items,
            "policies": self.store.count("policies"),
            "recovery_points": self.store.count("recovery_points"),
            "jobs": by_state("jobs"),
            "work_items": by_state("work_items"),
            "events": self.store.count("events"),
        }

    def close(self) -> None:
        if self.resync_scheduler is not None:
            self.resync_scheduler.stop()
        self.jobs.stop_runner()
        self.store.close()
