"""The mobility service: the disk filter in the guest's write path and the agent that ships
its changes to a process server. Installed into a guest by push install; the guest loads it by
module name."""
