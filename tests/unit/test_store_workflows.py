"""Workflows and works in the store: a work step written with its tasks in one save, the queries."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import inspect

from litepipeline.manager.store.workflows import WorkflowStore
from litepipeline.manager.taskstate import Batch, TaskState
from litepipeline.manager.workflows import new_work
from tests.unit.test_store import store  # noqa: F401 - the SQLite / PostgreSQL fixture

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, 678901)
CONFIG = {"applications": [{"name": "a", "app_id": "app-1", "condition": []}], "event_applications": {}}


def make_work(work_id: str, workflow_id: str = "wf-1", name: str = "nightly"):
    pinned = {"app-1": {"sha1": "b" * 40, "spec": {"actions": [{"name": "m", "main": "true"}]}}}
    return new_work(work_id, name, workflow_id, CONFIG, pinned, {"k": 1}, NOW)


def entry_task(task_id: str, work_id: str) -> TaskState:
    return TaskState(task_id=task_id, task_name="nightly/a", application_id="app-1", app_sha1="b" * 40,
                     input_data={"k": 1}, stage="pending", create_at=NOW, update_at=NOW, work_id=work_id)


def test_migration_adds_the_tables_and_the_task_column(store):  # noqa: F811
    inspector = inspect(store.engine)
    assert {"workflows", "works"} <= set(inspector.get_table_names())
    assert "work_id" in {c["name"] for c in inspector.get_columns("tasks")}


def test_a_work_and_its_tasks_are_saved_together_and_updated(store):  # noqa: F811
    works = WorkflowStore(store.engine)
    work = make_work("w-1")
    work.stage = "running"
    work.entries["a"].update(task_id="t-1", stage="running")
    store.save(Batch(new_tasks=[entry_task("t-1", "w-1")], new_works=[work]))
    row = works.get_work("w-1")
    assert row["entries"]["a"]["task_id"] == "t-1" and row["pinned"]["app-1"]["sha1"] == "b" * 40
    assert store.get_task("t-1")["work_id"] == "w-1"
    rows, total = store.list_tasks(0, 0, work_id="w-1")
    assert total == 1 and rows[0]["task_id"] == "t-1"
    assert [r["work_id"] for r in works.load_unfinished_works()] == ["w-1"]
    assert works.pinned_versions_in_use() == {("app-1", "b" * 40)}
    work.entries["a"].update(stage="finished", status="success", result={"x": [1]})
    work.stage, work.status, work.end_at = "finished", "success", NOW
    store.save(Batch(works=[work]))
    row = works.get_work("w-1")
    assert (row["stage"], row["status"], row["entries"]["a"]["result"]) == ("finished", "success", {"x": [1]})
    assert works.load_unfinished_works() == [] and works.pinned_versions_in_use() == set()
    assert works.delete_work("w-1") == 1 and works.get_work("w-1") is None


def test_workflow_queries_and_busy_delete(store):  # noqa: F811
    works = WorkflowStore(store.engine)
    for i, name in enumerate(("etl", "etl-nightly", "other")):
        works.insert_workflow({"workflow_id": f"wf-{i}", "name": name, "description": "", "enable": i != 2,
                               "configuration": CONFIG, "create_at": NOW, "update_at": NOW})
    rows, total = works.list_workflows(0, 0)
    assert total == 3 and [r["name"] for r in rows] == ["other", "etl-nightly", "etl"]   # newest first
    assert [r["name"] for r in works.list_workflows(0, 0, name="etl*")[0]] == ["etl-nightly", "etl"]
    assert [r["name"] for r in works.list_workflows(0, 0, name="etl")[0]] == ["etl"]
    assert works.get_workflow("wf-2")["enable"] is False
    works.update_workflow("wf-2", {"enable": True})
    assert works.get_workflow("wf-2")["enable"] is True
    work = make_work("w-9", workflow_id="wf-0")
    store.save(Batch(new_works=[work]))
    assert works.delete_workflow_if_idle("wf-0") == (1, 0)
    assert works.list_works(0, 0, workflow_id="wf-0", stage="pending")[1] == 1
    work.stage = "finished"
    store.save(Batch(works=[work]))
    assert works.delete_workflow_if_idle("wf-0") == (0, 1) and works.get_workflow("wf-0") is None
