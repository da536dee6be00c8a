"""Idempotency keys in the store: claimed once, returned while younger than 24 hours."""
from __future__ import annotations

import datetime as dt

import pytest

from litepipeline.common.errors import InvalidParameters
from litepipeline.manager.idempotency import check_key
from litepipeline.manager.store.idempotency import claim, release
from tests.unit.test_store import store  # noqa: F401 - the fixture: SQLite and PostgreSQL

T0 = dt.datetime(2026, 1, 1, 12, 0, 0)




def test_claim_returns_the_first_record_for_24_hours(store):  # noqa: F811
    assert claim(store.engine, "k", "task-1", "app", T0) is None
    seen = claim(store.engine, "k", "task-2", "app", T0 + dt.timedelta(hours=23, minutes=59))
    assert (seen["task_id"], seen["application_id"]) == ("task-1", "app")
    assert claim(store.engine, "k", "task-3", "app", T0 + dt.timedelta(hours=24, seconds=1)) is None
    assert claim(store.engine, "k", "task-4", "app", T0 + dt.timedelta(hours=25))["task_id"] == "task-3"


def test_deleting_a_task_forgets_its_keys(store):  # noqa: F811
    """A retry after its task was deleted (task delete, task_retention) must not make that
    task again under the same id: the key goes with the task, in the same transaction."""
    from litepipeline.manager.store.history import delete_finished
    from litepipeline.manager.taskstate import Batch
    from tests.unit.test_store import task

    done = [task(f"t{i}", stage="finished") for i in range(3)]
    store.save(Batch(new_tasks=done))
    for i in range(3):
        claim(store.engine, f"k{i}", f"t{i}", "app-1", T0)
    store.delete_task("t0")
    assert delete_finished(store.engine, ["t1"]) == ["t1"]
    assert claim(store.engine, "k0", "new-0", "app-1", T0) is None   # forgotten: a new claim
    assert claim(store.engine, "k1", "new-1", "app-1", T0) is None
    assert claim(store.engine, "k2", "new-2", "app-1", T0)["task_id"] == "t2"   # its task is kept


def test_release_frees_a_key(store):  # noqa: F811
    claim(store.engine, "k", "task-1", "app", T0)
    release(store.engine, "k")
    assert claim(store.engine, "k", "task-2", "app", T0) is None


@pytest.mark.parametrize("key", ["", "a b", "é", "x" * 256, "tab\t"])
def test_bad_keys(key):
    with pytest.raises(InvalidParameters):
        check_key(key)


def test_good_keys():
    assert check_key("order-17/2026:01") == "order-17/2026:01"
