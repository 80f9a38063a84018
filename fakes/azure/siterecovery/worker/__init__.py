"""The Site Recovery worker: applies replication logs from the cache storage account to seed
disks (page blobs in the disks account), makes recovery points (snapshots at tags), computes
RPO and raises alerts, and purges what a disabled VM leaves. A separate process (`sr-worker`)
that writes the vault's replication state through `replication_state`.

- `names`, `plan`: blob names and the initial replication plan (pure).
- `pages`, `engine`: records to page writes; one disk's logs applied in order (no storage
  client: backends are passed in).
- `points`, `rpo`, `status`: recovery points and retention, RPO arithmetic, what the vault shows.
- `progress`: the worker's own durable progress (SQLite).
- `storage`: the two storage accounts through azure-storage-blob.
- `worker`: the service's threads; `app`, `point_check`, `verify`: the lab routes.

Not emulated: resync, disk removal during replication, Azurite page-range diffs (the worker
never asks for one), throttling. See docs/site-recovery-worker.md.
"""
