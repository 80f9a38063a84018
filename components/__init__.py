"""On-premises roles: mobility service, configuration server, process server, master target."""
