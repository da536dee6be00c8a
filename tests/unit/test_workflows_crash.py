"""A manager crash after any scheduling round of a work: the state rebuilt from the store
(SQLite, as the manager does at start) finishes the work the same way, no action run twice.

The rounds are driven here as the dispatcher drives them (events, controllers' ``step``,
``schedule``, one ``Store.save``, then the dispatches go out). A fake node runs each
dispatch at once and delivers its report in the next round, again after a restart until a
saved round acknowledged it, and lists the attempts it holds when it registers.
"""
from __future__ import annotations

import datetime as dt
import itertools
from types import SimpleNamespace

import pytest

from litepipeline.common.messages import HeldAttempt, Report
from litepipeline.common.appspec import ActionSpec, AppSpec
from litepipeline.manager.scheduler import SchedulerCore
from litepipeline.manager.store.store import Store, sqlite_url
from litepipeline.manager.store.workflows import WorkflowStore
from litepipeline.manager.taskstate import ActionState, TaskState
from litepipeline.manager.workflows import WorkState, new_work, spec_to_dict, validate_configuration
from litepipeline.manager.workservice import WorkService

T0 = dt.datetime(2026, 1, 1, 12, 0, 0)
TWO_STEPS = spec_to_dict(AppSpec([ActionSpec("first", "m"), ActionSpec("second", "m", ["first"])]))
CONFIG = validate_configuration({"applications": [
    {"name": "a", "app_id": "A"}, {"name": "b", "app_id": "B", "condition": ["a"]},
    {"name": "c", "app_id": "C", "condition": ["a"]}, {"name": "d", "app_id": "D", "condition": ["b", "c"]}],
    "event_applications": {"success": {"app_id": "E"}}}, lambda app_id: True)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


class Node:
    """Runs every dispatch at once; its reports wait until a saved round took them."""

    def __init__(self) -> None:
        self.runs: list = []          # (task_id, action name) of every attempt started
        self.reports: list = []       # finished, not yet acknowledged
        self.held: list = []          # attempts it would list when registering

    def run(self, payload: dict) -> None:
        self.runs.append((payload["task_id"], payload["name"]))
        data = {"action": payload["name"], "seen": sorted(k for k in payload["input_data"] if len(k) == 1)}
        self.reports.append({"task_id": payload["task_id"], "name": payload["name"], "node_id": "n1",
                             "attempt_id": payload["attempt_id"], "stage": "finished", "status": "success",
                             "returncode": 0, "result": {"data": data}})
        self.held.append({"attempt_id": payload["attempt_id"], "task_id": payload["task_id"],
                          "name": payload["name"]})

    def acknowledged(self, reports: list) -> None:
        ids = {r["attempt_id"] for r in reports}
        self.reports = [r for r in self.reports if r["attempt_id"] not in ids]
        self.held = [h for h in self.held if h["attempt_id"] not in ids]


class Manager:
    """The manager's scheduling state, built from the store as ``Manager.start`` builds it."""

    def __init__(self, store: Store, clock: Clock, node: Node) -> None:
        self.store, self.node = store, node
        self.core = SchedulerCore(clock_fn=clock, recovery_timeout=3600)
        self.works = WorkService(self.core, SimpleNamespace(controllers=[]), None, WorkflowStore(store.engine),
                                 None, None, 1 << 20)
        for task_row, action_rows in store.load_unfinished():
            task = TaskState.from_row(task_row)
            for row in action_rows:
                action = ActionState.from_row(row)
                task.actions[action.name] = action
            self.core.load(task)
        for row in self.works.store.load_unfinished_works():
            self.works.wcore.load(WorkState.from_row(row))
        self.round([lambda: self.core.node_up("n1", [HeldAttempt.parse(h) for h in node.held], True, 8)])

    def round(self, events: list) -> None:
        for event in events:
            event()
        self.works.step()
        dispatches = self.core.schedule()
        batch = self.core.take_batch()
        self.works.fill(batch)
        if batch:
            self.store.save(batch)
        for dispatch in dispatches:   # sent once the round is saved
            self.node.run(dispatch.message.to_dict())


def run_work(tmp_path, crash_after: set) -> tuple:
    tmp_path.mkdir(exist_ok=True)
    store = Store(sqlite_url(str(tmp_path)))
    store.migrate()
    clock, node = Clock(), Node()
    manager = Manager(store, clock, node)
    pinned = {app: {"sha1": app * 40, "spec": TWO_STEPS} for app in "ABCDE"}
    work = new_work("w1", "nightly", "wf1", CONFIG, pinned, {"x": 1}, T0)
    manager.round([lambda: manager.works.create_in_round(work)])
    for number in itertools.count():
        if number in crash_after:   # everything in memory is lost; the database file stays
            store.close()
            store = Store(sqlite_url(str(tmp_path)))
            manager = Manager(store, clock, node)
        row = manager.works.store.get_work("w1")
        if row["stage"] == "finished" and not node.reports and not manager.core.tasks:
            break
        assert number < 100, "the work does not finish"
        reports = list(node.reports)
        core = manager.core
        manager.round([lambda r=r, core=core: core.report(Report.parse(r)) for r in reports])
        node.acknowledged(reports)
        clock.now += dt.timedelta(seconds=1)
    tasks, _ = store.list_tasks(0, 0, work_id="w1")
    store.close()
    return row, sorted(t["task_name"] for t in tasks), node.runs, number


def test_a_work_runs_through_the_rounds_without_a_crash(tmp_path):
    row, tasks, runs, rounds = run_work(tmp_path, set())
    assert rounds == 8   # the crash test below crashes after each of them
    assert (row["stage"], row["status"]) == ("finished", "success")
    assert tasks == ["nightly/a", "nightly/b", "nightly/c", "nightly/d", "nightly/event_success"]
    assert len(runs) == len(set(runs)) == 10
    assert row["entries"]["d"]["result"] == {"second": {"action": "second", "seen": []}}


@pytest.mark.parametrize("crash", list(range(8)) + ["every"])   # the work takes 8 rounds
def test_a_crash_after_any_round_ends_the_work_the_same_with_nothing_run_twice(tmp_path, crash):
    expected, expected_tasks, expected_runs, rounds = run_work(tmp_path / "ref", set())
    crash_after = set(range(rounds + 1)) if crash == "every" else {crash}
    row, tasks, runs, _ = run_work(tmp_path / "crash", crash_after)
    assert (row["stage"], row["status"]) == ("finished", "success")
    assert tasks == expected_tasks
    assert len(runs) == len(set(runs)) == len(expected_runs)   # no action of any entry ran twice
    assert {k: v["result"] for k, v in row["entries"].items()} == \
        {k: v["result"] for k, v in expected["entries"].items()}
