"""The configuration server: the on-premises site's coordinator.

It registers the site with the vault (a VMware fabric), discovers VMs from vCenter through
pyvmomi, registers process servers, master targets and mobility agents (with its passphrase),
relays their health to the vault, and carries out what only the on-premises side can do
(discovering a vCenter, push-installing the mobility service) when the vault asks.
"""
