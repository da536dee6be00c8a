"""Leadership: the lease's decisions with a fake clock, its SQL and the store's fencing on a
real PostgreSQL (a database of each test's own, dropped after; skipped when there is none)."""
from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from sqlalchemy import select, text

from litepipeline.manager.leader import LeaseSql, is_postgres
from litepipeline.manager.leadership import Lease, LeaseRow, identity
from litepipeline.manager.store.store import TASKS, Deposed, Store
from litepipeline.manager.taskstate import Batch
from tests.pgdb import migrated_store
from tests.unit.test_store import task

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
ME = identity("me", "10.0.0.1", 8000, "10.0.0.1", 6001)
OTHER = identity("other", "10.0.0.2", 8000, "10.0.0.2", 6001)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def row(epoch: int, manager_id, expires_in: float, leader=None) -> LeaseRow:
    return LeaseRow(epoch, manager_id, leader, T0 + dt.timedelta(seconds=expires_in), T0)


# -- the pure core --------------------------------------------------------------------------
def test_a_standby_waits_while_the_lease_is_held_and_names_the_leader():
    lease = Lease("me", ttl=3, clock=Clock())
    assert not lease.should_take_over(row(4, "other", 1.5, OTHER))
    assert lease.leader == {**OTHER, "epoch": 4}
    assert not lease.leading and not lease.holds()


def test_an_expired_or_empty_lease_is_taken_over():
    lease = Lease("me", ttl=3, clock=Clock())
    assert lease.should_take_over(row(4, "other", 0, OTHER))        # expires_at == now: expired
    assert lease.leader is None                                        # nobody leads right now
    assert lease.should_take_over(row(0, None, -1e6))
    assert lease.should_take_over(row(7, None, 10))                   # released on a clean stop


def test_acquire_then_renew_keeps_the_lease_counted_from_the_send_time():
    clock = Clock()
    lease = Lease("me", ttl=3, clock=clock)
    lease.acquired(5, sent_at=clock.now - 0.5, leader=ME)
    assert lease.leading and lease.epoch == 5 and lease.leader["epoch"] == 5
    clock.now += 2.4
    assert lease.holds()
    clock.now += 0.2                                                  # 3.1 s after the send
    assert not lease.holds()
    lease.renewed(sent_at=clock.now - 0.1)
    assert lease.holds()
    clock.now += 2.8
    assert lease.holds()
    clock.now += 0.2
    assert not lease.holds()


def test_a_failed_renewal_deposes_only_once_the_lease_has_run_out():
    clock = Clock()
    lease = Lease("me", ttl=3, clock=clock)
    lease.acquired(2, clock.now, ME)
    clock.now += 1
    assert lease.renewal_failed("timeout") is None and lease.leading
    clock.now += 2
    reason = lease.renewal_failed("timeout")
    assert reason and "could not renew" in reason
    assert not lease.leading and not lease.holds()


def test_a_refused_renewal_or_fence_deposes_at_once_naming_the_new_leader():
    clock = Clock()
    lease = Lease("me", ttl=3, clock=clock)
    lease.acquired(2, clock.now, ME)
    reason = lease.renewal_refused(row(3, "other", 2, OTHER))
    assert "epoch 2 is over" in reason and "other" in reason and "10.0.0.2:8000" in reason
    assert not lease.holds()
    lease.renewed(clock.now)                                          # too late: stays deposed
    assert not lease.holds() and lease.deposed == reason
    other = Lease("me", ttl=3, clock=clock)
    other.acquired(2, clock.now, ME)
    assert "found epoch 3" in other.fence_failed(3) and not other.holds()


def test_renewals_come_sooner_as_the_lease_runs_low():
    clock = Clock()
    lease = Lease("me", ttl=3, clock=clock)
    lease.acquired(1, clock.now, ME)
    assert lease.next_renewal() == pytest.approx(1.0)
    clock.now += 2.7
    assert lease.next_renewal() == pytest.approx(0.1)


def test_only_postgresql_urls_have_leadership():
    assert is_postgres("postgresql+psycopg://u@h/db")
    assert not is_postgres("sqlite:////tmp/x.db") and not is_postgres(None) and not is_postgres("")


# -- the SQL, on a real PostgreSQL -----------------------------------------------------------
@pytest.fixture
def pg():
    with migrated_store("lp_lease") as pair:
        yield pair


def test_take_over_renew_expire_and_bump_the_epoch(pg):
    url, _store = pg
    a, b = LeaseSql(url, ttl=1.0), LeaseSql(url, ttl=1.0)
    try:
        first = a.read()
        assert first.epoch == 0 and first.expired
        assert a.take_over(first.epoch, "a", ME) == 1
        assert b.take_over(first.epoch, "b", OTHER) is None           # the epoch it saw is gone
        held = b.read()
        assert not held.expired and held.manager_id == "a" and held.leader["address"] == "10.0.0.1:8000"
        assert b.take_over(held.epoch, "b", OTHER) is None            # held: no take-over
        assert a.renew(1, "a") and not b.renew(1, "b")
        time.sleep(1.1)                                               # the database's clock runs out the lease
        expired = b.read()
        assert expired.expired
        assert b.take_over(expired.epoch, "b", OTHER) == 2
        assert not a.renew(1, "a")                                    # the deposed leader cannot renew
        a.release(1, "a")                                             # nor release what is not its own
        assert not b.read().expired
        b.release(2, "b")
        assert b.read().expired and b.read().epoch == 2
    finally:
        a.close()
        b.close()


