"""Fault rules as data, in the shape of LocalStack's chaos API.

A rule names an operation (an exact name or a glob: `PowerOffVM_Task`, `ReplicationJobs_*`),
and answers it with an error, a delay, or both. Rules are tried in order and the first match
wins; `times` limits how often a rule fires, `probability` makes it fire sometimes. Each
service turns a matched error into its own protocol's shape (SOAP fault, ARM error JSON, ...).
"""

from __future__ import annotations

import fnmatch
import random
import threading
import time
from dataclasses import asdict, dataclass, field


class FaultRuleError(ValueError):
    """A fault rule that does not parse."""


@dataclass
class FaultError:
    status: int = 500
    code: str = "InternalError"
    message: str = "Injected fault"


@dataclass
class FaultRule:
    operation: str = "*"
    error: FaultError | None = None
    delay_ms: int = 0
    probability: float = 1.0
    times: int | None = None
    hits: int = field(default=0)

    @classmethod
    def parse(cls, data: dict) -> FaultRule:
        if not isinstance(data, dict):
            raise FaultRuleError("a fault rule is a JSON object")
        unknown = set(data) - {"operation", "error", "delay_ms", "probability", "times"}
        if unknown:
            raise FaultRuleError(f"unknown fields in fault rule: {', '.join(sorted(unknown))}")
        error = data.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise FaultRuleError("'error' must be an object with status, code, message")
            bad = set(error) - {"status", "code", "message"}
            if bad:
                raise FaultRuleError(f"unknown fields in fault error: {', '.join(sorted(bad))}")
            error = FaultError(**error)
            if not 400 <= int(error.status) <= 599:
                raise FaultRuleError("'error.status' must be an HTTP error status (400-599)")
        try:
            rule = cls(
                operation=str(data.get("operation", "*")),
                error=error,
                delay_ms=int(data.get("delay_ms", 0)),
                probability=float(data.get("probability", 1.0)),
                times=None if data.get("times") is None else int(data["times"]),
            )
        except (TypeError, ValueError) as exc:
            raise FaultRuleError(f"bad fault rule: {exc}") from exc
        if rule.error is None and rule.delay_ms <= 0:
            raise FaultRuleError("a fault rule needs an 'error', a 'delay_ms', or both")
        if not 0.0 <= rule.probability <= 1.0:
            raise FaultRuleError("'probability' must be between 0 and 1")
        if rule.delay_ms < 0 or rule.delay_ms > 600_000:
            raise FaultRuleError("'delay_ms' must be between 0 and 600000")
        return rule

    def matches(self, operation: str) -> bool:
        return fnmatch.fnmatchcase(operation, self.operation)

    def to_json(self) -> dict:
        data = asdict(self)
        if self.error is None:
            data.pop("error")
        return data


class FaultRules:
    """The fault rules of one service process; thread-safe."""

    def __init__(self, rng: random.Random | None = None):
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._rng = rng or random.Random()

    @staticmethod
    def parse_list(data) -> list[FaultRule]:
        if isinstance(data, dict):
            data = data.get("rules", [data] if data else [])
        if not isinstance(data, list):
            raise FaultRuleError('send a list of fault rules, or {"rules": [...]}')
        return [FaultRule.parse(item) for item in data]

    def replace(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules = list(rules)

    def extend(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules.extend(rules)

    def clear(self, operation: str | None = None) -> None:
        with self._lock:
            if operation is None:
                self._rules = []
            else:
                self._rules = [r for r in self._rules if r.operation != operation]

    def list(self) -> list[dict]:
        with self._lock:
            return [r.to_json() for r in self._rules]

    def match(self, operation: str) -> FaultRule | None:
        """The rule that fires for this call, if any (counts the hit)."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(operation):
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                rule.hits += 1
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                return rule
        return None

    def apply(self, operation: str) -> FaultError | None:
        """Sleep for a matching rule's delay; return its error, if it has one."""
        rule = self.match(operation)
        if rule is None:
            return None
        if rule.delay_ms:
            time.sleep(rule.delay_ms / 1000)
        return rule.error
