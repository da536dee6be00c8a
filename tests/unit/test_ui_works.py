"""The web interface's works: the workflow and work pages' views and the ``work`` push topic."""
from __future__ import annotations

import asyncio
import json

from litepipeline.manager.taskstate import Batch
from litepipeline.manager.ui.push import ALL_WORKS, Hub, work_events
from litepipeline.manager.ui.views import entry_state, work_page, workflow_page
from litepipeline.manager.workflows import new_work
from tests.unit.test_scheduler import T0, make_task

DIAMOND = {"applications": [
    {"name": "a", "app_id": "A", "condition": []},
    {"name": "b", "app_id": "B", "condition": ["a"]},
    {"name": "c", "app_id": "C", "condition": ["a"]},
    {"name": "d", "app_id": "D", "condition": ["b", "c"]}],
    "event_applications": {"fail": {"app_id": "E"}}}


def work(work_id: str = "w1", **entries: dict):
    w = new_work(work_id, "nightly", "wf1", DIAMOND, {}, {"x": 1}, T0)
    for name, values in entries.items():
        w.entries[name].update(values)
    return w


def test_workflow_page_lays_entries_out_by_their_conditions():
    page = workflow_page({"workflow_id": "wf1", "name": "wf", "configuration": DIAMOND})
    assert [e["name"] for e in page["entries"]] == ["a", "b", "c", "d"]
    nodes = page["layout"]["nodes"]
    assert nodes["a"]["x"] < nodes["b"]["x"] == nodes["c"]["x"] < nodes["d"]["x"]   # left to right, by layer
    assert nodes["b"]["y"] != nodes["c"]["y"]
    assert sorted((e["from"], e["to"]) for e in page["layout"]["edges"]) == [
        ("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    assert page["events"] == [{"outcome": "fail", "app_id": "E"}]
    down = workflow_page({"configuration": DIAMOND}, down=True)["layout"]["nodes"]
    assert down["a"]["y"] < down["b"]["y"] < down["d"]["y"]


def test_entry_state_follows_its_task_until_the_entry_ends():
    running = {"stage": "running", "status": None, "task_id": "t1"}
    assert entry_state(running, {"stage": "pending", "status": None}, False) == "waiting"
    assert entry_state(running, {"stage": "running", "status": None}, False) == "running"
    assert entry_state(running, None, False) == "waiting"   # its task not read yet
    assert entry_state({"stage": "finished", "status": "success"}, {"stage": "running", "status": None},
                       False) == "success"
    assert entry_state({"stage": "finished", "status": "fail"}, None, True) == "failed"
    assert entry_state({"stage": "pending", "status": None}, None, False) == "waiting"
    assert entry_state({"stage": "pending", "status": None}, None, True) == "not-run"


def test_work_page_gives_each_entry_its_state_and_task():
    from litepipeline.manager.workservice import work_view

    w = work(a={"stage": "finished", "status": "success", "task_id": "ta"},
             b={"stage": "running", "task_id": "tb"}, c={"stage": "finished", "status": "fail", "task_id": "tc"})
    w.stage, w.status = "finished", "fail"
    tasks = [{"task_id": "tb", "task_name": "nightly/b", "application_id": "B", "create_at": T0, "start_at": T0,
              "end_at": None, "stage": "running", "status": None, "message": None}]
    page = work_page(work_view(w.to_row()), tasks)
    by_name = {e["name"]: e for e in page["entries"]}
    assert {n: e["state"] for n, e in by_name.items()} == {
        "a": "success", "b": "running", "c": "failed", "d": "not-run"}
    assert by_name["b"]["task_id"] == "tb" and by_name["b"]["start_at"]
    assert by_name["d"]["task_id"] is None and by_name["d"]["condition"] == ["b", "c"]
    assert page["work"]["state"] == "failed" and "configuration" not in page["work"]
    assert [t["task_id"] for t in page["tasks"]] == ["tb"]
    assert set(page["layout"]["nodes"]) == {"a", "b", "c", "d"}
    json.dumps(page)


def test_work_events_carry_the_work_and_its_moved_tasks_only_for_watchers():
    w1, w2 = work("w1", a={"stage": "running", "task_id": "t1"}), work("w2")
    t1 = make_task("t1", ("x", []), work_id="w1")
    t1.stage = "running"
    loose = make_task("t9", ("x", []))   # no work: never in a work event
    batch = Batch(new_tasks=[t1, loose], new_works=[w1], works=[w2])
    events = work_events(batch, {"w1"})
    assert list(events) == ["w1"]
    assert events["w1"]["work"]["entries"][0] == {"name": "a", "task_id": "t1", "stage": "running",
                                                  "status": None}
    assert events["w1"]["work"]["state"] == "waiting"
    assert [t["task_id"] for t in events["w1"]["tasks"]] == ["t1"]
    assert set(work_events(batch, {ALL_WORKS})) == {"w1", "w2"}
    assert work_events(batch, {"w3"}) == {}
    only_task = work_events(Batch(tasks={"t1": t1}), {"w1"})
    assert "work" not in only_task["w1"] and only_task["w1"]["tasks"][0]["state"] == "running"
    json.dumps(events)


def test_hub_routes_work_events_to_the_work_and_to_the_works_list():
    async def run():
        hub = Hub()
        one, other, every, tasks = (hub.subscribe("work", "w1"), hub.subscribe("work", "w2"),
                                    hub.subscribe("work"), hub.subscribe("task", "t1"))
        hub.publish(Batch(works=[work("w1")]))
        assert json.loads(one.take()[0][6:])["work"]["work_id"] == "w1"
        assert other.take() == [] and tasks.take() == []
        assert json.loads(every.take()[0][6:])["work_id"] == "w1"
        hub.unsubscribe(one)
        hub.unsubscribe(every)
        assert hub._by_work.keys() == {"w2"}
        hub.publish(Batch(works=[work("w1")]))
        assert other.take() == []
        hub.close()
        assert len(hub) == 0

    asyncio.run(run())


def test_a_task_page_names_its_work():
    from litepipeline.manager.ui.views import task_page

    row = {"id": 1, "task_id": "t1", "task_name": "nightly/a", "application_id": "A", "create_at": T0,
           "start_at": None, "end_at": None, "stage": "pending", "status": None, "message": None}
    assert task_page({**row, "work_id": "w1"}, [], [], lambda _: None)["task"]["work_id"] == "w1"
    assert task_page(row, [], [], lambda _: None)["task"]["work_id"] is None
