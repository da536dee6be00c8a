"""Fixtures shared by the unit tests: a scheduler core on the test clock."""
from __future__ import annotations

import pytest

from litepipeline.manager.scheduler import SchedulerCore
from tests.unit.test_scheduler import Clock, node_up


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def n1_slots():
    """How many action slots node n1 of the ``core`` fixture registers with (a module may override it)."""
    return 2


@pytest.fixture
def core(clock, n1_slots):
    """A scheduler core on the test clock, with node n1 registered."""
    core = SchedulerCore(clock_fn=clock, monotonic=clock.mono, recovery_timeout=10, lost_grace=2)
    node_up(core, "n1", n1_slots, [], True)
    return core
