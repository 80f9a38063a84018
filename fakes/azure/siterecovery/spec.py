"""The Site Recovery OpenAPI document shipped with the package, and what is derived from it."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

API_VERSION = "2025-08-01"
SPEC_FILE = f"site-recovery-{API_VERSION}.json"


@cache
def document() -> dict:
    """The OpenAPI 2.0 document (Azure/azure-rest-api-specs, stable/2025-08-01/service.json)."""
    text = resources.files(__package__).joinpath("openapi", SPEC_FILE).read_text()
    return json.loads(text)
