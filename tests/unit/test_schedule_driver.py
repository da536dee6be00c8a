"""The schedule and service drivers against a real store and scheduler core, no network.

A fake dispatcher runs each submitted function as a round does (the function, then the
core's batch written by ``Store.save`` in one transaction); time is a hand-moved clock.
Runs on SQLite and, where a server is there, PostgreSQL (the ``store`` fixture).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from litepipeline.common.errors import AppNotExists
from litepipeline.common.states import Stage
from litepipeline.manager.scheduledriver import ApplicationSource, ScheduleDriver, WorkflowNotExists, WorkflowSource
from litepipeline.manager.scheduler import SchedulerCore
from litepipeline.manager.schedules import UTC
from litepipeline.manager.servicedriver import ServiceDriver
from litepipeline.manager.store.store_schedules import FIRES, SCHEDULES, ScheduleStore
from litepipeline.manager.store.store import TASKS
from litepipeline.manager.store.writes import Row
from litepipeline.manager.taskstate import ActionState, TaskState
from tests.unit.test_store import store  # noqa: F401 - the fixture (SQLite and PostgreSQL)

T0 = dt.datetime(2026, 5, 4, 10, 0, 30, tzinfo=UTC)
INTEGRITY_ERRORS: tuple = (sqlite3.IntegrityError,)
try:
    import psycopg

    INTEGRITY_ERRORS += (psycopg.IntegrityError,)
except ImportError:   # the PostgreSQL runs are skipped then
    pass
APP = "5fed2da0-3aa4-484d-beaa-8a82f1192d9d"


class HandClock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> dt.datetime:
        return self.at

    def seconds_until(self, when: dt.datetime) -> float:
        return 3600.0   # the tests call tick() themselves


class Rounds:
    """The dispatcher's round, minus the network: run, take the batch, save it."""

    def __init__(self, core: SchedulerCore, db_store, before_save=None) -> None:  # noqa: ANN001
        self.core, self.store, self.before_save = core, db_store, before_save

    def submit(self, fn):  # noqa: ANN001, ANN201
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        loop.call_soon(self._round, fn, future)   # later, as the real rounds run
        return future

    def _round(self, fn, future) -> None:  # noqa: ANN001
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001
            future.set_exception(exc)
            return
        batch = self.core.take_batch()
        if batch and self.before_save:
            self.before_save(batch)
        if batch:
            self.store.save(batch)
        future.set_result(result)


def fake_manager(db_store, apps=(APP,)) -> SimpleNamespace:  # noqa: ANN001
    core = SchedulerCore()

    async def db(fn, *args):  # noqa: ANN001, ANN202
        return fn(*args)

    async def app_row(app_id: str) -> dict:
        if app_id not in apps:
            raise AppNotExists(f"application {app_id} does not exist")
        return {"application_id": app_id}

    async def build_task(app_id: str, name: str, input_data: dict) -> TaskState:
        await app_row(app_id)
        now = dt.datetime.now()
        task = TaskState(task_id=str(uuid.uuid4()), task_name=name, application_id=app_id, app_sha1="a" * 40,
                         input_data=input_data, stage=Stage.PENDING.value, create_at=now, update_at=now)
        task.actions["only"] = ActionState(task_id=task.task_id, name="only", main="true")
        return task

    manager = SimpleNamespace(core=core, db=db, app_row=app_row, build_task=build_task, store=db_store,
                              schedule_store=ScheduleStore(db_store.engine))
    manager.dispatcher = Rounds(core, db_store)
    return manager


def driver(manager, clock: HandClock, workflow: WorkflowSource = None) -> ScheduleDriver:  # noqa: ANN001
    sources = {"application": ApplicationSource(manager), "workflow": workflow or WorkflowSource()}
    return ScheduleDriver(manager, sources, clock, "UTC")


def rows(db_store, table, **where) -> list:  # noqa: ANN001
    query = select(table)
    for key, value in where.items():
        query = query.where(table.c[key] == value)
    with db_store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def every_minute(**fields) -> dict:
    return {"schedule_name": "minutely", "source": "application", "source_id": APP, "cron": "* * * * *",
            "enable": True, **fields}


def test_fires_and_their_tasks_are_written_together_and_never_again_after_a_restart(store):  # noqa: F811
    async def scenario() -> None:
        clock = HandClock()
        manager = fake_manager(store)
        schedules = driver(manager, clock)
        await schedules.start()
        schedule_id = await schedules.create(every_minute(input_data='{"n": 1}'))
        clock.at = T0 + dt.timedelta(minutes=3)
        await schedules.tick()
        fires = rows(store, FIRES, schedule_id=schedule_id)
        assert [f["fire_at"].strftime("%H:%M") for f in sorted(fires, key=lambda f: f["fire_at"])] == \
            ["10:01", "10:02", "10:03"]
        tasks = {t["task_id"]: t for t in rows(store, TASKS)}
        assert sorted(f["target_id"] for f in fires) == sorted(tasks)
        assert all(t["task_name"] == "minutely" and t["input_data"] == {"n": 1} for t in tasks.values())
        assert rows(store, SCHEDULES)[0]["last_fire_at"] == dt.datetime(2026, 5, 4, 10, 3)
        schedules.close()
        # a new manager on the same store, started within the same minute: nothing fires again
        again = driver(fake_manager(store), clock)
        await again.start()
        assert len(rows(store, FIRES)) == 3
        clock.at += dt.timedelta(minutes=1)
        await again.tick()
        assert len(rows(store, FIRES)) == 4 and len(rows(store, TASKS)) == 4
        again.close()
    asyncio.run(scenario())


