"""Validate response bodies against the official Site Recovery OpenAPI document (jsonschema).

Swagger 2.0 polymorphism (`discriminator: instanceType`, `x-ms-discriminator-value`) is turned
into JSON Schema: each discriminated base B becomes "B's own properties, and then the schema
of the subtype its instanceType names" (if/then), with subtypes extending B's raw properties so
nothing recurses; an instanceType that names no subtype is an error. Errors are checked
against ARM's ErrorResponse shape, long-running operation status bodies against ARM's
operation-status shape; the lab's provider-channel routes have no schema and are not checked.
"""

from __future__ import annotations

import copy
import json
import urllib.parse
from dataclasses import dataclass, field

import jsonschema

from fakes.azure.siterecovery import spec
from fakes.azure.siterecovery.app import route_table

ARM_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "target": {"type": "string"},
                "details": {"type": "array"},
                "additionalInfo": {"type": "array"},
            },
        }
    },
}
OPERATION_STATUS = {
    "type": "object",
    "required": ["id", "name", "status"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "status": {"enum": ["InProgress", "Succeeded", "Failed", "Canceled"]},
        "startTime": {"type": "string"},
        "endTime": {"type": "string"},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def polymorphic_definitions(definitions: dict) -> dict:
    defs = copy.deepcopy(definitions)
    bases = {name for name, d in defs.items() if "discriminator" in d}
    children: dict[str, list[tuple[str, str]]] = {b: [] for b in bases}
    for name, d in definitions.items():
        for part in d.get("allOf", []):
            parent = _ref_name(part.get("$ref", ""))
            if parent in bases:
                children[parent].append((name, d.get("x-ms-discriminator-value", name)))
    for d in defs.values():  # subtypes extend the raw base
        for part in d.get("allOf", []):
            if _ref_name(part.get("$ref", "")) in bases:
                part["$ref"] = f"#/definitions/{_ref_name(part['$ref'])}__raw"
    for base in bases:
        raw = defs[base]
        disc = raw.pop("discriminator")
        defs[f"{base}__raw"] = raw
        dispatch: dict = {"allOf": [{"$ref": f"#/definitions/{base}__raw"}]}
        values = [v for _, v in children[base]]
        if values:
            dispatch["allOf"].append({"properties": {disc: {"enum": values}}})
        for child, value in children[base]:
            dispatch["allOf"].append(
                {
                    "if": {"properties": {disc: {"const": value}}, "required": [disc]},
                    "then": {"$ref": f"#/definitions/{child}"},
                }
            )
        defs[base] = dispatch
    return defs


@dataclass
class Record:
    method: str
    url: str
    status: int
    body: bytes | None


@dataclass
class OpenApiChecker:
    document: dict = field(default_factory=spec.document)

    def __post_init__(self):
        self.defs = polymorphic_definitions(self.document["definitions"])
        self.table = route_table()
        self._ops = {}
        for item in self.document["paths"].values():
            for op in item.values():
                if isinstance(op, dict) and "operationId" in op:
                    self._ops[op["operationId"]] = op
        self.checked = 0

    def _validate(self, schema: dict, instance) -> list[str]:
        root = {**schema, "definitions": self.defs}
        validator = jsonschema.Draft7Validator(root)
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}"
            for e in validator.iter_errors(instance)
        ]

    def check(self, record: Record) -> list[str]:
        """Problems with one response (empty list: valid)."""
        path = urllib.parse.urlsplit(record.url).path
        where = f"{record.method} {path} -> {record.status}"
        text = (record.body or b"").strip()
        body = None
        if text:
            try:
                body = json.loads(text)
            except ValueError:
                return [f"{where}: body is not JSON"]
        if path.startswith("/_lab/"):
            return []
        match = self.table.match(record.method, path)
        self.checked += 1
        if record.status >= 400:
            if body is None:
                return [f"{where}: an error without ARM error JSON"]
            return [f"{where}: {p}" for p in self._validate(ARM_ERROR, body)]
        if match is None:
            return [f"{where}: no route"]
        op_id = match.route.operation_id
        if op_id == "ReplicationOperationStatus_Get":
            return [f"{where}: {p}" for p in self._validate(OPERATION_STATUS, body)]
        op = self._ops.get(op_id)
        if op is None:  # the lab's own routes (vault, operation results, provider channel)
            if (
                op_id == "ReplicationOperationResults_Get"
                and isinstance(body, dict)
                and "id" in body
            ):
                # The final GET of a long-running operation: the resource its id names.
                inner = self.table.match("GET", urllib.parse.urlsplit(body["id"]).path)
                if inner is None:
                    return [f"{where}: the result's id names no resource"]
                schema = self._ops[inner.route.operation_id]["responses"]["200"]["schema"]
                return [f"{where} (result): {p}" for p in self._validate(schema, body)]
            return []
        declared = op["responses"].get(str(record.status))
        if declared is None:
            declared_codes = ", ".join(op["responses"])
            return [
                f"{where}: status {record.status} is not declared for {op_id} ({declared_codes})"
            ]
        schema = declared.get("schema")
        if schema is None:
            return [] if body is None else [f"{where}: {op_id} {record.status} declares no body"]
        if body is None:
            return [f"{where}: {op_id} {record.status} needs a body"]
        return [f"{where} ({op_id}): {p}" for p in self._validate(schema, body)]
