"""PropertyCollector and PropertyFilter: reading properties in bulk and waiting for changes.

RetrieveProperties(Ex) select objects through traversal specs and page by `maxObjects`
(ContinueRetrievePropertiesEx, CancelRetrievePropertiesEx). CreateFilter + WaitForUpdates(Ex)
/ CheckForUpdates report enter/modify/leave object updates with real, increasing versions:
each filter remembers the XML of every property it last reported and sends what differs, so a
change anywhere (a task moving on, a VM powering off, a VM created or destroyed under a
container view) reaches the waiter. Filters and extra collectors belong to one session.

Not emulated: partialUpdates (changes are always whole properties), WaitForUpdatesEx
`maxObjectUpdates` beyond truncation at object granularity, RetrieveContents.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from pyVmomi import vmodl

from . import query, soap
from .errors import InvalidArgument, InvalidCollectorVersion, RequestCanceled
from .registry import Call, ManagedObjectBase, current_call, refs, soap_method

PropertyFilterType = vmodl.query.PropertyCollector.Filter
WAKE_SECONDS = 0.5  # a waiter re-checks for server stop / cancel this often
KEEP_VERSIONS = 32  # versions a client may still wait from (older: InvalidCollectorVersion)


@dataclass
class CollectorState:
    """One session's view of one collector: its filters, update version, result pages."""

    version: int = 0
    issued: deque = field(default_factory=lambda: deque(maxlen=KEEP_VERSIONS))
    filters: list = field(default_factory=list)
    pages: dict[str, tuple[list[str], int]] = field(default_factory=dict)
    cancelled: bool = False
    ended: bool = False


