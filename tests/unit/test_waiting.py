"""Why a task's actions wait, in the pure core (no network, injected time)."""
from __future__ import annotations

import datetime as dt

from litepipeline.manager.scheduler import SchedulerCore
from litepipeline.manager.waiting import NO_NODE, waiting_for
from tests.unit.test_scheduler import T0, Clock, add, finish, make_task, node_up


def _core(clock):
    return SchedulerCore(clock_fn=clock, monotonic=clock.mono, recovery_timeout=10, lost_grace=2)


def test_no_node_registered():
    clock = Clock()
    core = _core(clock)
    add(core, make_task("t1", ("a", [])))
    assert core.schedule() == []
    assert waiting_for(core.tasks["t1"], core.nodes, clock(), clock.mono()) == NO_NODE
    assert NO_NODE.startswith("no node is registered")


def test_nothing_to_say_when_it_can_start_or_is_unknown():
    clock = Clock()
    core = _core(clock)
    node_up(core, "n1", 1, [], True)
    add(core, make_task("t1", ("a", []), ("b", ["a"])))
    assert waiting_for(core.tasks["t1"], core.nodes, clock(), clock.mono()) is None      # will be dispatched at once
    core.schedule()
    assert waiting_for(core.tasks["t1"], core.nodes, clock(), clock.mono()) is None      # a runs, b waits for a: normal
    assert waiting_for(None, core.nodes, clock(), clock.mono()) is None


def test_every_slot_busy():
    clock = Clock()
    core = _core(clock)
    node_up(core, "n1", 1, [], True)
    add(core, make_task("t1", ("a", [])))
    add(core, make_task("t2", ("x", []), ("y", [])))
    core.schedule()
    assert waiting_for(core.tasks["t2"], core.nodes, clock(), clock.mono()) == (
        "action(s) 'x', 'y' wait for a free slot: all 1 action slots of 1 node(s) are busy")


def test_refused_dispatch_is_named():
    clock = Clock()
    core = _core(clock)
    node_up(core, "n1", 1, [], True)
    add(core, make_task("t1", ("a", [])))
    (d,) = core.schedule()
    core.dispatch_failed(d.message.attempt_id, "n1", "HTTP 599: connection refused", node_full=False)
    reason = waiting_for(core.tasks["t1"], core.nodes, clock(), clock.mono())
    assert reason == ("action(s) 'a' wait: node(s) n1 refused or missed a dispatch just now, and no other "
                      "node has a free slot")
    clock.advance(5)   # the node is asked again; meanwhile the reason stays on the action
    assert waiting_for(core.tasks["t1"], core.nodes, clock(), clock.mono()) == (
        "action 'a' went back to pending: dispatch to node n1 failed: HTTP 599: connection refused")


def test_a_retry_waiting_for_its_time():
    clock = Clock()
    core = _core(clock)
    node_up(core, "n1", 1, [], True)
    add(core, make_task("t1", ("a", [], {"retries": 1, "retry_delay": 30})))
    (d,) = core.schedule()
    finish(core, d, status="fail")
    retry_at = (T0 + dt.timedelta(seconds=30)).strftime("%Y-%m-%d %H:%M:%S.%f")
    assert waiting_for(core.tasks["t1"], core.nodes, clock(), clock.mono()) == f"action 'a' is retried at {retry_at}: failed"
    clock.advance(31)
    assert waiting_for(core.tasks["t1"], core.nodes, clock(), clock.mono()) is None      # due now: dispatched at once
