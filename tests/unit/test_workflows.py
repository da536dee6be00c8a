"""Workflows: configuration validation and the work state machine, without network or sleep."""
from __future__ import annotations

import datetime as dt
import itertools
from types import SimpleNamespace

import pytest

from litepipeline.common.messages import Report
from litepipeline.common.appspec import ActionSpec, AppSpec, parse_configuration
from litepipeline.common.errors import InvalidApplication, InvalidParameters, OperationFailed
from litepipeline.manager.scheduler import Dispatch, SchedulerCore
from litepipeline.manager.taskstate import DAG, ActionState, Batch, TaskState
from litepipeline.manager.workflows import (
    CreateTask,
    StopTask,
    WorkCore,
    WorkState,
    build_task,
    entry_result,
    new_work,
    spec_to_dict,
    validate_configuration,
)
from litepipeline.manager.workservice import WorkService, parse_enable

T0 = dt.datetime(2026, 1, 1, 12, 0, 0)
APPS = {"A", "B", "C", "D", "OK", "KO"}
SPEC = spec_to_dict(AppSpec([ActionSpec("main", "python3 main.py")]))


def config(*entries: tuple, events: dict | None = None) -> dict:
    raw = {"applications": [{"name": n, "app_id": a, "condition": list(c)} for n, a, c in entries]}
    if events is not None:
        raw["event_applications"] = events
    return raw


DIAMOND = config(("a", "A", []), ("b", "B", ["a"]), ("c", "C", ["a"]), ("d", "D", ["b", "c"]),
                 events={"success": {"app_id": "OK"}, "fail": {"app_id": "KO"}})


def validated(raw: dict) -> dict:
    return validate_configuration(raw, APPS.__contains__)


# -- validation ---------------------------------------------------------------------------


def test_valid_configuration_is_normalised():
    raw = {"applications": [{"name": "a", "app_id": "A"}, {"name": "b", "app_id": "B", "condition": ["a"]}]}
    assert validated(raw) == {"applications": [{"name": "a", "app_id": "A", "condition": []},
                                               {"name": "b", "app_id": "B", "condition": ["a"]}],
                              "event_applications": {}}
    assert validated(DIAMOND)["event_applications"] == {"success": {"app_id": "OK"}, "fail": {"app_id": "KO"}}


@pytest.mark.parametrize("raw, message", [
    ([], "configuration must be a JSON object"),
    ({"applications": [], "extra": 1}, "unknown key(s) 'extra'"),
    ({}, "'applications' must be a list"),
    ({"applications": []}, "'applications' is empty"),
    ({"applications": ["a"]}, "applications[0] must be a JSON object"),
    ({"applications": [{"name": "a", "app_id": "A", "conditon": []}]}, "unknown key(s) 'conditon'"),
    ({"applications": [{"app_id": "A"}]}, "name must be a non-empty string"),
    ({"applications": [{"name": "a/b", "app_id": "A"}]}, "must be a plain name"),
    ({"applications": [{"name": "a"}]}, "'a': 'app_id' must be a non-empty string"),
    (config(("a", "A", []), ("a", "B", [])), "duplicate application name 'a'"),
    ({"applications": [{"name": "a", "app_id": "A", "condition": "b"}]}, "condition must be a list"),
    (config(("a", "A", ["b"])), "'a' condition names unknown application entry 'b'"),
    (config(("a", "A", ["a"])), "'a' lists itself in its condition"),
    (config(("a", "A", ["b", "b"]), ("b", "B", [])), "'a' lists a condition twice"),
    (config(("a", "A", []), ("b", "B", ["a", "d"]), ("c", "C", ["b"]), ("d", "D", ["c"])),
     "applications form a cycle: b -> d -> c -> b"),
    (config(("a", "nope", [])), "application nope does not exist"),
    (config(("a", "A", []), events={"success": {"app_id": "nope"}}), "application nope does not exist"),
    (config(("a", "A", []), events={"done": {"app_id": "OK"}}), "unknown key(s) 'done'"),
    (config(("a", "A", []), events={"fail": "KO"}), "event_applications.fail must be a JSON object"),
    (config(("a", "A", []), events=[]), "'event_applications' must be a JSON object"),
])
def test_invalid_configurations_are_refused_with_the_rule(raw, message):
    with pytest.raises(InvalidParameters) as info:
        validated(raw)
    assert message in info.value.message


