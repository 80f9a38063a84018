"""Property collection: which objects a FilterSpec selects (objectSet + traversal specs), which
property paths each one gets (propSet), and their values as cached XML fragments.

A value is serialised once per (object version, property path, API version) with pyvmomi's
serializer and reused until the object changes; responses (RetrievePropertiesEx, Fetch,
UpdateSets) are assembled from those fragments, which is what keeps 1,000-VM queries cheap.
Nothing here touches sockets or clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyVmomi import vmodl
from pyVmomi.SoapAdapter import XmlEscape
from pyVmomi.VmomiSupport import F_OPTIONAL

from . import soap
from .errors import InvalidArgument, ManagedObjectNotFound
from .registry import ManagedObjectBase, is_a, path_type, walk

TraversalSpec = vmodl.query.PropertyCollector.TraversalSpec


@dataclass
class ObjectResult:
    """One object's selected properties: (path, XML of the `val` element) in spec order."""

    mo: ManagedObjectBase
    props: list[tuple[str, str]] = field(default_factory=list)

    def xml(self, tag: str) -> str:
        parts = [f"<{tag}>", soap.moref_xml("obj", self.mo.type_name, self.mo.moid)]
        for path, val in self.props:
            if val:
                parts.append(f"<propSet><name>{XmlEscape(path)}</name>{val}</propSet>")
        parts.append(f"</{tag}>")
        return "".join(parts)


def read_path(mo: ManagedObjectBase, path: str):
    """A property path's value on an object (validated against its type); None when unset."""
    path_type(mo.vim_type, path)
    top, _, rest = path.partition(".")
    value = mo.read(top)
    return walk(value, rest.split(".")) if rest else value


def value_xml(mo: ManagedObjectBase, path: str, version: str) -> str:
    """`<val xsi:type=...>` for a DynamicProperty or PropertyChange; '' when unset."""

    def make():
        value = read_path(mo, path)
        if value is None:
            return ""
        return soap.serialize(value, "val", object, version, flags=F_OPTIONAL)

    return mo.cached_xml((path, version, "val"), make)


def fetch_xml(mo: ManagedObjectBase, prop: str, version: str) -> str:
    """The `returnval` of Fetch: the property with its declared type (pyvmomi's accessor)."""

    def make():
        declared = path_type(mo.vim_type, prop)
        value = read_path(mo, prop)
        if value is None:
            return ""
        return soap.serialize(value, "returnval", declared, version, flags=F_OPTIONAL)

    return mo.cached_xml((prop, version, "returnval"), make)


def _named_specs(selects, found: dict) -> None:
    for sel in selects or []:
        if isinstance(sel, TraversalSpec):
            if sel.name and sel.name not in found:
                found[sel.name] = sel
                _named_specs(sel.selectSet, found)
            elif not sel.name:
                _named_specs(sel.selectSet, found)


def select_objects(
    registry, spec, session_key: str | None, tolerant: bool = False
) -> list[ManagedObjectBase]:
    """The objects a FilterSpec's objectSet selects, each once, in traversal order.

    `tolerant`: an object that no longer exists is skipped (a filter whose task is gone)
    instead of answering ManagedObjectNotFound."""
    named: dict[str, TraversalSpec] = {}
    for ospec in spec.objectSet or []:
        _named_specs(ospec.selectSet, named)
    found: dict[str, ManagedObjectBase] = {}
    visited: set[tuple[str, int]] = set()

    def traverse(mo, selects):
        for sel in selects or []:
            ts = sel if isinstance(sel, TraversalSpec) else named.get(sel.name)
            if ts is None:
                raise InvalidArgument("selectSet", f"no traversal spec named {sel.name!r}")
            key = (mo.moid, id(ts))
            if key in visited:
                continue
            visited.add(key)
            if not is_a(mo.vim_type, ts.type):
                continue
            for child in _children(registry, mo, ts.path):
                if not ts.skip:
                    found.setdefault(child.moid, child)
                traverse(child, ts.selectSet)

    for ospec in spec.objectSet or []:
        try:
            mo = registry.find(ospec.obj, session_key)
        except ManagedObjectNotFound:
            if tolerant:
                continue
            raise
        if not ospec.skip:
            found.setdefault(mo.moid, mo)
        traverse(mo, ospec.selectSet)
    return list(found.values())


def _children(registry, mo, path: str) -> list:
    value = read_path(mo, path)
    if value is None:
        return []
    refs = value if isinstance(value, list) else [value]
    children = []
    for ref in refs:
        moid = getattr(ref, "_moId", None)
        child = registry.get(moid) if moid else None
        if child is not None:
            children.append(child)
    return children


def paths_for(mo: ManagedObjectBase, prop_specs) -> list[str] | None:
    """The property paths the propSet asks of this object; None if no spec names its type."""
    paths: list[str] | None = None
    for pspec in prop_specs or []:
        if not is_a(mo.vim_type, pspec.type):
            continue
        if paths is None:
            paths = []
        wanted = mo.property_names() if pspec.all else list(pspec.pathSet or [])
        for path in wanted:
            if path not in paths:
                paths.append(path)
    return paths


def collect(
    registry, spec, session_key: str | None, version: str, tolerant: bool = False
) -> list[ObjectResult]:
    """Objects and property XML for one FilterSpec."""
    results = []
    for mo in select_objects(registry, spec, session_key, tolerant):
        paths = paths_for(mo, spec.propSet)
        if paths is None:
            continue
        results.append(ObjectResult(mo, [(p, value_xml(mo, p, version)) for p in paths]))
    return results


def validate_prop_specs(spec) -> None:
    """Every path of every PropertySpec must exist on its type: InvalidProperty otherwise."""
    for pspec in spec.propSet or []:
        if pspec.type is None:
            raise InvalidArgument("propSet.type")
        for path in pspec.pathSet or []:
            path_type(pspec.type, path)
    if not spec.objectSet:
        raise InvalidArgument("objectSet")
