"""The guest runtime: the OS of a VM in the lab, shared by the fake ESXi and by Azure compute.

A powered-on VM is a running guest process (`python -m fakes.guest`). It keeps its registry
(installed drivers and services, by module name) on disk 0, loads those drivers into the path
of every disk write, runs a deterministic write generator and a journaled application whose
data can be checked after a crash, and answers its hypervisor over a tools channel (power,
guest operations, quiesce). Hypervisors use `fakes.guest.host`; drivers, services and lab
programs inside the guest get a `fakes.guest.api.GuestAPI`. See docs/guest.md.

Limits: no kernel, memory or network; the guest's files live beside its disks, not on them;
only what the lab's drivers, services and programs do runs inside it.
"""
