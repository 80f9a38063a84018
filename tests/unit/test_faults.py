import random

import pytest

from lab.kit.faults import FaultRuleError, FaultRules


def test_first_matching_rule_wins_and_times_runs_out():
    rules = FaultRules()
    rules.replace(
        FaultRules.parse_list(
            [
                {"operation": "PowerOffVM_Task", "error": {"status": 500, "code": "A"}, "times": 1},
                {"operation": "Power*", "error": {"status": 503, "code": "B"}},
            ]
        )
    )
    assert rules.apply("PowerOffVM_Task").code == "A"
    assert rules.apply("PowerOffVM_Task").code == "B"
    assert rules.apply("PowerOnVM_Task").code == "B"
    assert rules.apply("Login") is None


def test_probability_uses_the_random_source():
    rules = FaultRules(rng=random.Random(7))
    rules.replace(FaultRules.parse_list([{"error": {"status": 500}, "probability": 0.5}]))
    fired = sum(rules.apply("x") is not None for _ in range(200))
    assert 60 < fired < 140


def test_delay_only_rule_returns_no_error():
    rules = FaultRules()
    rules.extend(FaultRules.parse_list({"rules": [{"operation": "x", "delay_ms": 1}]}))
    assert rules.apply("x") is None
    assert rules.list()[0]["hits"] == 1


@pytest.mark.parametrize(
    "bad",
    [
        [{"operation": "x"}],
        [{"operation": "x", "error": {"status": 200}}],
        [{"operation": "x", "error": {"status": 500}, "probability": 2}],
        [{"operation": "x", "error": {"status": 500}, "colour": "red"}],
        [{"operation": "x", "error": "boom"}],
        "not a list",
    ],
)
def test_bad_rules_are_refused(bad):
    with pytest.raises(FaultRuleError):
        FaultRules.parse_list(bad)
