"""The VM power table: every action from every state, as a pure function."""

from __future__ import annotations

import pytest

from fakes.azure.compute.errors import OperationNotAllowed
from fakes.azure.compute.models.virtual_machines import POWER_STATES, Transition, plan


@pytest.mark.parametrize(
    ("action", "state", "expected"),
    [
        ("start", "stopped", Transition("start", "starting", "running", "boot")),
        ("start", "deallocated", Transition("start", "starting", "running", "boot")),
        ("start", "running", None),
        ("start", "starting", None),
        ("powerOff", "running", Transition("powerOff", "stopping", "stopped", "shutdown")),
        ("powerOff", "starting", Transition("powerOff", "stopping", "stopped", "shutdown")),
        ("powerOff", "stopped", None),
        ("powerOff", "deallocated", None),
        (
            "deallocate",
            "running",
            Transition("deallocate", "deallocating", "deallocated", "shutdown"),
        ),
        ("deallocate", "stopped", Transition("deallocate", "deallocating", "deallocated", "none")),
        ("deallocate", "deallocated", None),
        ("restart", "running", Transition("restart", "running", "running", "reboot")),
    ],
)
def test_transitions(action, state, expected):
    assert plan(action, state) == expected


def test_power_off_can_skip_the_shutdown():
    assert plan("powerOff", "running", skip_shutdown=True).guest == "power_off"


@pytest.mark.parametrize("state", ["stopped", "deallocated"])
def test_restart_needs_a_running_vm(state):
    with pytest.raises(OperationNotAllowed):
        plan("restart", state)


@pytest.mark.parametrize("action", ["start", "powerOff", "deallocate", "restart"])
@pytest.mark.parametrize("state", ["stopping", "deallocating"])
def test_nothing_while_stopping(action, state):
    with pytest.raises(OperationNotAllowed):
        plan(action, state)


def test_every_state_is_covered():
    for state in POWER_STATES:
        for action in ("start", "powerOff", "deallocate"):
            try:
                result = plan(action, state)
            except OperationNotAllowed:
                continue
            assert result is None or result.final in POWER_STATES
