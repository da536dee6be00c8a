"""Task retention: the pure choice of what goes and when to look again, and one pass of the
driver over a real SQLite store (the nodes and the scheduler stubbed)."""
from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace

import pytest

from litepipeline.manager import retention
from litepipeline.manager.retention import Retention, RetentionPolicy
from litepipeline.manager.taskstate import ActionState, AttemptRecord, Batch, TaskState
from tests.unit.test_store import store  # noqa: F401 - the fixture: SQLite and PostgreSQL

NOW = dt.datetime(2026, 6, 1, 12, 0, 0)


def row(task_id, hours_ago, stage="finished", work_id=None):
    end = NOW - dt.timedelta(hours=hours_ago) if hours_ago is not None else None
    return {"task_id": task_id, "stage": stage, "end_at": end, "work_id": work_id}


def test_only_finished_tasks_past_the_age_and_not_kept_go():
    policy = RetentionPolicy(days=1)
    rows = [row("old", 25), row("young", 23), row("edge", 24), row("running", 30, stage="running"),
            row("no-end", None), row("service", 48), row("unfinished-work", 48, work_id="w1"),
            row("finished-work", 48, work_id="w2")]
    assert policy.choose(rows, NOW, keep_tasks={"service"}, keep_works={"w1"}) == ["old", "finished-work"]
    assert RetentionPolicy(days=0.5).choose([row("t", 13), row("u", 11)], NOW, set(), set()) == ["t"]
    assert not RetentionPolicy(0).enabled and RetentionPolicy(0.001).enabled


def test_the_next_pass_waits_for_the_oldest_task_left_to_reach_the_age():
    policy = RetentionPolicy(days=1)
    assert policy.next_delay(NOW, NOW - dt.timedelta(hours=23)) == 3600
    assert policy.next_delay(NOW, NOW - dt.timedelta(hours=23, minutes=50)) == 864   # at most 1 % late
    assert policy.next_delay(NOW, NOW - dt.timedelta(days=3)) == 864   # never spins
    assert policy.next_delay(NOW, None) == retention.MAX_DELAY     # a whole day, capped at an hour
    tiny = RetentionPolicy(days=10 / 86400)
    assert tiny.next_delay(NOW, None) == pytest.approx(10)
    assert tiny.next_delay(NOW, NOW - dt.timedelta(seconds=7)) == pytest.approx(3)
    assert tiny.next_delay(NOW, NOW - dt.timedelta(seconds=30)) == retention.MIN_DELAY


def test_batches_are_sized_to_keep_each_transaction_short():
    assert retention.batch_size(50, 0.1, 500) == 10        # 5x the target: a fifth (at least 10)
    assert retention.batch_size(100, 0.04, 500) == 50
    assert retention.batch_size(50, 0.001, 500) == 100     # fast: at most doubling
    assert retention.batch_size(400, 0.001, 500) == 500    # never above the largest
    assert retention.batch_size(10, 1.0, 500) == retention.MIN_BATCH
    assert retention.batch_size(3, 1.0, 3) == 3            # a largest below the smallest wins


class FakeManager:
    """What the driver uses of the Manager: store, db, dispatcher, core, works, services, workspaces."""

    def __init__(self, the_store):
        self.store = the_store
        self.closing = False
        self.asked = []   # (task_id, nodes) workspace deletes
        self.rounds = 0
        self.core = SimpleNamespace(tasks={})
        self.works = SimpleNamespace(wcore=SimpleNamespace(works={"w-open": object()}))
        self.services = SimpleNamespace(state=SimpleNamespace(services={"s": {"task_id": "t-service"}}))
        self.workspaces = SimpleNamespace(delete_on=self._delete_on)
        self.dispatcher = SimpleNamespace(submit=self._submit)

    async def db(self, fn, *args):
        return fn(*args)

    def _submit(self, fn):
        self.rounds += 1
        future = asyncio.get_running_loop().create_future()
        future.set_result(fn())
        return future

    async def _delete_on(self, task_id, node_ids):
        self.asked.append((task_id, frozenset(node_ids)))
        return []




def stored_task(task_id, hours_ago, stage="finished", work_id=None):
    end = NOW - dt.timedelta(hours=hours_ago)
    return TaskState(task_id=task_id, task_name=task_id, application_id="app", app_sha1="a" * 40, input_data={},
                     stage=stage, status="success" if stage == "finished" else None, create_at=end,
                     update_at=end, end_at=end if stage == "finished" else None, work_id=work_id)


def test_a_pass_deletes_old_tasks_in_batches_with_their_rows_and_workspaces(store):  # noqa: F811
    old = [stored_task(f"old{i}", 48 + i) for i in range(7)]
    kept = [stored_task("t-service", 100), stored_task("in-open-work", 100, work_id="w-open"),
            stored_task("recent", 1), stored_task("pending", 100, stage="pending")]
    actions = [ActionState(t.task_id, "a", "x") for t in old + kept]
    for a in actions:
        a.node_id = "node-1"
    attempts = [AttemptRecord(f"at-{t.task_id}", t.task_id, "a", 1, "node-2", NOW) for t in old + kept]
    store.save(Batch(new_tasks=old + kept, new_actions=actions, new_attempts=attempts))
    manager = FakeManager(store)
    manager.core.tasks["old6"] = object()   # being recovered: in the scheduler's memory
    driver = Retention(RetentionPolicy(days=1), manager, now=lambda: NOW, batch=3)

    assert asyncio.run(driver.run_once()) == 6
    left = {r["task_id"] for r in store.list_tasks(0, 0)[0]}
    assert left == {"old6", "t-service", "in-open-work", "recent", "pending"}
    assert store.list_tasks(0, 1)[1] == 5   # the kept count follows the deletes
    for task_id in ("old0", "old5"):
        assert store.get_actions(task_id) == [] and store.get_attempts(task_id) == []
    assert store.get_actions("recent") and store.get_attempts("recent")
    assert sorted(manager.asked) == [(f"old{i}", frozenset({"node-1", "node-2"})) for i in range(6)]
    assert manager.rounds == 3 and driver.retiring == set()   # 3 batches of 3 candidates: 7 old + 2 kept
    assert asyncio.run(driver.run_once()) == 0


def test_a_task_recovered_after_the_claim_is_not_deleted(store):  # noqa: F811
    """The delete re-checks the stage: a task that left 'finished' meanwhile stays."""
    from litepipeline.manager.store import history
    store.save(Batch(new_tasks=[stored_task("a", 48), stored_task("b", 48)]))
    b = stored_task("b", 48)
    b.stage, b.status, b.end_at = "running", None, None
    store.save(Batch(tasks={"b": b}))
    assert history.delete_finished(store.engine, ["a", "b"]) == ["a"]
    assert [r["task_id"] for r in store.list_tasks(0, 0)[0]] == ["b"]
