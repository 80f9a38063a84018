"""ManagedEntity: what every inventory object shares (name, parent, status, recent tasks), and
the containment relation a ContainerView walks.

Not emulated: alarms, permissions and roles (everyone is an administrator: effectiveRole -1),
custom fields, tags.
"""

from __future__ import annotations

from collections import deque

from pyVmomi import vim

from .registry import ManagedObjectBase, refs, typed_array

GREEN = vim.ManagedEntity.Status.green


class ManagedEntity(ManagedObjectBase):
    vim_type = vim.ManagedEntity
    volatile = frozenset({"recentTask"})

    def __init__(self, registry, moid, name: str, parent: ManagedEntity | None = None):
        super().__init__(registry, moid)
        self.name = name
        self.parent = parent

    def contents(self) -> list[ManagedEntity]:
        """The entities this one contains, in the sense of a ContainerView."""
        return []

    def path(self) -> str:
        """The inventory path below the root folder, e.g. dc-onprem/vm/web01."""
        parts = []
        node = self
        while node is not None and node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return "/".join(reversed(parts))

    def prop_name(self):
        return self.name

    def prop_parent(self):
        return self.parent.ref if self.parent is not None else None

    def prop_overallStatus(self):
        return GREEN

    def prop_configStatus(self):
        return GREEN

    def prop_alarmActionsEnabled(self):
        return True

    def prop_effectiveRole(self):
        return typed_array(int, [-1])  # the administrator role

    def prop_declaredAlarmState(self):
        return typed_array(vim.alarm.AlarmState)

    def prop_triggeredAlarmState(self):
        return typed_array(vim.alarm.AlarmState)

    def prop_configIssue(self):
        return typed_array(vim.event.Event)

    def prop_customValue(self):
        return typed_array(vim.CustomFieldsManager.Value)

    def prop_value(self):
        return typed_array(vim.CustomFieldsManager.Value)

    def prop_availableField(self):
        return typed_array(vim.CustomFieldsManager.FieldDef)

    def prop_recentTask(self):
        tasks = self.registry.vcenter.tasks.recent(entity=self)
        return refs(vim.Task, tasks)


def walk_contents(start: ManagedEntity, recursive: bool) -> list[ManagedEntity]:
    """Entities under `start` (not itself), each once, in inventory order."""
    seen = {start.moid}
    found = []
    queue = deque(start.contents())
    while queue:
        entity = queue.popleft()
        if entity.moid in seen:
            continue
        seen.add(entity.moid)
        found.append(entity)
        if recursive:
            queue.extend(entity.contents())
    return found
