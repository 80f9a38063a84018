"""`drlab plan`."""

from .failover import plan_command as command  # noqa: F401
