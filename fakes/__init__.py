"""Fake on-premises and Azure endpoints; each runs as its own process started by the launcher."""