def test_a_fire_cannot_be_written_twice_and_takes_its_task_down_with_it(store):  # noqa: F811
    async def scenario() -> None:
        manager = fake_manager(store)
        fire = dict(schedule_id="s", fire_at=dt.datetime(2026, 5, 4, 10, 1), source="application",
                    outcome="created", create_at=dt.datetime.now())
        manager.core.add_task(await manager.build_task(APP, "one", {}))
        manager.core.record("insert_fire", Row(fire, target_id="t1"))
        store.save(manager.core.take_batch())
        second = await manager.build_task(APP, "two", {})
        manager.core.add_task(second)
        manager.core.record("insert_fire", Row(fire, target_id=second.task_id))
        with pytest.raises(INTEGRITY_ERRORS):   # the unique (schedule, instant) key
            store.save(manager.core.take_batch())
        assert [t["task_name"] for t in rows(store, TASKS)] == ["one"]   # rolled back together
        assert len(rows(store, FIRES)) == 1
    asyncio.run(scenario())


def test_overlap_skip_records_skipped_fires_while_the_last_task_is_unfinished(store):  # noqa: F811
    async def scenario() -> None:
        clock = HandClock()
        manager = fake_manager(store)
        schedules = driver(manager, clock)
        await schedules.start()
        schedule_id = await schedules.create(every_minute(overlap="skip"))
        clock.at = T0 + dt.timedelta(minutes=2)
        await schedules.tick()
        outcomes = [f["outcome"] for f in sorted(rows(store, FIRES), key=lambda f: f["fire_at"])]
        assert outcomes == ["created", "skipped"]
        # the task ends: the next fire creates again
        task_id = rows(store, FIRES, outcome="created")[0]["target_id"]
        manager.core.tasks[task_id].stage = Stage.FINISHED.value
        clock.at += dt.timedelta(minutes=1)
        await schedules.tick()
        assert sorted(f["outcome"] for f in rows(store, FIRES, schedule_id=schedule_id)) == \
            ["created", "created", "skipped"]
        schedules.close()
    asyncio.run(scenario())


def test_a_fire_whose_application_is_gone_is_recorded_failed_not_retried(store):  # noqa: F811
    async def scenario() -> None:
        clock = HandClock()
        apps = [APP]
        manager = fake_manager(store, apps)
        schedules = driver(manager, clock)
        await schedules.start()
        await schedules.create(every_minute())
        apps.clear()
        clock.at = T0 + dt.timedelta(minutes=1)
        await schedules.tick()
        await schedules.tick()
        assert [(f["outcome"], f["target_id"]) for f in rows(store, FIRES)] == [("failed", None)]
        schedules.close()
    asyncio.run(scenario())


def test_workflow_source_plugs_in_a_work_creator_called_inside_the_round(store):  # noqa: F811
    async def scenario() -> None:
        clock = HandClock()
        manager = fake_manager(store)
        created = []

        async def exists(workflow_id: str) -> bool:
            return workflow_id == "wf-1"

        async def plan(workflow_id: str, name: str, input_data: dict) -> tuple:
            return workflow_id, name, input_data

        def create_work(planned: tuple) -> str:
            workflow_id, name, input_data = planned
            # called from the round: the work's rows would go in this same batch
            manager.core.record("insert_fire", Row(schedule_id="marker", fire_at=dt.datetime(2000, 1, 1),
                                                   source="workflow", target_id=None, outcome="marker",
                                                   create_at=dt.datetime.now()))
            created.append((workflow_id, name, input_data))
            return f"work-{len(created)}"

        schedules = driver(manager, clock, WorkflowSource(exists, plan, create_work, lambda work_id: False))
        await schedules.start()
        with pytest.raises(WorkflowNotExists):
            await schedules.create(every_minute(source="workflow", source_id="wf-2"))
        schedule_id = await schedules.create(every_minute(source="workflow", source_id="wf-1",
                                                          input_data={"x": 1}))
        clock.at = T0 + dt.timedelta(minutes=1)
        await schedules.tick()
        assert created == [("wf-1", "minutely", {"x": 1})]
        fire = rows(store, FIRES, schedule_id=schedule_id)[0]
        assert (fire["source"], fire["target_id"], fire["outcome"]) == ("workflow", "work-1", "created")
        assert len(rows(store, FIRES, schedule_id="marker")) == 1
        assert rows(store, TASKS) == []
        schedules.close()
    asyncio.run(scenario())


