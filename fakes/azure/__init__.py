"""Fake Azure endpoints: Entra ID, ARM and Site Recovery, Service Bus, and Azurite's glue."""
