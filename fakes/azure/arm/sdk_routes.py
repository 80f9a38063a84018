"""Route tables derived from an Azure management SDK's request builders, where no OpenAPI
document ships with the lab (Compute, Network).

The generated SDKs (`azure-mgmt-compute`, `azure-mgmt-network`) build every request in a
module-level function `build_<group>_<operation>_request`: the HTTP method, the URL template
and the api-version the SDK sends by default are literals there. This module reads them with
`ast` (nothing is imported or run) and writes a Python module of rows:

    python -m fakes.azure.arm.sdk_routes azure.mgmt.compute fakes/azure/compute/sdk_routes.py

Each row is (method, template, operationId, api-version, long-running, pageable). The
operationId is the operation group (the `...Operations` class, e.g. `VirtualMachines`) and
the method in CamelCase (`begin_power_off` -> `PowerOff`), which is the OpenAPI operationId
of the REST spec the SDK was generated from (`VirtualMachines_PowerOff`). Operations of the
client's mixin (no group) keep their bare name (`CheckDnsNameAvailability`).

`parse_table(TABLE)` reads them back; `route_table(rows, source, extra)` turns them into a
`RouteTable` whose routes carry their own api-version, so one provider accepts each resource
type at the version the SDK sends for it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

from .routes import RouteTable, make_route

Row = tuple[str, str, str, str, bool, bool]


def _camel(snake: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_") if part)


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _builders(tree: ast.Module) -> dict[str, tuple[str, str, str]]:
    """builder name -> (method, url template, default api-version)."""
    found = {}
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name.startswith("build_")):
            continue
        url = method = version = None
        for sub in ast.walk(node):
            if isinstance(sub, ast.Assign | ast.AnnAssign):
                target = sub.targets[0] if isinstance(sub, ast.Assign) else sub.target
                if (
                    isinstance(target, ast.Name)
                    and target.id == "_url"
                    and isinstance(sub.value, ast.Constant)
                    and isinstance(sub.value.value, str)
                ):
                    url = sub.value.value
            if isinstance(sub, ast.Call):
                for kw in sub.keywords:
                    if kw.arg == "method" and isinstance(kw.value, ast.Constant):
                        method = kw.value.value
                # kwargs.pop("api_version", _params.pop("api-version", "2026-04-01"))
                if (
                    isinstance(sub.func, ast.Attribute)
                    and sub.func.attr == "pop"
                    and len(sub.args) == 2
                    and isinstance(sub.args[0], ast.Constant)
                    and sub.args[0].value == "api-version"
                    and isinstance(sub.args[1], ast.Constant)
                ):
                    version = sub.args[1].value
        if url and method and version:
            found[node.name] = (method.upper(), url, version)
    return found


def rows_from_source(source: str) -> list[Row]:
    tree = ast.parse(source)
    builders = _builders(tree)
    rows: dict[str, Row] = {}
    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        group = cls.name.removesuffix("Operations") or "Operations"
        if group.startswith("_"):  # the client's mixin: operations without a group
            group = ""
        methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
        for fn in methods.values():
            op = fn.name.removeprefix("begin_").removeprefix("_").removesuffix("_initial")
            calls = [
                n.func.id
                for n in ast.walk(fn)
                if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Name)
                and n.func.id in builders
            ]
            for builder in calls:
                method, url, version = builders[builder]
                operation_id = f"{group}_{_camel(op)}" if group else _camel(op)
                long_running = f"begin_{op}" in methods
                pageable = "ItemPaged" in ast.unparse(fn.returns) if fn.returns else False
                previous = rows.get(builder)
                if previous is not None:
                    pageable = pageable or previous[5]
                rows[builder] = (method, url, operation_id, version, long_running, pageable)
    return sorted(rows.values(), key=lambda r: (r[2], r[0]))


def route_table(rows, source: str, extra=()) -> RouteTable:
    """A RouteTable of SDK-derived rows plus extension rows (method, template, opId, version)."""
    routes = [
        make_route(
            method,
            template,
            operation_id,
            source=source,
            long_running=long_running,
            pageable=pageable,
            api_versions=(version,),
        )
        for method, template, operation_id, version, long_running, pageable in rows
    ]
    routes += [
        make_route(method, template, operation_id, source="drlab extension", api_versions=(v,))
        for method, template, operation_id, v in extra
    ]
    table = RouteTable()
    table.extend(routes)
    return table


def _distribution(package: str) -> tuple[str, str]:
    name = package.replace(".", "-")
    return name, importlib.metadata.version(name)


def generate(package: str) -> str:
    """The text of a rows module for `package` (e.g. azure.mgmt.compute)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{package} is not installed")
    source_file = Path(spec.submodule_search_locations[0]) / "operations" / "_operations.py"
    rows = rows_from_source(source_file.read_text())
    dist, version = _distribution(package)
    lines = [
        f'"""Routes of {dist} {version}, derived from its request builders.',
        "",
        "Generated by `python -m fakes.azure.arm.sdk_routes "
        f"{package} <this file>`: do not edit by hand.",
        "One route a line: method, path template, operationId, the api-version the SDK sends,",
        '`lro` if long-running, `paged` if pageable (see fakes/azure/arm/sdk_routes.py)."""',
        "",
        "# ruff: noqa: E501",
        "",
        f'SOURCE = "{dist} {version}"',
        "",
        'TABLE = """',
    ]
    for method, template, operation_id, api_version, long_running, pageable in rows:
        flags = ("lro" if long_running else "-", "paged" if pageable else "-")
        lines.append(" ".join((method, template, operation_id, api_version, *flags)))
    lines.append('"""')
    return "\n".join(lines) + "\n"


def parse_table(text: str) -> list[Row]:
    """The rows of a generated module's TABLE."""
    rows = []
    for line in text.strip().splitlines():
        method, template, operation_id, api_version, lro, paged = line.split()
        rows.append((method, template, operation_id, api_version, lro == "lro", paged == "paged"))
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m fakes.azure.arm.sdk_routes <sdk package> <output.py>")
        return 2
    text = generate(argv[1])
    Path(argv[2]).write_text(text)
    print(f"{argv[2]}: {len(parse_table(text.split(chr(34) * 3)[-2]))} routes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