def test_service_task_end_and_restart_are_written_in_their_rounds(store):  # noqa: F811
    async def scenario() -> None:
        manager = fake_manager(store)
        services = ServiceDriver(manager, stop_timeout=1.0)
        manager.dispatcher.before_save = services.before_save
        await services.load()
        await services.start()
        service_id = await services.create({"name": "svc", "app_id": APP, "enable": True})
        await asyncio.sleep(0.05)    # the start is its own task
        row = manager.schedule_store.get_service(service_id)
        task_id = row["task_id"]
        assert task_id and rows(store, TASKS)[0]["task_id"] == task_id
        # a manager coming back while the task runs adopts it and starts none
        task = manager.core.tasks[task_id]
        other = fake_manager(store)
        other.core.load(task)
        adopting = ServiceDriver(other, stop_timeout=1.0)
        await adopting.load()
        await adopting.start()
        await asyncio.sleep(0.05)
        assert adopting.state.live_task(service_id) == task_id and len(rows(store, TASKS)) == 1
        adopting.close()
        # the task fails: its end and the service's next start land in that round's transaction
        manager.core._end_task(task, "fail", "boom")
        assert manager.schedule_store.get_service(service_id)["last_exit"] is None
        await manager.dispatcher.submit(lambda: None)
        row = manager.schedule_store.get_service(service_id)
        assert row["last_exit"] == "fail" and row["streak"] == 1
        assert row["next_start_at"] - rows(store, TASKS)[0]["end_at"] <= dt.timedelta(seconds=1.1)
        assert rows(store, TASKS)[0]["status"] == "fail"
        # disabled: no restart is pending any more
        await services.update(service_id, {"enable": "false"})
        row = manager.schedule_store.get_service(service_id)
        assert row["enable"] is False and row["next_start_at"] is None
        services.close()
    asyncio.run(scenario())


def test_a_service_whose_application_is_gone_backs_off_with_last_exit_error(store):  # noqa: F811
    async def scenario() -> None:
        apps = [APP]
        manager = fake_manager(store, apps)
        services = ServiceDriver(manager, stop_timeout=1.0)
        await services.load()
        await services.start()
        service_id = await services.create({"name": "svc", "app_id": APP, "enable": False})
        apps.clear()
        await services.update(service_id, {"enable": True})
        await asyncio.sleep(0.05)
        row = manager.schedule_store.get_service(service_id)
        assert row["last_exit"] == "error" and row["task_id"] is None and row["streak"] == 1
        assert row["next_start_at"] is not None and rows(store, TASKS) == []
        services.close()
    asyncio.run(scenario())


def test_extra_rows_are_written_in_the_order_they_were_recorded(store):  # noqa: F811
    from litepipeline.manager.taskstate import Batch

    now = dt.datetime(2026, 5, 4, 10, 0)
    row = {"service_id": "s1", "name": "first", "application_id": APP, "description": "", "input_data": {},
           "signal": -15, "enable": False, "restart": "always", "task_id": None, "started_at": None, "restarts": 0,
           "streak": 0, "last_exit": None, "next_start_at": None, "create_at": now, "update_at": now}
    batch = Batch(extra=[("update_service", Row(row, service_id="other")), ("insert_service", Row(row)),
                         ("update_service", Row(row, name="second")), ("delete_service", Row(service_id="gone"))])
    store.save(batch)
    assert [r["name"] for r in ScheduleStore(store.engine).all_services()] == ["second"]


def test_driver_clock_runs_faster_only_when_asked(monkeypatch):
    from litepipeline.manager import scheduledriver

    real = [1_000_000.0]
    monkeypatch.setattr(scheduledriver.time, "time", lambda: real[0])
    plain = scheduledriver.DriverClock()
    fast = scheduledriver.DriverClock(speed=60, epoch=999_990.0)
    assert plain.now().timestamp() == 1_000_000.0
    assert fast.now().timestamp() == 999_990.0 + 10 * 60
    real[0] += 1.0
    assert fast.now().timestamp() == 999_990.0 + 11 * 60     # one real second: one minute
    assert fast.seconds_until(fast.now() + dt.timedelta(minutes=2)) == 2.0
    assert plain.seconds_until(plain.now() - dt.timedelta(seconds=5)) == 0.0


def test_a_tick_looks_only_at_schedules_that_are_due_or_changed(store, monkeypatch):  # noqa: F811
    from litepipeline.manager import scheduledriver

    async def scenario() -> None:
        clock = HandClock()
        manager = fake_manager(store)
        schedules = driver(manager, clock)
        await schedules.start()
        hourly = await schedules.create(every_minute(cron="0 * * * *", schedule_name="hourly"))
        minutely = await schedules.create(every_minute())
        await schedules.tick()
        asked = []
        real_due = scheduledriver.due
        monkeypatch.setattr(scheduledriver, "due", lambda timing, *a: asked.append(timing.cron) or
                            real_due(timing, *a))
        clock.at = T0 + dt.timedelta(minutes=1)
        await schedules.tick()
        assert asked == ["* * * * *"]
        await schedules.update(hourly, {"catchup": "all"})
        del asked[:]
        await schedules.tick()
        assert asked == ["0 * * * *"]
        assert [f["schedule_id"] for f in rows(store, FIRES)] == [minutely]
        schedules.close()
    asyncio.run(scenario())