def test_output_action_is_parsed_and_checked():
    raw = b'{"actions": [{"name": "x", "main": "m"}, {"name": "y", "main": "m"}], "output_action": "x"}'
    assert parse_configuration(raw).output_action == "x"
    with pytest.raises(InvalidApplication, match="output_action names unknown action 'z'"):
        parse_configuration(b'{"actions": [{"name": "x", "main": "m"}], "output_action": "z"}')


def test_enable_accepts_booleans_and_015_strings():
    assert parse_enable("true", None) is True and parse_enable("false", True) is False
    assert parse_enable(None, True) is True and parse_enable(False, True) is False
    with pytest.raises(InvalidParameters):
        parse_enable("yes", None)


# -- the state machine --------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


def make_core() -> WorkCore:
    counter = itertools.count(1)
    return WorkCore(clock_fn=Clock(), new_id=lambda: f"t{next(counter)}")


def make_work(raw: dict = DIAMOND, input_data: dict | None = None, work_id: str = "w1") -> WorkState:
    conf = validated(raw)
    pinned = {app: {"sha1": f"sha-{app}", "spec": SPEC} for app in APPS}
    return new_work(work_id, "nightly", "wf1", conf, pinned, input_data or {"day": 1}, T0)


def ended(create: CreateTask, status: str = "success", data=None) -> TaskState:
    """The task of ``create`` as the scheduler hands it over when it ends."""
    task = build_task(create.task_id, create.task_name, create.app_id, create.sha1, create.spec,
                      create.input_data, create.work_id, T0)
    task.stage, task.status = "finished", status
    action = task.actions["main"]
    action.stage, action.status = "finished", status
    action.output = {"data": data if data is not None else {"from": create.entry}}
    return task


def by_entry(instructions) -> dict:
    return {i.entry: i for i in instructions if isinstance(i, CreateTask)}


def test_diamond_runs_entries_as_their_conditions_succeed_and_passes_results():
    core = make_core()
    work = make_work()
    first = by_entry(core.create(work))
    assert list(first) == ["a"]
    a = first["a"]
    assert (a.task_name, a.app_id, a.sha1, a.input_data) == ("nightly/a", "A", "sha-A", {"day": 1})
    assert work.stage == "running" and work.entries["a"]["stage"] == "running"
    new, changed = core.take_changes()
    assert new == [work] and changed == []
    second = by_entry(core.task_ended(ended(a, data={"rows": 3})))
    assert sorted(second) == ["b", "c"]
    assert second["b"].input_data == {"day": 1, "a": {"main": {"rows": 3}}}
    assert core.take_changes() == ([], [work])
    assert core.task_ended(ended(second["b"], data={"b": 1})) == []   # d still waits for c
    third = by_entry(core.task_ended(ended(second["c"], data={"c": 2})))
    assert list(third) == ["d"]
    assert third["d"].input_data == {"day": 1, "b": {"main": {"b": 1}}, "c": {"main": {"c": 2}}}
    last = core.task_ended(ended(third["d"]))
    assert work.stage == "finished" and work.status == "success" and work.end_at is not None
    assert [i.entry for i in last] == ["success"]
    event = last[0]
    assert event.event and event.app_id == "OK" and event.task_name == "nightly/event_success"
    assert event.input_data["work_id"] == "w1" and event.input_data["work_status"] == "success"
    assert event.input_data["day"] == 1 and set(event.input_data["results"]) == {"a", "b", "c", "d"}
    assert work.event_task_id == event.task_id
    assert work.entries["d"] == {"name": "d", "app_id": "D", "task_id": third["d"].task_id, "stage": "finished",
                                 "status": "success", "result": {"main": {"from": "d"}}}
    assert core.works == {} and core.by_task == {}
    assert core.task_ended(ended(event)) == []   # the event application's own end changes nothing


