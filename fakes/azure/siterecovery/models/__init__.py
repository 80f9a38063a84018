"""The vault's models: state, validation, jobs and JSON of Site Recovery resources. No HTTP.

One module per resource type (fabrics, vcenters, containers, protectable_items, policies,
mappings, protected_items, recovery_points, jobs, events) plus the work item queue of the
provider channel and `vault.Vault`, the root that ties them to one SQLite store.
"""
