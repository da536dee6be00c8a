"""The scheduler core as a pure state machine: events in, instructions and batches out."""
from __future__ import annotations

import datetime as dt

import pytest

from litepipeline.common.appspec import ActionSpec
from litepipeline.common.errors import StaleAttempt, TaskNotExists
from litepipeline.common.messages import Heartbeat, Register, Report
from litepipeline.manager.scheduler import Dispatch, SchedulerCore, Stop
from litepipeline.manager.taskstate import EVENT, ActionState, TaskState

T0 = dt.datetime(2026, 1, 1, 12, 0, 0)


class Clock:
    """The wall clock (called) and the monotonic one (``mono``), moved together by ``advance``;
    ``step`` moves the wall clock alone (an NTP step, a DST change)."""

    def __init__(self) -> None:
        self.now = T0
        self.seconds = 1000.0

    def __call__(self) -> dt.datetime:
        return self.now

    def mono(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)
        self.seconds += seconds

    def step(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def node_up(core, node_id, slots, running, registering, draining=False):
    """A REGISTER (with ``slots``) or HEARTBEAT listing ``running`` (wire dicts)."""
    message = (Register if registering else Heartbeat).parse(
        {"http_port": 1, "action_slots": slots, "running": running, "draining": draining})
    return core.node_up(node_id, message.running, registering, slots, message.draining)


def report(core, data: dict):
    return core.report(Report.parse(data))


def make_task(task_id: str, *actions: tuple, input_data=None, **kwargs) -> TaskState:
    task = TaskState(task_id=task_id, task_name="t", application_id="app", app_sha1="sha", stage="pending",
                     input_data=input_data or {}, create_at=T0, update_at=T0, **kwargs)
    for seq, spec in enumerate(actions):
        name, condition = spec[0], spec[1]
        extra = spec[2] if len(spec) > 2 else {}
        kind = extra.pop("kind", "dag")
        task.actions[name] = ActionState.from_spec(task_id, ActionSpec(name, f"run {name}", list(condition),
                                                                       **extra), seq, kind)
    return task


def finish(core, d: Dispatch, status="success", data=None, actions=None, returncode=None, node=None):
    m = d.message
    return report(core, {"task_id": m.task_id, "name": m.name, "attempt_id": m.attempt_id,
                         "node_id": node or d.node_id, "stage": "finished", "status": status,
                         "returncode": 0 if status == "success" else (returncode or 1),
                         "result": {"data": data if data is not None else {"from": m.name},
                                    "actions": actions or []}})


def add(core, task: TaskState) -> None:
    """Add a task and consume the batch that records it, so later batches show updates."""
    core.add_task(task)
    core.take_batch()


def names(dispatches) -> list:
    return sorted(d.message.name for d in dispatches)


def test_dag_runs_in_order_and_passes_outputs(core):
    core.add_task(make_task("t1", ("first", []), ("second", []), ("third", ["first", "second"]),
                            input_data={"k": 1}))
    batch = core.take_batch()
    assert len(batch.new_tasks) == 1 and len(batch.new_actions) == 3
    ds = core.schedule()
    assert names(ds) == ["first", "second"]
    assert all(d.message.input_data == {"k": 1} for d in ds)
    assert core.tasks["t1"].stage == "running" and core.tasks["t1"].start_at == T0
    batch = core.take_batch()
    assert len(batch.new_attempts) == 2 and set(batch.actions) == {("t1", "first"), ("t1", "second")}
    assert core.schedule() == []          # both slots busy, third not ready
    finish(core, ds[0], data={"a": 1})
    assert core.schedule() == []          # third still waits for second
    finish(core, ds[1], data={"b": 2})
    (third,) = core.schedule()
    assert third.message.input_data == {"first": {"a": 1}, "second": {"b": 2}}
    assert third.message.attempt == 1 and third.message.app_sha1 == "sha"
    finish(core, third)
    assert "t1" not in core.tasks       # finished tasks leave memory
    batch = core.take_batch()
    assert batch.tasks["t1"].stage == "finished" and batch.tasks["t1"].status == "success"


def test_never_more_than_slots_and_spread_over_nodes(core):
    node_up(core, "n2", 2, [], True)
    for i in range(3):
        add(core, make_task(f"t{i}", ("a", []), ("b", [])))
    ds = core.schedule()
    assert len(ds) == 4
    per_node = {}
    for d in ds:
        per_node[d.node_id] = per_node.get(d.node_id, 0) + 1
    assert per_node == {"n1": 2, "n2": 2}
    assert [d.message.task_id for d in ds] == ["t0", "t0", "t1", "t1"]   # oldest task first
    assert core.schedule() == []
    finish(core, ds[0])
    (nxt,) = core.schedule()
    assert nxt.node_id == ds[0].node_id and nxt.message.task_id == "t2"


def test_failure_fails_task_and_stops_siblings(core):
    add(core, make_task("t1", ("a", []), ("b", []), ("c", ["a", "b"])))
    da, db = sorted(core.schedule(), key=lambda d: d.message.name)
    stops = finish(core, da, status="fail", returncode=3)
    assert stops == [Stop("n1", "t1", "b", db.message.attempt_id, -15)]
    batch = core.take_batch()
    task = batch.tasks["t1"]
    assert (task.stage, task.status) == ("finished", "fail")
    assert task.message == "action 'a' failed"
    assert batch.actions[("t1", "b")].status == "kill"
    assert ("t1", "c") not in batch.actions      # never ran, stays pending in the store
    with pytest.raises(StaleAttempt):
        finish(core, db)
    # the stopped action's slot is free again once its (refused) report came in
    assert core.nodes["n1"].free(core.mono()) == 2


def test_stale_and_duplicate_reports(core, clock):
    add(core, make_task("t1", ("a", []), ("b", ["a"])))
    (da,) = core.schedule()
    core.node_down("n1", "connection closed")
    node_up(core, "n2", 1, [], True)
    (again,) = core.schedule()
    assert again.node_id == "n2" and again.message.attempt == 2
    assert again.message.attempt_id != da.message.attempt_id
    with pytest.raises(StaleAttempt, match="is not current"):
        finish(core, da, node="n1")
    finish(core, again)
    (db,) = core.schedule()
    assert finish(core, again) == []       # repeated delivery of a recorded report: accepted, no effect
    assert core.tasks["t1"].actions["a"].attempt == 2
    finish(core, db)
    assert "t1" not in core.tasks
    with pytest.raises(StaleAttempt):
        finish(core, db)


def test_generated_actions_join_and_feed_to_action(core):
    node_up(core, "n1", 4, [], False)
    add(core, make_task("t1", ("first", []), ("third", ["first"])))
    (d1,) = core.schedule()
    gen = [{"name": f"second_{i}", "main": "python3 second.py", "input_data": {"i": i}, "to_action": "third"}
           for i in range(2)]
    finish(core, d1, data={"n": 2}, actions=gen)
    ds = core.schedule()
    assert names(ds) == ["second_0", "second_1"]
    assert {d.message.name: d.message.input_data for d in ds} == {"second_0": {"i": 0}, "second_1": {"i": 1}}
    for d in ds:
        finish(core, d, data={"sq": d.message.input_data["i"] ** 2})
    (d3,) = core.schedule()
    assert d3.message.input_data == {"first": {"n": 2}, "second_0": {"sq": 0}, "second_1": {"sq": 1}}
    finish(core, d3)
    assert "t1" not in core.tasks


@pytest.mark.parametrize("generated, message", [
    ([{"name": "first", "main": "x"}], "action name 'first' already exists in the task"),
    ([{"name": "../x", "main": "x"}], "must be a plain name"),
    ([{"name": "g", "main": "x", "condition": ["nope"]}], "condition names unknown action 'nope'"),
    ([{"name": "g1", "main": "x", "condition": ["g2"]}, {"name": "g2", "main": "x", "condition": ["g1"]}],
     "actions form a cycle"),
    ([{"name": "g", "main": "x", "to_action": "first"}], "to_action 'first' has already started"),
    ([{"name": "g", "main": "x", "to_action": "ghost"}], "to_action names unknown action 'ghost'"),
])
def test_bad_generated_actions_fail_the_generator(core, generated, message):
    add(core, make_task("t1", ("first", []), ("third", ["first"])))
    (d1,) = core.schedule()
    finish(core, d1, actions=generated)
    batch = core.take_batch()
    action = batch.actions[("t1", "first")]
    assert action.status == "fail"
    assert action.message.startswith("generated actions rejected: ") and message in action.message
    assert batch.tasks["t1"].status == "fail"
    assert batch.new_actions == [] or all(a.name in ("first", "third") for a in batch.new_actions)


def test_generated_action_limit(clock):
    core = SchedulerCore(clock_fn=clock, monotonic=clock.mono, max_generated_actions=2)
    node_up(core, "n1", 2, [], True)
    add(core, make_task("t1", ("first", [])))
    (d1,) = core.schedule()
    finish(core, d1, actions=[{"name": f"g{i}", "main": "x"} for i in range(3)])
    assert core.take_batch().actions[("t1", "first")].message == \
        "generated actions rejected: a task may generate at most 2 actions"


def test_stop_waits_for_nodes_then_kill(core):
    add(core, make_task("t1", ("a", []), ("b", []), ("c", ["a"])))
    da, db = sorted(core.schedule(), key=lambda d: d.message.name)
    stops = core.stop_task("t1", -9)
    assert sorted(s.name for s in stops) == ["a", "b"] and {s.signal for s in stops} == {-9}
    assert core.tasks["t1"].stage == "stopping"
    finish(core, da, status="kill", returncode=-9)
    assert core.tasks["t1"].stage == "stopping"
    assert core.schedule() == []      # nothing new starts while stopping
    finish(core, db, status="kill", returncode=-9)
    batch = core.take_batch()
    assert (batch.tasks["t1"].stage, batch.tasks["t1"].status) == ("finished", "kill")
    with pytest.raises(TaskNotExists):
        core.stop_task("t1", -15)


def test_stop_pending_task_finishes_at_once(core):
    node_up(core, "n1", 0 + 1, [], False)
    add(core, make_task("t1", ("a", [])))
    add(core, make_task("t2", ("a", [])))
    core.schedule()
    assert core.stop_task("t2", -15) == []
    assert core.take_batch().tasks["t2"].status == "kill"
    assert "t2" not in core.tasks
    with pytest.raises(TaskNotExists):
        core.stop_task("t2", -15)


def test_retries_with_backoff(core, clock):
    add(core, make_task("t1", ("a", [], {"retries": 2, "retry_delay": 1.0})))
    (d1,) = core.schedule()
    finish(core, d1, status="fail")
    assert core.tasks["t1"].stage == "running"
    assert core.schedule() == []
    assert core.next_wakeup() == 1
    clock.advance(1)
    (d2,) = core.schedule()
    assert d2.message.attempt == 2
    finish(core, d2, status="fail")
    assert core.next_wakeup() == 2     # doubled
    clock.advance(2)
    (d3,) = core.schedule()
    assert core.next_wakeup() is None and not core._retrying     # dispatched: nothing to wake for
    finish(core, d3, status="fail")
    batch = core.take_batch()
    assert batch.tasks["t1"].status == "fail"
    assert [a.status for a in batch.new_attempts] == ["fail", "fail", "fail"]
    assert core.next_wakeup() is None


def test_a_retry_loaded_from_the_store_wakes_the_scheduler(core, clock):
    task = make_task("t1", ("a", [], {"retries": 2, "retry_delay": 1.0}))
    task.stage = "running"
    task.actions["a"].attempt = 1
    task.actions["a"].retry_at = T0 + dt.timedelta(seconds=7)
    core.load(task)
    assert core.next_wakeup() == 7


def test_stop_cancels_pending_retry(core, clock):
    add(core, make_task("t1", ("a", [], {"retries": 3, "retry_delay": 5.0})))
    (d1,) = core.schedule()
    finish(core, d1, status="fail")
    core.stop_task("t1", -15)
    assert core.take_batch().tasks["t1"].status == "kill"
    clock.advance(10)
    assert core.schedule() == []


def test_node_lost_requeues_and_recovery(core, clock):
    add(core, make_task("t1", ("a", [])))
    (d1,) = core.schedule()
    # the node re-registers at once without the attempt: the dispatch may still be on its way
    assert node_up(core, "n1", 2, [], True) == []
    assert core.schedule() == []
    # ... but past the grace period, the node restarted and lost it: it is run again
    clock.advance(3)
    assert node_up(core, "n1", 2, [], True) == []
    (d2,) = core.schedule()
    assert d2.message.attempt == 2
    # a node holding an attempt the manager does not expect is told to stop it
    stops = node_up(core, "n1", 2, [{"task_id": "t1", "name": "a", "attempt_id": d1.message.attempt_id},
                                   {"task_id": "t1", "name": "a", "attempt_id": d2.message.attempt_id}], True)
    assert stops == [Stop("n1", "t1", "a", d1.message.attempt_id, -9)]
    # heartbeats that omit a fresh dispatch don't re-queue it within the grace period
    clock.advance(1)
    node_up(core, "n1", 2, [], False)
    assert core.tasks["t1"].actions["a"].attempt_id == d2.message.attempt_id
    clock.advance(5)
    node_up(core, "n1", 2, [], False)
    assert core.tasks["t1"].actions["a"].stage == "pending"


def test_restart_recovery_waits_for_nodes(clock):
    core = SchedulerCore(clock_fn=clock, monotonic=clock.mono, recovery_timeout=10)
    task = make_task("t1", ("a", []), ("b", []))
    task.stage = "running"
    a = task.actions["a"]
    a.stage, a.attempt, a.attempt_id, a.node_id, a.dispatched_at = "running", 1, "att-1", "n9", T0
    core.load(task)
    node_up(core, "n1", 1, [], True)
    (db,) = core.schedule()
    assert db.message.name == "b"
    clock.advance(5)
    core.tick()
    assert core.tasks["t1"].actions["a"].stage == "running"
    # node n9 comes back holding the attempt: it is kept and its report accepted
    node_up(core, "n9", 1, [{"task_id": "t1", "name": "a", "attempt_id": "att-1"}], True)
    report(core, {"task_id": "t1", "name": "a", "attempt_id": "att-1", "node_id": "n9", "stage": "finished",
                 "status": "success", "returncode": 0, "result": {"data": {}}})
    assert core.take_batch().attempts["att-1"].status == "success"


def test_restart_recovery_requeues_after_timeout(clock):
    core = SchedulerCore(clock_fn=clock, monotonic=clock.mono, recovery_timeout=10)
    task = make_task("t1", ("a", []))
    task.stage = "running"
    a = task.actions["a"]
    a.stage, a.attempt, a.attempt_id, a.node_id, a.dispatched_at = "running", 1, "att-1", "gone", T0
    core.load(task)
    node_up(core, "n1", 1, [], True)
    assert core.schedule() == []
    clock.advance(11)
    core.tick()
    (d,) = core.schedule()
    assert d.message.attempt == 2 and d.node_id == "n1"


def test_event_action_runs_after_failure(core):
    task = make_task("t1", ("a", []), ("notify", [], {"kind": EVENT}), on_fail="notify",
                     input_data={"notify": "ops@example.org"})
    add(core, task)
    (da,) = core.schedule()
    finish(core, da, status="fail")
    (dn,) = core.schedule()
    assert dn.message.name == "notify"
    assert dn.message.input_data["task_status"] == "fail"
    assert dn.message.input_data["task_id"] == "t1"
    assert dn.message.input_data["notify"] == "ops@example.org"     # the task's own input (SPEC §13a)
    finish(core, dn, status="fail")
    assert "t1" not in core.tasks
    batch = core.take_batch()
    assert batch.tasks["t1"].status == "fail"      # the event action's failure changes nothing


def test_stop_is_resent_after_a_restart(clock):
    core = SchedulerCore(clock_fn=clock, monotonic=clock.mono, recovery_timeout=10)
    task = make_task("t1", ("a", []))
    task.stage, task.signal = "stopping", -9
    a = task.actions["a"]
    a.stage, a.attempt, a.attempt_id, a.node_id, a.dispatched_at = "running", 1, "att-1", "n1", T0
    core.load(task)
    # the restarted manager never sent the stop: the node re-registering holding it hears it
    stops = node_up(core, "n1", 1, [{"task_id": "t1", "name": "a", "attempt_id": "att-1"}], True)
    assert stops == [Stop("n1", "t1", "a", "att-1", -9)]
    assert core.tick() == []                      # the sweep starts its clock
    clock.advance(6)
    assert core.tick() == [Stop("n1", "t1", "a", "att-1", -9)]


def test_after_restart_a_node_registering_without_an_attempt_lost_it(clock):
    """The dispatch was recorded, then the manager died before sending it (no grace needed)."""
    earlier = T0 - dt.timedelta(seconds=1)
    task = make_task("t1", ("a", []))
    task.stage = "running"
    a = task.actions["a"]
    a.stage, a.attempt, a.attempt_id, a.node_id, a.dispatched_at = "running", 1, "att-1", "n1", earlier
    core = SchedulerCore(clock_fn=clock, monotonic=clock.mono, recovery_timeout=10, lost_grace=2)
    core.load(task)
    node_up(core, "n1", 1, [], True)
    (d,) = core.schedule()
    assert (d.node_id, d.message.attempt) == ("n1", 2)


# -- faults found by review (each test failed before its fix) -----------------------------------
def test_a_draining_node_is_sent_nothing_new(core):
    node_up(core, "n1", 2, [], False, draining=True)      # SIGTERM'd: its heartbeat says so
    add(core, make_task("t1", ("a", [])))
    assert core.schedule() == []
    node_up(core, "n2", 1, [], True)
    (d,) = core.schedule()
    assert d.node_id == "n2"
    node_up(core, "n1", 2, [], True)                      # back, not draining
    add(core, make_task("t2", ("a", [])))
    (d,) = core.schedule()
    assert d.node_id == "n1"


def test_a_retry_delay_is_not_moved_by_a_wall_clock_step(core, clock):
    add(core, make_task("t1", ("a", [], {"retries": 1, "retry_delay": 5.0})))
    (d1,) = core.schedule()
    finish(core, d1, status="fail")
    clock.step(-3600)          # DST ends, or NTP steps the clock back an hour
    clock.advance(5)
    (d2,) = core.schedule()    # five seconds did pass: the retry is due
    assert d2.message.attempt == 2


def test_the_lost_grace_is_not_cut_by_a_wall_clock_step(core, clock):
    add(core, make_task("t1", ("a", [])))
    (d,) = core.schedule()
    clock.step(3600)           # the wall clock jumps an hour ahead
    node_up(core, "n1", 2, [], False)    # a heartbeat sent before the RUN arrived
    assert core.tasks["t1"].actions["a"].stage == "running"     # still in flight, not lost


def test_recovery_timeout_is_not_cut_by_a_wall_clock_step(clock):
    core = SchedulerCore(clock_fn=clock, monotonic=clock.mono, recovery_timeout=10)
    task = make_task("t1", ("a", []))
    task.stage = "running"
    action = task.actions["a"]
    action.stage, action.attempt, action.attempt_id, action.node_id = "running", 1, "att-1", "n9"
    core.load(task)
    clock.step(3600)
    core.tick()
    assert action.stage == "running"     # n9 still has its recovery_timeout to come back


class NoScan(dict):
    """The task table, refusing to be walked."""

    def values(self):
        raise AssertionError("walked every task")

    def items(self):
        raise AssertionError("walked every task")

    def __iter__(self):
        raise AssertionError("walked every task")


def test_a_heartbeat_costs_its_nodes_attempts_not_every_task(core, clock):
    node_up(core, "n2", 2, [], True)
    for i in range(50):
        add(core, make_task(f"t{i}", ("a", [])))
    ds = core.schedule()
    mine = [d for d in ds if d.node_id == "n2"]
    core.tasks = NoScan(core.tasks)
    held = [{"task_id": d.message.task_id, "name": "a", "attempt_id": d.message.attempt_id} for d in mine]
    assert node_up(core, "n2", 2, held, False) == []
    clock.advance(3)
    node_up(core, "n2", 2, held[:1], False)              # without one, past the grace: lost
    assert core.tasks[mine[1].message.task_id].actions["a"].stage == "pending"
    core.dispatch_failed(mine[0].message.attempt_id, "n2", "refused", True)
    assert core.tasks[mine[0].message.task_id].actions["a"].stage == "pending"


def test_only_a_register_says_how_many_slots_a_node_has(core):
    assert core.node_up("n7", [], False) == []          # a heartbeat of a node the core dropped
    assert "n7" not in core.nodes
    node_up(core, "n1", 3, [], True)
    core.node_up("n1", [], False)                        # heartbeats leave the slots alone
    assert core.nodes["n1"].slots == 3




def test_task_action_limit_counts_generated_actions(clock):
    core = SchedulerCore(clock_fn=clock, monotonic=clock.mono, max_generated_actions=100, max_actions=4)
    node_up(core, "n1", 2, [], True)
    add(core, make_task("t1", ("first", []), ("third", ["first"])))
    (d1,) = core.schedule()
    finish(core, d1, actions=[{"name": f"g{i}", "main": "x", "to_action": "third"} for i in range(3)])
    assert core.take_batch().actions[("t1", "first")].message == (
        "generated actions rejected: a task may hold at most 4 actions, generated ones included "
        "(2 + 3 generated)")


def test_upstream_names_uses_an_index_kept_current_as_actions_are_generated(core):
    from litepipeline.manager.scheduler import upstream_names

    add(core, make_task("t1", ("first", []), ("third", ["first"])))
    task = core.tasks["t1"]
    assert upstream_names(task, task.actions["third"]) == ["first"]
    (d1,) = core.schedule()
    finish(core, d1, actions=[{"name": f"g{i}", "main": "x", "to_action": "third"} for i in range(3)])
    assert upstream_names(task, task.actions["third"]) == ["first", "g0", "g1", "g2"]
    assert task.feeders() == {"third": ["g0", "g1", "g2"]}


def test_a_long_chain_schedules_in_linear_rounds(clock):
    # 10,000 actions in a chain: each round used to scan every action for each pending one
    # (10^8 steps); this test would take minutes before the to_action index
    core = SchedulerCore(clock_fn=clock, monotonic=clock.mono, max_actions=10_000)
    node_up(core, "n1", 2, [], True)
    n = 10_000
    add(core, make_task("t1", ("a0", []), *[(f"a{i}", [f"a{i - 1}"]) for i in range(1, n)]))
    for _ in range(3):
        (d,) = core.schedule()
        finish(core, d)
    assert [d.message.name for d in core.schedule()] == ["a3"]


def test_a_dropped_node_keeps_its_actions_until_its_lease_has_run_out(core, clock):
    add(core, make_task("t1", ("a", [])))
    (d,) = core.schedule()
    core.node_down("n1", "no heartbeat for 3s", hold=4.0)
    node_up(core, "n2", 2, [], True)
    clock.advance(3.9)
    core.tick()
    assert core.schedule() == [] and core.tasks["t1"].actions["a"].stage == "running"
    clock.advance(0.2)
    core.tick()
    (again,) = core.schedule()
    assert (again.node_id, again.message.name, again.message.attempt) == ("n2", "a", 2)


def test_a_dropped_node_that_comes_back_in_time_keeps_its_actions(core, clock):
    add(core, make_task("t1", ("a", [])))
    (d,) = core.schedule()
    core.node_down("n1", "connection closed", hold=4.0)
    clock.advance(1)
    node_up(core, "n1", 2, [{"task_id": "t1", "name": "a", "attempt_id": d.message.attempt_id}], True)
    clock.advance(10)
    core.tick()
    assert core.tasks["t1"].actions["a"].attempt_id == d.message.attempt_id


@pytest.mark.parametrize("state", ["reporting", "finished"])
def test_a_heartbeat_listing_an_attempt_whose_report_is_applied_frees_its_slot(core, state):
    """A heartbeat sent before the node had the report's answer still lists the attempt:
    its process has ended, so the slot is free and there is nothing to stop."""
    add(core, make_task("t1", ("a", [])))
    (d,) = core.schedule()
    finish(core, d)
    assert core.nodes["n1"].free(0) == 2
    held = [{"task_id": "t1", "name": "a", "attempt_id": d.message.attempt_id, "state": state}]
    assert node_up(core, "n1", 2, held, False) == []
    assert core.nodes["n1"].free(0) == 2
    # a process the manager does not expect that still runs is stopped, and holds its slot
    held[0]["state"] = "running"
    (stop,) = node_up(core, "n1", 2, held, False)
    assert stop.attempt_id == d.message.attempt_id and stop.signal == -9
    assert core.nodes["n1"].free(0) == 1