class PropertyCollector(ManagedObjectBase):
    vim_type = vmodl.query.PropertyCollector
    volatile = frozenset({"filter"})

    def __init__(self, registry, moid, vcenter, owner=None):
        super().__init__(registry, moid, owner)
        self.vcenter = vcenter
        self.states: dict[str | None, CollectorState] = {}

    def state(self, call: Call) -> CollectorState:
        key = call.session.key if call.session else None
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = CollectorState()
        return state

    def session_ended(self, session_key: str) -> None:
        state = self.states.pop(session_key, None)
        if state is not None:
            state.ended = True
            self.registry.bump()

    # -- retrieval ----------------------------------------------------------------------------
    def _retrieve(self, call: Call, specSet) -> list[query.ObjectResult]:
        results: list[query.ObjectResult] = []
        seen: dict[str, int] = {}
        key = call.session.key if call.session else None
        for spec in specSet:
            query.validate_prop_specs(spec)
            for item in query.collect(self.registry, spec, key, call.version):
                if item.mo.moid in seen:  # two specs selecting one object: merge
                    merged = results[seen[item.mo.moid]]
                    have = {p for p, _ in merged.props}
                    merged.props.extend(p for p in item.props if p[0] not in have)
                else:
                    seen[item.mo.moid] = len(results)
                    results.append(item)
        return results

    @soap_method("RetrieveProperties", anonymous=True)
    def retrieve_properties(self, call: Call, specSet):
        results = self._retrieve(call, specSet)
        return soap.RawXml("".join(r.xml("returnval") for r in results))

    @soap_method("RetrievePropertiesEx", anonymous=True)
    def retrieve_properties_ex(self, call: Call, specSet, options=None):
        results = [r.xml("objects") for r in self._retrieve(call, specSet)]
        limit = options.maxObjects if options is not None else None
        if limit is not None and limit < 0:
            raise InvalidArgument("maxObjects")
        return self._page(call, results, limit or None)

    def _page(self, call: Call, objects: list[str], limit: int | None):
        if not objects:
            return soap.RawXml("")
        token = ""
        if limit is not None and len(objects) > limit:
            token = uuid.uuid4().hex
            self.state(call).pages[token] = (objects[limit:], limit)
            objects = objects[:limit]
            token = f"<token>{token}</token>"
        return soap.RawXml(f"<returnval>{token}{''.join(objects)}</returnval>")

    @soap_method("ContinueRetrievePropertiesEx")
    def continue_retrieve(self, call: Call, token):
        page = self.state(call).pages.pop(token, None)
        if page is None:
            raise InvalidArgument("token", f"unknown or finished token {token!r}")
        objects, limit = page
        return self._page(call, objects, limit)

    @soap_method("CancelRetrievePropertiesEx")
    def cancel_retrieve(self, call: Call, token):
        if self.state(call).pages.pop(token, None) is None:
            raise InvalidArgument("token", f"unknown or finished token {token!r}")

    # -- filters ------------------------------------------------------------------------------
    @soap_method("CreateFilter")
    def create_filter(self, call: Call, spec, partialUpdates):
        query.validate_prop_specs(spec)
        query.select_objects(self.registry, spec, call.session.key)  # objects must exist
        pf = PropertyFilter(
            self.registry,
            self.vcenter.session_moid(call),
            call.session.key,
            self,
            spec,
            bool(partialUpdates),
        )
        self.registry.add(pf)
        self.state(call).filters.append(pf)
        return pf.ref

    def drop_filter(self, pf: PropertyFilter) -> None:
        state = self.states.get(pf.owner)
        if state is not None and pf in state.filters:
            state.filters.remove(pf)

    @soap_method("CreatePropertyCollector")
    def create_collector(self, call: Call):
        pc = PropertyCollector(
            self.registry, self.vcenter.session_moid(call), self.vcenter, owner=call.session.key
        )
        self.registry.add(pc)
        return pc.ref

    @soap_method("DestroyPropertyCollector")
    def destroy_collector(self, call: Call):
        if self.owner is None:
            raise InvalidArgument("_this", "the default property collector cannot be destroyed")
        for state in self.states.values():
            for pf in list(state.filters):
                self.registry.remove(pf)
            state.ended = True
        self.registry.remove(self)

    def prop_filter(self):
        call = current_call.get()
        state = self.states.get(call.session.key if call and call.session else None)
        return refs(PropertyFilterType, state.filters if state else [])

    # -- updates ------------------------------------------------------------------------------
    @soap_method("WaitForUpdatesEx", locked=False)
    def wait_for_updates_ex(self, call: Call, version=None, options=None):
        wait = options.maxWaitSeconds if options is not None else None
        most = options.maxObjectUpdates if options is not None else None
        return self._wait(call, version, wait, most, legacy=False)

    @soap_method("WaitForUpdates", locked=False)
    def wait_for_updates(self, call: Call, version=None):
        return self._wait(call, version, None, None, legacy=True)

    @soap_method("CheckForUpdates", locked=False)
    def check_for_updates(self, call: Call, version=None):
        return self._wait(call, version, 0, None, legacy=True)

    @soap_method("CancelWaitForUpdates")
    def cancel_wait(self, call: Call):
        self.state(call).cancelled = True
        self.registry.bump()

    def _wait(self, call: Call, version, max_wait, max_objects, legacy: bool):
        registry = self.registry
        deadline = None if max_wait is None else time.monotonic() + max(0, max_wait)
        with registry.lock:
            state = self.state(call)
            base = _version_number(version)
            if base is None or (base and base not in state.issued):
                raise InvalidCollectorVersion()
            state.cancelled = False
            while True:
                if state.ended or self.vcenter.stopping.is_set():
                    raise RequestCanceled()
                if state.cancelled:
                    state.cancelled = False
                    raise RequestCanceled()
                body = self._updates(call, state, base, max_objects)
                if body is not None:
                    return soap.RawXml(body)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    if legacy:  # WaitForUpdates/CheckForUpdates always answer an UpdateSet
                        return soap.RawXml(f"<returnval><version>{base}</version></returnval>")
                    return soap.RawXml("")
                seen = registry.version
                while registry.version == seen and not state.cancelled and not state.ended:
                    step = WAKE_SECONDS if remaining is None else min(WAKE_SECONDS, remaining)
                    registry.changed.wait(step)
                    if self.vcenter.stopping.is_set():
                        break
                    if remaining is not None:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break

    def _updates(self, call: Call, state: CollectorState, base: int, max_objects) -> str | None:
        """The UpdateSet from version `base` to a new version, or None when nothing changed."""
        filter_sets = []
        budget = max_objects if max_objects and max_objects > 0 else None
        truncated = False
        outcomes = []
        for pf in list(state.filters):
            updates, more, after = pf.changes(base, call.version, budget)
            outcomes.append((pf, after))
            truncated = truncated or more
            if updates:
                if budget is not None:
                    budget -= len(updates)
                filter_sets.append(
                    "<filterSet>"
                    + soap.moref_xml("filter", "PropertyFilter", pf.moid)
                    + "".join(updates)
                    + "</filterSet>"
                )
            if budget is not None and budget <= 0:
                truncated = True  # later filters wait for the next call
                break
        if not filter_sets:
            return None
        state.version += 1
        state.issued.append(state.version)
        for pf, after in outcomes:
            pf.remember(state.version, after)
        flag = "<truncated>true</truncated>" if truncated else ""
        return (
            f"<returnval><version>{state.version}</version>{''.join(filter_sets)}{flag}</returnval>"
        )


