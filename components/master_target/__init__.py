"""The master target server: the on-premises end of failback replication.

For now it registers with the configuration server (passphrase) and reports its health: its
retention volume and the datastores it can write to. Its data role (receiving reprotect
replication from Azure and writing the VMware VMs' disks) comes with failback.
"""