def test_a_write_with_an_old_epoch_is_refused_and_nothing_is_written(pg):
    url, store = pg
    sql = LeaseSql(url, ttl=30)
    try:
        assert sql.take_over(0, "a", ME) == 1
        deposed = []
        store.fence(1, deposed.append)
        batch = Batch()
        batch.new_tasks.append(task("t-ok"))
        store.save(batch)                                             # epoch 1 is ours: written
        with store.engine.begin() as conn:                            # a Core write, fenced too
            conn.execute(TASKS.update().where(TASKS.c.task_id == "t-ok").values(task_name="renamed"))
        with sql.engine.connect() as conn:                            # another manager takes over
            conn.execute(text("UPDATE leadership SET epoch = 2, manager_id = 'b' WHERE id = 1"))
        batch = Batch()
        batch.new_tasks.append(task("t-late"))
        with pytest.raises(Deposed):
            store.save(batch)
        with pytest.raises(Deposed):
            with store.engine.begin() as conn:
                conn.execute(TASKS.update().where(TASKS.c.task_id == "t-ok").values(task_name="late"))
        with pytest.raises(Deposed):
            store.insert_app({"application_id": str(uuid.uuid4()), "name": "x", "description": "",
                              "sha1": "a" * 40, "create_at": T0, "update_at": T0})
        assert deposed == [2, 2, 2]
        with store.engine.connect() as conn:
            rows = conn.execute(select(TASKS.c.task_id, TASKS.c.task_name)).all()
        assert [tuple(r) for r in rows] == [("t-ok", "renamed")]
        assert store.get_task("t-ok") is not None                     # reads still work
    finally:
        sql.close()


# -- the node's list of managers -------------------------------------------------------------
def test_node_managers_parse_and_default_to_the_single_manager_keys():
    from litepipeline.common.config import config_from_dict, node_managers
    from litepipeline.common.errors import ConfigError

    config, _ = config_from_dict("node", {"managers": ["10.0.0.5:8000:6001", "[::1]:8001:6002"]})
    assert node_managers(config) == [("10.0.0.5", 8000, "10.0.0.5", 6001), ("::1", 8001, "::1", 6002)]
    single, _ = config_from_dict("node", {"manager_http_host": "h", "manager_tcp_host": "t"})
    assert node_managers(single) == [("h", 8000, "t", 6001)]
    for bad in (["10.0.0.5:8000"], ["h:x:6001"], ["h:8000:70000"], [":8000:6001"], [5], []):
        with pytest.raises(ConfigError, match="managers"):
            config_from_dict("node", {"managers": bad})
    with pytest.raises(ConfigError, match="must be a list"):
        config_from_dict("node", {"managers": "h:1:2"})


def test_the_driver_takes_over_a_dead_leaders_lease_and_deposes_a_leader_that_lost_it(pg):
    import asyncio

    from litepipeline.manager.leader import Leadership

    url, _store = pg

    async def scenario() -> tuple:
        deposed_a, deposed_b = [], []
        a = Leadership(url, ME, deposed_a.append, ttl=1.0, poll_interval=0.05)
        b = Leadership(url, OTHER, deposed_b.append, ttl=1.0, poll_interval=0.05)
        try:
            assert await a.wait_to_lead() == 1
            a.start_renewing()
            a.serving = True
            waiting = asyncio.ensure_future(b.wait_to_lead())
            await asyncio.sleep(2.5)                     # more than the ttl: renewals keep it a's
            assert not waiting.done() and a.lease.holds()
            assert b.view() == {"role": "standby", "leader": {**ME, "epoch": 1}}
            a._stop_renewing()                           # a dies without releasing
            assert await asyncio.wait_for(waiting, 5) == 2
            b.start_renewing()
            await asyncio.sleep(1.5)                     # a's own deadline has passed: it holds nothing
            assert not a.lease.holds() and deposed_a == []
            with b.sql.engine.connect() as conn:         # a third manager takes b's lease
                conn.execute(text("UPDATE leadership SET epoch = 3, manager_id = 'c' WHERE id = 1"))
            for _ in range(100):
                if deposed_b:
                    break
                await asyncio.sleep(0.05)
            return deposed_b, b.lease.holds()
        finally:
            a.close()
            b.close()

    deposed, holds = asyncio.run(scenario())
    assert len(deposed) == 1 and "epoch 2 is over" in deposed[0] and not holds


def test_the_new_leader_ends_the_deposed_leaders_sessions_and_their_locks(pg):
    from litepipeline.manager.leader import application_name

    url, store = pg
    old = Store(url, application_name("old"))
    sql = LeaseSql(url, ttl=30, name=application_name("new"))
    try:
        batch = Batch()
        batch.new_tasks.append(task("t-1"))
        store.save(batch)
        frozen = old.engine.connect()                     # a write left open, as a frozen leader leaves it
        frozen.execute(TASKS.update().where(TASKS.c.task_id == "t-1").values(task_name="never"))
        assert sql.end_sessions("old") == 1
        # pg_terminate_backend only signals: on a loaded machine the session is listed a moment longer
        deadline = time.monotonic() + 5
        while sql.end_sessions("old") != 0:
            assert time.monotonic() < deadline, "the deposed leader's session never ended"
            time.sleep(0.05)
        with store.engine.begin() as conn:                # the row is free again at once
            conn.execute(text("SET LOCAL lock_timeout = 2000"))
            conn.execute(TASKS.update().where(TASKS.c.task_id == "t-1").values(task_name="new leader"))
        assert store.get_task("t-1")["task_name"] == "new leader"
        try:
            frozen.close()
        except Exception:  # noqa: BLE001 - its session was ended under it
            pass
    finally:
        old.close()
        sql.close()
