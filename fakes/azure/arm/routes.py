"""The route table: (HTTP method, path template) -> operationId, derived from OpenAPI documents.

A provider's table is built from its OpenAPI document (`paths`, one operationId per method),
so it cannot drift from the spec: every operation of the API surface is a row, implemented or
not. Extension routes (the lab's own, such as the provider channel) are added as rows too,
with their own operationIds. Matching follows ARM: path segments are case-insensitive,
parameters are URL-decoded, a trailing slash is ignored.

Rows derived from a document carry `source` = the document's title and version.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

_PARAM = re.compile(r"\{([^}/]+)\}")
HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head")


@dataclass(frozen=True)
class Route:
    method: str  # upper case
    template: str
    operation_id: str
    source: str = ""
    long_running: bool = False
    pageable: bool = False
    pattern: re.Pattern = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    params: tuple[str, ...] = ()
    literal_segments: int = 0  # for precedence: more literal segments win
    # The api-versions this route accepts; empty: the provider's (ProviderMount.api_versions).
    api_versions: tuple[str, ...] = ()


def _compile(template: str) -> tuple[re.Pattern, tuple[str, ...], int]:
    parts = template.strip("/").split("/")
    regex, names, literals = [], [], 0
    for part in parts:
        pos, seg = 0, ""
        for m in _PARAM.finditer(part):
            seg += re.escape(part[pos : m.start()])
            names.append(m.group(1))
            seg += f"(?P<p{len(names) - 1}>[^/]+)"
            pos = m.end()
        seg += re.escape(part[pos:])
        if not _PARAM.search(part):
            literals += 1
        regex.append(seg)
    return re.compile("^/" + "/".join(regex) + "/?$", re.IGNORECASE), tuple(names), literals


def make_route(method: str, template: str, operation_id: str, **kw) -> Route:
    pattern, names, literals = _compile(template)
    return Route(
        method.upper(),
        template,
        operation_id,
        pattern=pattern,
        params=names,
        literal_segments=literals,
        **kw,
    )


@dataclass
class Match:
    route: Route
    params: dict[str, str]


class RouteTable:
    """Rows of (method, template, operationId); `match` finds the row for a request."""

    def __init__(self, routes: list[Route] | None = None):
        self._routes: list[Route] = []
        for r in routes or []:
            self.add(r)

    @classmethod
    def from_openapi(cls, document: dict) -> RouteTable:
        info = document.get("info", {})
        source = f"{info.get('title', 'OpenAPI')} {info.get('version', '')}".strip()
        table = cls()
        for template, item in document["paths"].items():
            for method in HTTP_METHODS:
                op = item.get(method)
                if op is None:
                    continue
                table.add(
                    make_route(
                        method,
                        template,
                        op["operationId"],
                        source=source,
                        long_running=bool(op.get("x-ms-long-running-operation")),
                        pageable="x-ms-pageable" in op,
                    )
                )
        return table

    def add(self, route: Route) -> None:
        self.extend([route])

    def extend(self, routes: list[Route]) -> None:
        """Add rows, sorting once (a table of a thousand rows is built in milliseconds)."""
        known = {r.operation_id for r in self._routes}
        for route in routes:
            if route.operation_id in known:
                raise ValueError(f"operationId {route.operation_id} appears twice")
            known.add(route.operation_id)
        self._routes.extend(routes)
        # Most literal segments first, so `.../replicationJobs/export` beats `{jobName}`.
        self._routes.sort(key=lambda r: (-r.literal_segments, r.template.count("/") * -1))

    def __iter__(self):
        return iter(self._routes)

    def __len__(self) -> int:
        return len(self._routes)

    def operation_ids(self) -> set[str]:
        return {r.operation_id for r in self._routes}

    def by_operation(self, operation_id: str) -> Route:
        for r in self._routes:
            if r.operation_id == operation_id:
                return r
        raise KeyError(operation_id)

    def match(self, method: str, path: str) -> Match | None:
        """The row for this request, or None. `methods_at(path)` tells a 405 from a 404."""
        method = method.upper()
        for r in self._routes:
            if r.method != method:
                continue
            m = r.pattern.match(path)
            if m:
                values = [urllib.parse.unquote(v) for v in m.groups()]
                return Match(r, dict(zip(r.params, values)))
        return None

    def methods_at(self, path: str) -> list[str]:
        return sorted({r.method for r in self._routes if r.pattern.match(path)})
