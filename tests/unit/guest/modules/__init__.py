"""Modules a test guest loads by name: a counting disk filter, a beacon service and an installer
program. They stand in for the mobility service so the guest is tested without any component."""
