"""The fake vCenter Server and its ESXi hosts, driven by real pyvmomi over vSphere SOAP.

It serves `/sdk` over HTTPS: sessions, the property collector (RetrieveProperties(Ex), Fetch,
filters and WaitForUpdates(Ex) with real change sets), container views, an inventory built from
the topology (datacenter, folders, a cluster of hosts, datastores that are directories of
sparse disk files, networks, VMs), tasks, events, VM power operations backed by guest
processes (`fakes.guest`), disk growth, CreateVM/Destroy, guest operations and file transfers.
State (VMs, power states as clients saw them, events) survives a restart.

Layout: one module per managed-object type (`virtual_machine`, `folder`, `host_system`,
`property_collector`, ...), each registering its methods by SOAP name; `dispatch` is the one
dispatcher (unknown method -> MethodNotFound naming it); `soap` is the codec (pyvmomi's own
type system, no I/O); `models.VCenter` is the state root; `app` the thin HTTP layer.

Not emulated: snapshots, clone/relocate/vMotion, suspend, DRS/HA, distributed switches,
alarms, permissions (the one user is an administrator), performance counters, licensing,
OVF/NFC, the datastore browser and /folder downloads, vAPI REST. Those answer MethodNotFound.
See docs/vcenter.md.
"""
