"""`drlab recovery-points`."""

from .failover import points_command as command  # noqa: F401
