"""The web interface's keyset task pages, on SQLite and PostgreSQL (as the store tests)."""
from __future__ import annotations

import datetime as dt

from litepipeline.manager.store.tasks_page import task_page
from litepipeline.manager.taskstate import Batch, TaskState
from tests.unit.test_store import store  # noqa: F401 - the fixture: SQLite and PostgreSQL

T0 = dt.datetime(2026, 1, 2, 3, 4, 5)


def _fill(store, count: int) -> None:  # noqa: F811
    tasks = []
    for i in range(count):
        tasks.append(TaskState(task_id=f"t{i:04}", task_name=("nightly_50%" if i % 10 == 0 else f"job {i}"),
                               application_id="a1" if i % 2 else "a2", app_sha1="s" * 40, input_data={},
                               stage="finished" if i % 3 else "pending", status="success" if i % 3 else None,
                               create_at=T0, update_at=T0))
    store.save(Batch(new_tasks=tasks))


def test_pages_walk_every_task_once_newest_first(store):  # noqa: F811
    _fill(store, 125)
    seen, before = [], None
    while True:
        page = task_page(store.engine, before, 50)
        assert page["total"] == 125 and not page["total_capped"]
        seen += [r["task_id"] for r in page["rows"]]
        if not page["more"]:
            break
        before = page["rows"][-1]["id"]
    assert seen == [f"t{i:04}" for i in range(124, -1, -1)]


def test_filters_combine(store):  # noqa: F811
    _fill(store, 60)
    page = task_page(store.engine, None, 100, stage="pending", application_id="a2")
    assert {r["task_id"] for r in page["rows"]} == {f"t{i:04}" for i in range(60) if i % 3 == 0 and i % 2 == 0}
    page = task_page(store.engine, None, 100, status="success")
    assert page["total"] == len([i for i in range(60) if i % 3])


def test_name_filter_is_a_case_insensitive_substring_with_literal_wildcards(store):  # noqa: F811
    _fill(store, 40)
    assert task_page(store.engine, None, 100, name="NIGHTLY")["total"] == 4
    assert task_page(store.engine, None, 100, name="50%")["total"] == 4
    assert task_page(store.engine, None, 100, name="_")["total"] == 4   # only the names holding a "_"
    assert task_page(store.engine, None, 100, name="%")["total"] == 4
    assert task_page(store.engine, None, 100, name="job 3")["total"] == len(
        [i for i in range(40) if i % 10 and str(i).startswith("3")])


def test_count_is_capped(store, monkeypatch):  # noqa: F811
    import litepipeline.manager.store.tasks_page as module
    monkeypatch.setattr(module, "COUNT_CAP", 20)
    _fill(store, 30)
    page = task_page(store.engine, None, 5, name="job")   # a name filter counts rows
    assert page["total"] == 20 and page["total_capped"] and page["more"]
    page = task_page(store.engine, None, 5)   # the kept counts are exact, whatever the size
    assert page["total"] == 30 and not page["total_capped"] and page["more"]
