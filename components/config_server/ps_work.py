"""Work the configuration server hands to its process servers (push installs), long-polled.

A process server asks for work (`claim`, waiting up to N seconds); each step it reports goes
to the item's `on_report` callback, which relays it to the vault's job. In memory: if the
configuration server restarts, the vault delivers its work item again and the work is queued
anew.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class PsWorkItem:
    process_server: str
    payload: dict
    on_report: Callable[[str, str, str | None], None]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    delivered: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    failed: str | None = None
    steps: list[tuple[str, str]] = field(default_factory=list)


class PsWorkQueue:
    def __init__(self):
        self._cond = threading.Condition()
        self._items: dict[str, PsWorkItem] = {}

    def put(self, process_server: str, payload: dict, on_report) -> PsWorkItem:
        item = PsWorkItem(process_server, payload, on_report)
        with self._cond:
            self._items[item.id] = item
            self._cond.notify_all()
        return item

    def claim(self, process_server: str, wait: float, stop: threading.Event) -> list[dict]:
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    stop.is_set()
                    or any(
                        i.process_server == process_server and not i.delivered
                        for i in self._items.values()
                    )
                ),
                timeout=wait,
            )
            out = []
            for item in self._items.values():
                if item.process_server == process_server and not item.delivered:
                    item.delivered = True
                    out.append({"id": item.id, **item.payload})
            return out

    def report(self, process_server: str, item_id: str, step: str, state: str, error) -> bool:
        with self._cond:
            item = self._items.get(item_id)
            if item is None or item.process_server != process_server:
                return False
        item.steps.append((step, state))
        item.on_report(step, state, error)
        if state == "Failed" or (step == "Push install" and state == "Succeeded"):
            item.failed = error if state == "Failed" else None
            item.done.set()
            with self._cond:
                self._items.pop(item_id, None)
        return True

    def cancel(self, item: PsWorkItem) -> None:
        with self._cond:
            self._items.pop(item.id, None)

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
