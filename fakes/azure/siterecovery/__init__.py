"""Fake Azure Site Recovery (classic VMware to Azure, InMageAzureV2): the vault's resources,
jobs and events in SQLite, served through the ARM front (`fakes.azure.arm`).

- `models/`: state, validation, jobs and JSON, one module per resource type; no HTTP.
- `handlers/`: thin HTTP handlers registered by operationId.
- `app.SiteRecovery`: the provider mounted on the ARM front (OpenAPI-derived route table).
- `replication_state.ReplicationState`: the Python API the Site Recovery worker (a separate
  process) uses to write replication state (protection state, disks, RPO, recovery points,
  health, events) into the same database.
- `openapi/`: the official OpenAPI document, 2025-08-01.

Not emulated: see docs/site-recovery.md (failover, recovery plans, network mappings, other
providers than InMageAzureV2, ... answer 501 naming the operation).
"""
