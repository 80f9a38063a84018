"""Fake Azure Compute (`Microsoft.Compute`), mounted in the lab's ARM front.

Managed disks (page blobs in the disks storage account, made from a recovery point's
snapshot by a server-side copy) and virtual machines that really boot: a VM's guest is the
lab's guest runtime (`fakes.guest`) on its page-blob disks, running the same workload, with
the application's data checked at boot and shown in the VM's instance view. `compute.Compute`
is the root and the Python API Site Recovery's failover calls in the same process;
`app.mount` makes it a provider of the front. State is in the ARM service's `resources.db`
(SQLite), shared with Network; guests are lab processes (`drlab down` stops them) that a
restarted ARM process re-adopts.

Not emulated (501 naming the operation): images, snapshots, galleries, scale sets,
availability sets, extensions, run commands, disk access (SAS), encryption, and everything
else of Microsoft.Compute not listed in docs/compute-network.md.
"""
