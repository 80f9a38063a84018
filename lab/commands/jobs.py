"""`drlab jobs`."""

from .replicate import jobs as command  # noqa: F401
