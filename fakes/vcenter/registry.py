"""The object registry: every managed object by moref id, their versions, and how a type declares
its SOAP methods and properties.

A managed-object class names its pyvmomi type (`vim_type`), registers its methods by their
SOAP name with `@soap_method("PowerOnVM_Task")`, and answers property `x` with a `prop_x()`
method. Values are built on demand and cached until the object is `touch()`ed, which also bumps
the registry version that the property collector's waiters watch. Session-scoped objects
(views, filters, collectors) carry their owner and are ids of the form `session[<key>]<hex>`,
as on a real vCenter.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pyVmomi import VmomiSupport

from .errors import InvalidProperty, ManagedObjectNotFound

if TYPE_CHECKING:
    from .sessions import Session

# The call being served, for the few properties whose value depends on the caller
# (SessionManager.currentSession, ViewManager.viewList).
current_call: contextvars.ContextVar[Call | None] = contextvars.ContextVar(
    "current_call", default=None
)


@dataclass
class Call:
    """One SOAP call as a handler sees it."""

    vcenter: Any  # models.VCenter
    session: Session | None
    version: str
    method: str
    client_ip: str = "127.0.0.1"
    user_agent: str = ""
    cookie_to_set: str | None = None


@dataclass(frozen=True)
class SoapMethod:
    name: str
    function: Callable
    locked: bool  # run under the registry lock (False: the handler locks what it needs)
    anonymous: bool  # callable without a session


def soap_method(name: str, *, locked: bool = True, anonymous: bool = False):
    """Register a handler under its SOAP method name: `handler(self, call, **params)`."""

    def mark(function):
        function._soap = (name, locked, anonymous)
        return function

    return mark


def typed_array(item_type, items=()) -> list:
    """A pyvmomi typed array (what the serializer needs to write `ArrayOfX` for an anyType)."""
    if not hasattr(item_type, "Array"):  # str, int, bool, long: pyvmomi's own array types
        array = VmomiSupport.GetVmodlType(VmomiSupport.GetVmodlName(item_type) + "[]")
        return array(list(items))
    return item_type.Array(list(items))


def refs(item_type, objects) -> list:
    return item_type.Array([o.ref for o in objects])


class ManagedObjectBase:
    """A managed object: a moref id, a pyvmomi type, versioned properties and SOAP methods."""

    vim_type: ClassVar[type] = VmomiSupport.ManagedObject
    soap_methods: ClassVar[dict[str, SoapMethod]] = {}
    # Properties whose value depends on the caller or on other objects: never cached.
    volatile: ClassVar[frozenset[str]] = frozenset()
    # Properties built from the others (summaries): dropped whenever anything is touched.
    derived: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        methods: dict[str, SoapMethod] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                marker = getattr(attr, "_soap", None)
                if marker:
                    name, locked, anonymous = marker
                    methods[name] = SoapMethod(name, attr, locked, anonymous)
        cls.soap_methods = methods

    def __init__(self, registry: Registry, moid: str, owner: str | None = None):
        self.registry = registry
        self.moid = moid
        self.owner = owner  # session key of a session-scoped object
        self.version = 0
        self._values: dict[str, Any] = {}
        self._xml: dict[tuple, str] = {}
        self.ref = self.vim_type(moid)

    @property
    def type_name(self) -> str:
        return self.vim_type._wsdlName

    def __repr__(self):
        return f"<{self.type_name}:{self.moid}>"

    # -- properties ---------------------------------------------------------------------------
    def touch(self, *names: str) -> None:
        """This object changed (only the named properties, if given): drop cached values,
        bump versions, wake property waiters."""
        self.version += 1
        if names:
            dirty = set(names) | self.derived
            for name in dirty:
                self._values.pop(name, None)
            for key in [k for k in self._xml if k[0].split(".", 1)[0] in dirty]:
                del self._xml[key]
        else:
            self._values.clear()
            self._xml.clear()
        self.registry.bump()

    def read(self, name: str):
        """The value of a top-level property (None when unset)."""
        if name in self.volatile:
            return self._build(name)
        try:
            return self._values[name]
        except KeyError:
            value = self._values[name] = self._build(name)
            return value

    def _build(self, name: str):
        getter = getattr(self, f"prop_{name}", None)
        return getter() if getter is not None else None

    def cached_xml(self, key: tuple, make: Callable[[], str]) -> str:
        if key[0].split(".", 1)[0] in self.volatile:
            return make()
        try:
            return self._xml[key]
        except KeyError:
            xml = self._xml[key] = make()
            return xml

    def property_names(self) -> list[str]:
        """Every property of the type (for PropertySpec.all)."""
        return property_names(self.vim_type)

    # Common to every ExtensibleManagedObject: no custom fields are defined in the lab.
    def destroyed(self) -> None:
        """Hook: the object left the registry."""


_PROPERTY_NAMES: dict[type, list[str]] = {}
_PATH_TYPES: dict[tuple[type, str], Any] = {}


def property_names(vim_type) -> list[str]:
    names = _PROPERTY_NAMES.get(vim_type)
    if names is None:
        names = []
        for klass in reversed(vim_type.__mro__):
            for name in getattr(klass, "_propInfo", {}):
                if name not in names:
                    names.append(name)
        _PROPERTY_NAMES[vim_type] = names
    return names


def path_type(vim_type, path: str):
    """The declared type at a property path of a managed type; InvalidProperty if none."""
    key = (vim_type, path)
    found = _PATH_TYPES.get(key)
    if found is not None:
        return found
    typ = vim_type
    for i, part in enumerate(path.split(".")):
        if i and issubclass(typ, list):
            raise InvalidProperty(path)
        try:
            info = typ._GetPropertyInfo(part)
        except (AttributeError, KeyError):
            raise InvalidProperty(path) from None
        typ = info.type
    _PATH_TYPES[key] = typ
    return typ


def walk(value, path_rest: list[str]):
    """Follow the rest of a property path through data objects; None when a step is unset."""
    for part in path_rest:
        if value is None:
            return None
        value = getattr(value, part, None)
    return value


class Registry:
    """All managed objects of one vCenter, one lock around all of them."""

    def __init__(self):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.version = 0
        self.structure_version = 0  # bumped when objects come or go (container views)
        self.objects: dict[str, ManagedObjectBase] = {}
        self.vcenter = None  # the VCenter this registry belongs to (set by it)

    def bump(self) -> None:
        with self.lock:
            self.version += 1
            self.changed.notify_all()

    def add(self, mo: ManagedObjectBase) -> ManagedObjectBase:
        with self.lock:
            self.objects[mo.moid] = mo
            self.structure_version += 1
            self.bump()
        return mo

    def remove(self, mo: ManagedObjectBase) -> None:
        with self.lock:
            if self.objects.pop(mo.moid, None) is not None:
                self.structure_version += 1
                mo.destroyed()
                self.bump()

    def get(self, moid: str) -> ManagedObjectBase | None:
        return self.objects.get(moid)

    def find(self, ref, session_key: str | None = None) -> ManagedObjectBase:
        """The object a moref names, as the caller may see it; ManagedObjectNotFound if not."""
        mo = self.objects.get(ref._moId)
        if (
            mo is None
            or not issubclass(mo.vim_type, type(ref))
            or (mo.owner is not None and mo.owner != session_key)
        ):
            raise ManagedObjectNotFound(ref)
        return mo

    def of_type(self, cls) -> list:
        return [o for o in self.objects.values() if isinstance(o, cls)]

    def owned_by(self, session_key: str) -> list[ManagedObjectBase]:
        return [o for o in self.objects.values() if o.owner == session_key]


def is_a(vim_type, type_name_or_type) -> bool:
    """Does a managed type match a spec's type (itself or a subtype)?"""
    if isinstance(type_name_or_type, str):
        try:
            other = VmomiSupport.GetWsdlType("urn:vim25", type_name_or_type)
        except KeyError:
            return False
    else:
        other = type_name_or_type
    return issubclass(vim_type, other)
