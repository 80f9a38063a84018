"""`$filter` as Site Recovery lists take it: `Field op 'value'` clauses joined by `and`.

Operators eq, ne (case-insensitive strings) and ge, gt, le, lt (times). Each list declares
the fields it filters on; an unknown field or a malformed clause is a 400 `InvalidFilter`
naming what is supported, never silently ignored. `or`, `not`, functions and parentheses are
not emulated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fakes.azure.arm.errors import InvalidFilter

from .common import parse_iso

_CLAUSE = re.compile(
    r"\s*(?P<field>[A-Za-z][A-Za-z0-9_.]*)\s+(?P<op>eq|ne|ge|gt|le|lt)\s+"
    r"(?P<value>'(?:[^']|'')*'|[^\s']+)\s*",
    re.IGNORECASE,
)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


@dataclass(frozen=True)
class FilterSpec:
    fields: dict[str, str]  # filter field name -> document key (string compare)
    times: dict[str, str] = field(default_factory=dict)  # filter field -> epoch-seconds key

    def supported(self) -> str:
        return ", ".join(sorted([*self.fields, *self.times]))


@dataclass(frozen=True)
class Clause:
    key: str
    op: str
    value: str | float
    is_time: bool


def parse_filter(spec: FilterSpec, text: str) -> list[Clause]:
    clauses = []
    parts = _AND.split(text.strip())
    for part in parts:
        m = _CLAUSE.fullmatch(part)
        if not m:
            raise InvalidFilter(
                f"The filter clause '{part.strip()}' is not valid: use Field eq 'value' "
                f"joined by 'and' (fields: {spec.supported()})."
            )
        name, op, raw = m["field"], m["op"].lower(), m["value"]
        value = raw[1:-1].replace("''", "'") if raw.startswith("'") else raw
        lowered = {k.lower(): v for k, v in spec.fields.items()}
        times = {k.lower(): v for k, v in spec.times.items()}
        if name.lower() in lowered:
            if op not in ("eq", "ne"):
                raise InvalidFilter(f"The filter field '{name}' takes only 'eq' or 'ne'.")
            clauses.append(Clause(lowered[name.lower()], op, value, False))
        elif name.lower() in times:
            try:
                when = parse_iso(value)
            except ValueError:
                raise InvalidFilter(f"'{value}' is not a date and time (ISO 8601).") from None
            clauses.append(Clause(times[name.lower()], op, when, True))
        else:
            raise InvalidFilter(
                f"The filter field '{name}' is not supported here (supported: {spec.supported()})."
            )
    return clauses


def _get(doc: dict, key: str):
    value = doc
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def matches(clauses: list[Clause], doc: dict) -> bool:
    for c in clauses:
        actual = _get(doc, c.key)
        if c.is_time:
            if actual is None:
                return False
            ok = {
                "eq": actual == c.value,
                "ne": actual != c.value,
                "ge": actual >= c.value,
                "gt": actual > c.value,
                "le": actual <= c.value,
                "lt": actual < c.value,
            }[c.op]
        else:
            values = actual if isinstance(actual, list) else [actual]
            hit = any(str(v).lower() == str(c.value).lower() for v in values if v is not None)
            ok = hit if c.op == "eq" else not hit
        if not ok:
            return False
    return True


def apply_filter(spec: FilterSpec, text: str | None, docs: list[dict]) -> list[dict]:
    if not text or not text.strip():
        return docs
    clauses = parse_filter(spec, text)
    return [d for d in docs if matches(clauses, d)]
