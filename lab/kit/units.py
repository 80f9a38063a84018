"""Sizes as people write them: 4GiB, 512MiB, 2TiB."""

from __future__ import annotations

import re

_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
}


def parse_size(text: str | int) -> int:
    """'4GiB', '512MiB', '2TiB' or a number of bytes -> bytes."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", text.strip())
    if not match or match.group(2) not in _SIZE_UNITS:
        raise ValueError(f"not a size: {text!r} (use e.g. 4GiB, 512MiB, 2TiB)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
