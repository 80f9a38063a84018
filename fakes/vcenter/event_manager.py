"""EventManager and EventHistoryCollector: the vCenter event log of power, reconfiguration,
creation and removal of VMs, and logins.

Events are pyvmomi event objects, kept in memory and in the vCenter's store, so they survive
a restart. QueryEvents filters by entity (with recursion), event type, time, user and chain id
and returns the newest first, `maxCount` of them. A collector (CreateCollectorForEvents) has a
`latestPage` (newest first) and reads older or newer events page by page.

Not emulated: PostEvent, alarms, event categories and descriptions (`description`),
RetrieveArgumentDescription, ExportEvents, audit events.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque

from pyVmomi import vim

from .entity import walk_contents
from .errors import InvalidArgument
from .registry import Call, ManagedObjectBase, current_call, soap_method, typed_array

KEEP = 5000
DEFAULT_PAGE = 10
SYSTEM_USER = "vpxd"


class EventManager(ManagedObjectBase):
    vim_type = vim.event.EventManager
    volatile = frozenset({"latestEvent"})

    def __init__(self, registry, moid, vcenter):
        super().__init__(registry, moid)
        self.vcenter = vcenter
        self.events: deque = deque(maxlen=KEEP)
        self._lock = threading.Lock()
        self._chains = itertools.count(1)

    # -- recording ----------------------------------------------------------------------------
    def load(self, events: list, next_key: int) -> None:
        self.events.extend(events)
        self._chains = itertools.count(max(next_key, self._last_key() + 1))

    def _last_key(self) -> int:
        return self.events[-1].key if self.events else 0

    def next_chain_id(self) -> int:
        with self._lock:
            return next(self._chains)

    def clear(self) -> None:
        with self._lock:
            self.events.clear()
        self.vcenter.store.clear_events()

    def post(self, event) -> None:
        with self._lock:
            event.key = next(self._chains)
            if not event.chainId:
                event.chainId = event.key
            self.events.append(event)
        self.vcenter.store.save_event(event)
        self.touch("latestEvent")

    @staticmethod
    def _user() -> str:
        call = current_call.get()
        return call.session.user if call is not None and call.session is not None else SYSTEM_USER

    def post_vm(self, vm, type_name: str, message: str, chain: int | None = None, **fields):
        dc = self.vcenter.datacenter_of(vm)
        cluster = vm.host.parent
        event = getattr(vim.event, type_name)(
            key=0,
            chainId=chain or 0,
            createdTime=self.vcenter.clock.now(),
            userName=self._user(),
            datacenter=vim.event.DatacenterEventArgument(name=dc.name, datacenter=dc.ref),
            computeResource=vim.event.ComputeResourceEventArgument(
                name=cluster.name, computeResource=cluster.ref
            ),
            host=vim.event.HostEventArgument(name=vm.host.name, host=vm.host.ref),
            vm=vim.event.VmEventArgument(name=vm.name, vm=vm.ref),
            fullFormattedMessage=message,
            template=False,
            **fields,
        )
        self.post(event)

    def post_login(self, session) -> None:
        self.post(
            vim.event.UserLoginSessionEvent(
                key=0,
                chainId=0,
                createdTime=self.vcenter.clock.now(),
                userName=session.user,
                fullFormattedMessage=(
                    f"User {session.user}@{session.ip} logged in as {session.user_agent or '-'}"
                ),
                ipAddress=session.ip,
                userAgent=session.user_agent,
                locale="en",
                sessionId=session.key,
            )
        )

    def post_logout(self, session) -> None:
        self.post(
            vim.event.UserLogoutSessionEvent(
                key=0,
                chainId=0,
                createdTime=self.vcenter.clock.now(),
                userName=session.user,
                fullFormattedMessage=f"User {session.user}@{session.ip} logged out",
                ipAddress=session.ip,
                userAgent=session.user_agent,
                callCount=session.calls,
                sessionId=session.key,
                loginTime=session.login_time,
            )
        )

    # -- queries ------------------------------------------------------------------------------
    def matching(self, spec) -> list:
        """Events a filter selects, oldest first."""
        with self._lock:
            events = list(self.events)
        if spec is None:
            return events
        if spec.entity is not None:
            wanted = self._entity_ids(spec.entity)
            events = [e for e in events if _entity_ids_of(e) & wanted]
        if spec.eventTypeId:
            names = set(spec.eventTypeId)
            events = [e for e in events if type(e)._wsdlName in names]
        if spec.type:
            types = tuple(spec.type)
            events = [e for e in events if isinstance(e, types)]
        if spec.eventChainId:
            events = [e for e in events if e.chainId == spec.eventChainId]
        if spec.time is not None:
            begin, end = spec.time.beginTime, spec.time.endTime
            events = [
                e
                for e in events
                if (begin is None or e.createdTime >= begin)
                and (end is None or e.createdTime <= end)
            ]
        if spec.userName is not None and spec.userName.userList:
            users = {u.lower() for u in spec.userName.userList}
            events = [e for e in events if (e.userName or "").lower() in users]
        return events

    def _entity_ids(self, by_entity) -> set[str]:
        entity = self.vcenter.registry.find(by_entity.entity)
        recursion = str(by_entity.recursion)
        ids = set()
        if recursion in ("self", "all"):
            ids.add(entity.moid)
        if recursion in ("children", "all"):
            below = walk_contents(entity, recursive=recursion == "all")
            ids.update(e.moid for e in below)
        return ids

    @soap_method("QueryEvents")
    def query_events(self, call: Call, filter):
        events = self.matching(filter)
        events.reverse()
        if filter is not None and filter.maxCount:
            events = events[: filter.maxCount]
        return typed_array(vim.event.Event, events)

    @soap_method("CreateCollectorForEvents")
    def create_collector(self, call: Call, filter):
        if filter is not None and filter.entity is not None:
            self.vcenter.registry.find(filter.entity.entity)
        collector = EventHistoryCollector(
            self.registry, self.vcenter.session_moid(call), call.session.key, self, filter
        )
        self.registry.add(collector)
        return collector.ref

    def prop_latestEvent(self):
        with self._lock:
            return self.events[-1] if self.events else None

    def prop_maxCollector(self):
        return 1000


def _entity_ids_of(event) -> set[str]:
    ids = set()
    for arg, attr in (
        ("vm", "vm"),
        ("host", "host"),
        ("computeResource", "computeResource"),
        ("datacenter", "datacenter"),
        ("ds", "datastore"),
        ("net", "network"),
    ):
        value = getattr(event, arg, None)
        ref = getattr(value, attr, None) if value is not None else None
        if ref is not None:
            ids.add(ref._moId)
    return ids


class EventHistoryCollector(ManagedObjectBase):
    vim_type = vim.event.EventHistoryCollector
    volatile = frozenset({"latestPage"})

    def __init__(self, registry, moid, owner, manager: EventManager, spec):
        super().__init__(registry, moid, owner)
        self.manager = manager
        self.spec = spec
        self.page_size = DEFAULT_PAGE
        self.position: int | None = None  # None: at the start of the latest page

    def _events(self) -> list:
        return self.manager.matching(self.spec)

    def _pos(self, events) -> int:
        if self.position is None:
            return max(0, len(events) - self.page_size)
        return min(self.position, len(events))

    def prop_filter(self):
        return self.spec

    def prop_latestPage(self):
        events = self._events()[-self.page_size :] if self.page_size else []
        return typed_array(vim.event.Event, list(reversed(events)))

    @soap_method("SetCollectorPageSize")
    def set_page_size(self, call: Call, maxCount):
        if maxCount < 0 or maxCount > 1000:
            raise InvalidArgument("maxCount")
        self.page_size = maxCount
        self.touch()

    @soap_method("ReadNextEvents")
    def read_next(self, call: Call, maxCount):
        if maxCount <= 0:
            raise InvalidArgument("maxCount")
        events = self._events()
        start = self._pos(events)
        page = events[start : start + maxCount]
        self.position = start + len(page)
        return typed_array(vim.event.Event, page)

    @soap_method("ReadPreviousEvents")
    def read_previous(self, call: Call, maxCount):
        if maxCount <= 0:
            raise InvalidArgument("maxCount")
        events = self._events()
        end = self._pos(events)
        start = max(0, end - maxCount)
        page = events[start:end]
        self.position = start
        return typed_array(vim.event.Event, list(reversed(page)))

    @soap_method("RewindCollector")
    def rewind(self, call: Call):
        self.position = 0

    @soap_method("ResetCollector")
    def reset(self, call: Call):
        self.position = None

    @soap_method("DestroyCollector")
    def destroy(self, call: Call):
        self.registry.remove(self)
