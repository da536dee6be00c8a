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