def test_a_failure_starts_nothing_new_lets_siblings_finish_and_runs_the_fail_event_once():
    core = make_core()
    work = make_work()
    a = by_entry(core.create(work))["a"]
    second = by_entry(core.task_ended(ended(a)))
    assert core.task_ended(ended(second["b"], "fail")) == []
    assert work.stage == "running" and work.entries["c"]["stage"] == "running"
    out = core.task_ended(ended(second["c"]))   # c succeeds, but d must not start
    assert [(i.entry, i.event) for i in out] == [("fail", True)]
    assert work.status == "fail" and work.entries["d"]["stage"] == "pending"
    assert out[0].input_data["results"] == {"a": {"main": {"from": "a"}}, "c": {"main": {"from": "c"}}}
    assert "'b' ended fail" in work.message
    assert core.task_ended(ended(second["c"])) == []   # a repeated end: no second event


def test_stop_stops_running_entries_and_ends_the_work_killed_without_event():
    core = make_core()
    work = make_work()
    a = by_entry(core.create(work))["a"]
    second = by_entry(core.task_ended(ended(a)))
    stops = core.stop("w1", -9)
    assert sorted(s.task_id for s in stops) == sorted([second["b"].task_id, second["c"].task_id])
    assert all(isinstance(s, StopTask) and s.signal == -9 for s in stops)
    assert work.stage == "stopping"
    assert core.task_ended(ended(second["b"], "kill")) == []
    assert core.task_ended(ended(second["c"])) == []   # nothing new, no event for a kill
    assert work.stage == "finished" and work.status == "kill" and work.entries["d"]["stage"] == "pending"
    with pytest.raises(OperationFailed):
        core.stop("w1", -15)


def test_recover_reruns_failed_and_unstarted_entries_keeping_results():
    core = make_core()
    work = make_work()
    a = by_entry(core.create(work))["a"]
    second = by_entry(core.task_ended(ended(a, data={"x": 1})))
    core.task_ended(ended(second["b"]))
    core.task_ended(ended(second["c"], "fail"))
    assert work.status == "fail"
    kept_b = work.entries["b"]["task_id"]
    stored = WorkState.from_row(work.to_row())   # as the manager reads it back
    again = by_entry(core.recover(stored))
    assert list(again) == ["c"] and again["c"].input_data == {"day": 1, "a": {"main": {"x": 1}}}
    assert stored.stage == "running" and stored.status is None and stored.entries["b"]["task_id"] == kept_b
    assert by_entry(core.task_ended(ended(again["c"])))["d"].input_data["c"] == {"main": {"from": "c"}}
    with pytest.raises(OperationFailed, match="wait for it to end"):
        core.recover(WorkState.from_row(stored.to_row()))


def test_recover_refuses_a_work_that_succeeded():
    core = make_core()
    work = make_work(config(("a", "A", [])))
    core.task_ended(ended(by_entry(core.create(work))["a"]))
    with pytest.raises(OperationFailed, match="only a failed or killed work"):
        core.recover(WorkState.from_row(work.to_row()))


def test_state_rebuilt_from_the_store_continues_where_it_stopped():
    core = make_core()
    work = make_work()
    a = by_entry(core.create(work))["a"]
    second = by_entry(core.task_ended(ended(a)))
    row = work.to_row()
    restarted = make_core()
    restarted.load(WorkState.from_row(row))
    assert restarted.task_ended(ended(second["b"])) == []
    assert list(by_entry(restarted.task_ended(ended(second["c"])))) == ["d"]


