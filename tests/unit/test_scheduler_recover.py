"""``SchedulerCore.recover``: a failed or killed task runs again in place, as a pure state change."""
from __future__ import annotations

import copy

import pytest

from litepipeline.common.errors import OperationFailed
from litepipeline.manager.taskstate import EVENT
from tests.unit.test_scheduler import T0, add, finish, make_task, names


@pytest.fixture
def n1_slots():
    """Node n1 of the ``core`` fixture registers with 4 slots here."""
    return 4


def stored(core, task):
    """The task as the manager reads it back from the store after it ended (a copy, not the live object)."""
    assert task.task_id not in core.tasks
    core.take_batch()
    return copy.deepcopy(task)


def failed_task(core, clock):
    """a succeeds (generating g0, g1 aimed at c), b fails, c never runs; g0 succeeds, g1 is killed."""
    task = make_task("t1", ("a", []), ("b", []), ("c", ["a", "b"]), ("notify", [], {"kind": EVENT}),
                     on_fail="notify", input_data={"k": 1})
    add(core, task)
    da, db = sorted(core.schedule(), key=lambda d: d.message.name)
    generated = [{"name": f"g{i}", "main": "run g", "to_action": "c"} for i in range(2)]
    finish(core, da, data={"a": 1}, actions=generated)
    dg = {d.message.name: d for d in core.schedule()}
    assert set(dg) == {"g0", "g1"}
    finish(core, dg["g0"], data={"g": 0})
    clock.advance(5)
    finish(core, db, status="fail", returncode=3)      # kills g1, ends the task
    (dn,) = core.schedule()
    assert dn.message.name == "notify"
    finish(core, dn)
    return stored(core, task)


def test_recover_resets_what_did_not_succeed_and_keeps_outputs(core, clock):
    task = failed_task(core, clock)
    assert (task.stage, task.status) == ("finished", "fail")
    assert task.actions["g1"].status == "kill" and task.actions["c"].attempt == 0
    clock.advance(10)
    core.recover(task)
    batch = core.take_batch()
    # the task row and exactly the changed action rows are updates; nothing new, no attempt touched
    assert not batch.new_tasks and not batch.new_actions and not batch.new_attempts and not batch.attempts
    assert set(batch.tasks) == {"t1"}
    assert set(batch.actions) == {("t1", n) for n in ("b", "c", "g1", "notify")}
    row = batch.tasks["t1"]
    assert (row.stage, row.status, row.end_at, row.message, row.signal) == ("pending", None, None, None, None)
    for name in ("b", "g1", "notify"):
        action = batch.actions[("t1", name)]
        assert (action.stage, action.status, action.attempt_id, action.node_id, action.output, action.end_at,
                action.returncode, action.message) == ("pending", None, None, None, None, None, None, None)
        assert action.attempt == 1                                     # the counter is kept
    assert batch.actions[("t1", "c")].attempt == 0
    kept = core.tasks["t1"].actions
    assert (kept["a"].status, kept["a"].output["data"], kept["a"].attempt) == ("success", {"a": 1}, 1)
    assert (kept["g0"].status, kept["g0"].attempt) == ("success", 1)


def test_recovered_task_runs_only_the_rest_and_feeds_kept_outputs(core, clock):
    task = failed_task(core, clock)
    core.recover(task)
    ds = {d.message.name: d for d in core.schedule()}
    assert set(ds) == {"b", "g1"}                                      # a and g0 are not run again
    assert ds["b"].message.attempt == 2 and ds["b"].message.input_data == {"k": 1}
    assert ds["g1"].message.attempt == 2
    assert core.tasks["t1"].stage == "running" and core.tasks["t1"].start_at == clock.now
    batch = core.take_batch()
    assert [r.attempt for r in batch.new_attempts] == [2, 2]          # history grows, old rows stay
    finish(core, ds["b"], data={"b": 2})
    finish(core, ds["g1"], data={"g": 1})
    (dc,) = core.schedule()
    assert dc.message.input_data == {"a": {"a": 1}, "b": {"b": 2}, "g0": {"g": 0}, "g1": {"g": 1}}
    finish(core, dc)
    assert core.schedule() == []                                       # success: on_fail does not run
    batch = core.take_batch()
    assert (batch.tasks["t1"].stage, batch.tasks["t1"].status) == ("finished", "success")
    assert "t1" not in core.tasks


def test_recover_a_killed_task_and_fail_again_runs_on_fail_again(core, clock):
    task = make_task("t2", ("a", []), ("b", ["a"]), ("notify", [], {"kind": EVENT}), on_fail="notify")
    add(core, task)
    (da,) = core.schedule()
    core.stop_task("t2", -9)
    finish(core, da, status="kill")
    task = stored(core, task)
    assert task.status == "kill" and task.actions["notify"].attempt == 0
    core.recover(task)
    (da,) = core.schedule()
    assert da.message.attempt == 2
    finish(core, da, status="fail")
    assert names(core.schedule()) == ["notify"]
    assert core.tasks["t2"].status == "fail"


@pytest.mark.parametrize("stage, status", [("finished", "success"), ("running", None), ("pending", None)])
def test_recover_refuses_other_states(core, stage, status):
    task = make_task("t3", ("a", []))
    task.stage, task.status = stage, status
    with pytest.raises(OperationFailed):
        core.recover(task)
    assert "t3" not in core.tasks and not core.take_batch()


def test_recover_refuses_a_task_still_in_memory(core):
    task = make_task("t4", ("a", []), ("notify", [], {"kind": EVENT}), on_fail="notify")
    add(core, task)
    (da,) = core.schedule()
    finish(core, da, status="fail")
    (_notify,) = core.schedule()       # on_fail runs: the task is finished but still active
    copy_ = copy.deepcopy(core.tasks["t4"])
    with pytest.raises(OperationFailed, match="still active"):
        core.recover(copy_)


def test_recover_refuses_when_every_action_succeeded(core):
    task = make_task("t5", ("a", []))
    add(core, task)
    (da,) = core.schedule()
    finish(core, da)
    task = stored(core, task)
    task.status = "fail"               # e.g. marked failed while nothing was left to run
    with pytest.raises(OperationFailed, match="nothing to recover"):
        core.recover(task)
    assert task.create_at == T0
