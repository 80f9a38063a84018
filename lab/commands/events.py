"""`drlab events`."""

from .replicate import events as command  # noqa: F401