def _version_number(version) -> int | None:
    """'' or None -> 0 (the initial version); '7' -> 7; anything else -> None (invalid)."""
    if not version:
        return 0
    try:
        return int(version)
    except ValueError:
        return None


class PropertyFilter(ManagedObjectBase):
    vim_type = PropertyFilterType

    def __init__(self, registry, moid, owner, collector, spec, partial: bool):
        super().__init__(registry, moid, owner)
        self.collector = collector
        self.spec = spec
        self.partial = partial
        # What a client knows at each recent version: version -> {moid: (type, {path: XML})}.
        # Clients on one session may wait from different versions (pyVim's WaitForTask shares
        # the default collector with a script's own filter): each gets the changes since its own.
        self.snapshots: OrderedDict[int, dict[str, tuple[str, dict[str, str]]]] = OrderedDict()

    def remember(self, version: int, state: dict) -> None:
        self.snapshots[version] = state
        while len(self.snapshots) > KEEP_VERSIONS:
            self.snapshots.popitem(last=False)

    def changes(self, base: int, version: str, budget: int | None):
        """(ObjectUpdate XML since version `base`, whether some were held back, the state a
        client has after receiving them)."""
        known = self.snapshots.get(base, {}) if base else {}
        current = query.collect(self.registry, self.spec, self.owner, version, tolerant=True)
        after = dict(known)
        updates: list[str] = []
        held = False
        present = set()
        for item in current:
            moid = item.mo.moid
            present.add(moid)
            old = known.get(moid)
            if old is None:
                kind, changed = "enter", [(p, x) for p, x in item.props if x]
            else:
                changed = [(p, x) for p, x in item.props if old[1].get(p, "") != x]
                if not changed:
                    continue
                kind = "modify"
            if budget is not None and len(updates) >= budget:
                held = True
                continue
            after[moid] = (item.mo.type_name, dict(item.props))
            updates.append(_object_update(kind, item.mo.type_name, moid, changed))
        for moid, (type_name, _props) in known.items():
            if moid in present:
                continue
            if budget is not None and len(updates) >= budget:
                held = True
                break
            del after[moid]
            updates.append(_object_update("leave", type_name, moid, []))
        return updates, held, after

    def prop_spec(self):
        return self.spec

    def prop_partialUpdates(self):
        return self.partial

    @soap_method("DestroyPropertyFilter")
    def destroy(self, call: Call):
        self.collector.drop_filter(self)
        self.registry.remove(self)


def _object_update(kind: str, type_name: str, moid: str, changes) -> str:
    parts = [f"<objectSet><kind>{kind}</kind>", soap.moref_xml("obj", type_name, moid)]
    for path, val in changes:
        parts.append(f"<changeSet><name>{path}</name><op>assign</op>{val}</changeSet>")
    parts.append("</objectSet>")
    return "".join(parts)