def test_entry_result_is_the_output_action_or_the_sinks():
    task = TaskState("t", "n", "A", "s", {}, "finished", T0, T0)
    for seq, (name, cond, to) in enumerate([("x", [], None), ("y", ["x"], None), ("z", [], None),
                                            ("gen", [], "z")]):
        action = ActionState.from_spec("t", ActionSpec(name, "m", cond, to_action=to), seq, DAG)
        action.stage, action.status, action.output = "finished", "success", {"data": {"n": name}}
        task.actions[name] = action
    assert entry_result(task, None) == {"y": {"n": "y"}, "z": {"n": "z"}}
    assert entry_result(task, "x") == {"n": "x"}


# -- in the scheduler's rounds ------------------------------------------------------------


def test_an_entry_end_and_the_next_entries_share_one_batch():
    """The round that records an entry's task end also holds the tasks it starts and the work."""
    core = SchedulerCore(clock_fn=lambda: T0)
    core.node_up("n1", [], True, 4)
    dispatcher = SimpleNamespace(controllers=[])
    service = WorkService(core, dispatcher, db=None, store=None, app_row=None, app_spec=None, max_input_size=1 << 20)
    assert dispatcher.controllers == [service]
    work = make_work(config(("a", "A", []), ("b", "B", ["a"])))
    service.create_in_round(work)
    service.step()
    [dispatch] = core.schedule()
    batch = core.take_batch()
    service.fill(batch)
    assert [t.task_name for t in batch.new_tasks] == ["nightly/a"] and batch.new_works == [work]
    assert batch.new_tasks[0].work_id == "w1"
    # a round: the node's report, then the controllers, then scheduling
    p = dispatch.message.to_dict()
    core.report(Report.parse({"task_id": p["task_id"], "name": p["name"], "attempt_id": p["attempt_id"], "node_id": "n1",
                 "stage": "finished", "status": "success", "returncode": 0, "result": {"data": {"v": 7}}}))
    assert service.step() == []
    dispatches = core.schedule()
    batch = core.take_batch()
    service.fill(batch)
    assert isinstance(dispatches[0], Dispatch) and dispatches[0].message.input_data == {"day": 1,
                                                                                            "a": {"main": {"v": 7}}}
    assert [t.task_name for t in batch.new_tasks] == ["nightly/b"]
    assert batch.tasks[p["task_id"]].status == "success"
    assert batch.works == [work] and work.entries["a"]["status"] == "success"
    assert isinstance(batch, Batch) and bool(batch)


def test_stopping_a_work_with_a_pending_task_ends_it_in_the_same_round():
    core = SchedulerCore(clock_fn=lambda: T0)   # no node: the first task stays pending
    service = WorkService(core, SimpleNamespace(controllers=[]), None, None, None, None, 1 << 20)
    work = make_work(config(("a", "A", []), ("b", "B", [])))
    service.create_in_round(work)
    core.take_batch()
    service.fill(Batch())
    stops = service._apply(service.wcore.stop("w1", -15))
    assert stops == []   # nothing was running on a node
    service.step()
    batch = core.take_batch()
    service.fill(batch)
    assert work.stage == "finished" and work.status == "kill"
    assert {t.status for t in batch.tasks.values()} == {"kill"} and batch.works == [work]


def test_a_task_of_an_unfinished_work_cannot_be_deleted_or_recovered_alone():
    core = SchedulerCore(clock_fn=lambda: T0)
    service = WorkService(core, SimpleNamespace(controllers=[]), None, None, None, None, 1 << 20)
    service.create_in_round(make_work(config(("a", "A", []))))
    row = {"task_id": "t", "work_id": "w1"}
    with pytest.raises(OperationFailed, match="part of unfinished work w1; delete the work"):
        service.check_task_change(row, "delete")
    service.check_task_change({"task_id": "t", "work_id": None}, "delete")
    service.check_task_change({"task_id": "t", "work_id": "other"}, "recover")
