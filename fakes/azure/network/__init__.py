"""Fake Azure Network (`Microsoft.Network`), mounted in the lab's ARM front.

Virtual networks with subnets (the topology's `azure.networks`, seeded: production and an
isolated test VNet), and network interfaces with private IPs allocated in their subnet, in
the JSON azure-mgmt-network reads. `network.Network` is the root and the Python API other
parts of the ARM process use (Compute attaches NICs to VMs; failover creates NICs);
`app.mount` makes it a provider of the front. State is in the ARM service's
`resources.db` (SQLite), shared with Compute.

Not emulated (501 naming the operation): every other Microsoft.Network resource (public IPs,
NSGs, route tables, load balancers, gateways, peerings, DNS, private endpoints ...). No
routing: an "isolated" VNet (tag `drlab-isolated`) is a fact told to the guests booted in it.
See docs/compute-network.md.
"""
