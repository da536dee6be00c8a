"""The schedules' driver: one timer armed at the next fire time, fires written in rounds.

It never polls. At start, and whenever it wakes, it asks :func:`schedules.due` what each
enabled schedule must fire, prepares what the fires create (reading the application, off
the round), then submits one function to the dispatcher's round that creates the tasks
(or works) and records each fire and the schedule's new last fire with them, in that
round's one transaction. The fires table is unique on (schedule, instant): a fire can
never be written twice, and a fire whose transaction did not commit is due again when the
manager comes back.

What a fire creates depends on the schedule's ``source``: a :class:`Source` per kind.
"""
from __future__ import annotations

import asyncio
import functools
import datetime as dt
import logging
import time
import uuid
from typing import Any, Callable, Optional, Protocol

from litepipeline.common import clock
from litepipeline.common.errors import LiteError, NotFound
from litepipeline.manager.schedules import (LATE_GRACE, UTC, Timing, due, from_utc_naive, plan, schedule_values, show,
                                            to_utc_naive)
from litepipeline.manager.store.writes import Row
from litepipeline.manager.workflows import WorkflowNotExists

LOG = logging.getLogger(__name__)
NEXT_FIRES = 5


class ScheduleNotExists(NotFound):
    name = "ScheduleNotExists"


class Source(Protocol):
    """What a schedule of one ``source`` kind fires."""

    async def check(self, source_id: str) -> None:
        """Raise a 404 :class:`LiteError` when ``source_id`` does not exist."""

    async def prepare(self, schedule: dict) -> Callable[[], str]:
        """Off the round: get ready to create one task/work; returns the function that creates
        it *inside* the round (recording it in the round's batch) and returns its id."""

    def unfinished(self, target_id: Optional[str]) -> bool:
        """In the round: is the task/work ``target_id`` still unfinished?"""


class ApplicationSource:
    """``source: "application"``: a fire is a task of the application, named after the schedule."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    async def check(self, source_id: str) -> None:
        await self.manager.app_row(source_id)

    async def prepare(self, schedule: dict) -> Callable[[], str]:
        task = await self.manager.build_task(schedule["source_id"], schedule["schedule_name"],
                                             dict(schedule["input_data"] or {}))

        def create() -> str:
            self.manager.core.add_task(task)
            return task.task_id
        create.release = lambda: self.manager.unpin_task(task)   # the versions build_task pinned
        return create

    def unfinished(self, target_id: Optional[str]) -> bool:
        return self.manager.core.unfinished(target_id)   # in memory or waiting in the backlog


class WorkflowSource:
    """``source: "workflow"``: a fire is a work of the workflow.

    The workflow engine plugs in here with four callables: ``exists(workflow_id)``
    (awaitable, true when it exists), ``plan(workflow_id, name, input_data)`` (awaitable:
    reads the workflow and pins its versions, outside the round), ``create_in_round(planned)``
    (called inside the round; records the work in that round's batch and returns its id)
    and ``unfinished(work_id)``. Without them, no workflow exists.
    """

    def __init__(self, exists: Optional[Callable[[str], Any]] = None,
                 plan: Optional[Callable[[str, str, dict], Any]] = None,
                 create_in_round: Optional[Callable[[Any], str]] = None,
                 unfinished: Optional[Callable[[str], bool]] = None) -> None:
        self.exists = exists
        self.plan = plan
        self.create_in_round = create_in_round
        self._unfinished = unfinished

    async def check(self, source_id: str) -> None:
        if self.exists is None or not await self.exists(source_id):
            raise WorkflowNotExists(f"workflow {source_id} does not exist")

    async def prepare(self, schedule: dict) -> Callable[[], str]:
        await self.check(schedule["source_id"])
        planned = await self.plan(schedule["source_id"], schedule["schedule_name"],
                                  dict(schedule["input_data"] or {}))
        create_in_round = self.create_in_round
        return lambda: create_in_round(planned)

    def unfinished(self, target_id: Optional[str]) -> bool:
        return bool(target_id) and self._unfinished is not None and self._unfinished(target_id)


class DriverClock:
    """The clock schedules are read with: real time, or, for tests only, real time sped up.

    ``speed`` > 1 (the test-only ``test_clock_speed`` setting) runs time that many times
    faster from ``epoch`` (unix seconds; ``test_clock_epoch``, default: now), so an
    end-to-end test sees an every-minute schedule fire every second; the same epoch given
    to every start of the manager keeps that time going on across restarts.
    """

    def __init__(self, speed: float = 1.0, epoch: Optional[float] = None) -> None:
        self.speed = speed
        self.epoch = time.time() if epoch is None else epoch

    def now(self) -> dt.datetime:
        real = time.time()
        if self.speed != 1.0:
            real = self.epoch + (real - self.epoch) * self.speed
        return dt.datetime.fromtimestamp(real, UTC)

    def seconds_until(self, when: dt.datetime) -> float:
        """Real seconds until the clock shows ``when``."""
        return max((when - self.now()).total_seconds(), 0.0) / self.speed


class ScheduleDriver:
    """Owns the schedules in memory; the only code that changes them."""

    def __init__(self, manager: Any, sources: dict, driver_clock: DriverClock, default_zone: str) -> None:
        self.manager = manager
        self.core = manager.core
        self.dispatcher = manager.dispatcher
        self.sources = sources
        self.clock = driver_clock
        self.default_zone = default_zone
        self.rows: dict[str, dict] = {}
        self._watched: dict[str, dt.datetime] = {}    # schedule_id -> when watching it began
        self._started: set = set()   # schedules watched since the manager started (not since enabled)
        self._next: dict[str, Optional[dt.datetime]] = {}
        self._timer: Optional[asyncio.TimerHandle] = None
        self._lock = asyncio.Lock()
        self._again = False
        self._closed = False
        self._tasks: set = set()

    # -- life cycle ---------------------------------------------------------------------
    async def start(self) -> None:
        rows = await self.manager.db(self.manager.schedule_store.all_schedules)
        now = self.clock.now()
        for row in rows:
            self.rows[row["schedule_id"]] = row
            if row["enable"]:
                self._watched[row["schedule_id"]] = now
                self._started.add(row["schedule_id"])   # watched since the manager's start (LATE_GRACE)
        await self.tick()

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()

    def poke(self) -> None:
        """Look at the schedules again soon (one was created or changed)."""
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self.tick())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- firing -------------------------------------------------------------------------
    async def tick(self) -> None:
        """Fire what is due; arm the timer for the next fire time."""
        if self._lock.locked():
            self._again = True   # the running tick looks once more when it is done
            return
        async with self._lock:
            while True:
                self._again = False
                await self._fire_due()
                if not self._again:
                    break
        self._arm()

    def _last(self, row: dict) -> dt.datetime:
        anchor = from_utc_naive(row["anchor_at"])
        last = from_utc_naive(row["last_fire_at"])
        return anchor if last is None else max(anchor, last)

    async def _fire_due(self) -> None:
        now = self.clock.now()
        for schedule_id, row in list(self.rows.items()):
            if not row["enable"]:
                self._next.pop(schedule_id, None)
                continue
            if schedule_id in self._next and (self._next[schedule_id] is None or self._next[schedule_id] > now):
                continue   # not due yet (a new or changed schedule has no entry: it is looked at)
            grace = LATE_GRACE if schedule_id in self._started else 0.0
            answer = due(Timing(row["cron"], row["timezone"]), row["catchup"], self._last(row), now,
                         self._watched.get(schedule_id, now), grace)
            self._next[schedule_id] = answer.next_fire
            if answer.fires:
                try:
                    await self._fire(row, answer.fires)
                except Exception:  # noqa: BLE001 - one schedule's trouble must not stop the others
                    LOG.exception("schedule %s: firing failed", schedule_id)

    async def _fire(self, row: dict, fires: list) -> None:
        source = self.sources[row["source"]]
        creators: list = []
        error = None
        # overlap skip creates at most one of these fires (each later one sees it unfinished)
        for _ in range(len(fires) if row["overlap"] == "allow" else 1):
            try:
                creators.append(await source.prepare(row))
            except LiteError as exc:
                error = exc.message
                break
        if error:
            LOG.warning("schedule %s (%s): cannot create its %s: %s", row["schedule_id"], row["schedule_name"],
                        row["source"], error)
        try:
            await self.dispatcher.submit(lambda: self._commit(row, fires, creators, source))
        finally:
            for creator in creators:   # stored or not made: what preparing pinned is let go
                release = getattr(creator, "release", None)
                if release is not None:
                    release()

    def _commit(self, row: dict, fires: list, creators: list, source: Source) -> int:
        """In the round: create and record the fires (never one at or before the last fire)."""
        schedule_id = row["schedule_id"]
        if self.rows.get(schedule_id) is not row or not row["enable"]:
            return 0   # changed meanwhile: the tick that change caused decides afresh
        last = self._last(row)
        todo = [when for when in fires if when > last]
        busy = source.unfinished(row.get("last_target_id"))
        now = clock.now()
        for when, create in plan(todo, row["overlap"], busy):
            target_id, outcome = None, "skipped"
            if create:
                if creators:
                    target_id, outcome = creators.pop(0)(), "created"
                else:
                    outcome = "failed"
            self.core.record("insert_fire", Row(schedule_id=schedule_id, fire_at=to_utc_naive(when),
                                                source=row["source"], target_id=target_id, outcome=outcome,
                                                create_at=now))
            if target_id:
                row["last_target_id"] = target_id
            row["last_fire_at"] = to_utc_naive(when)
            LOG.info("schedule %s fired for %s: %s %s", schedule_id, show(when, row["timezone"]), outcome,
                     target_id or "")
        if todo:
            self.core.record("update_schedule", Row(row))
        return len(todo)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        times = [t for sid, t in self._next.items() if t is not None and self.rows.get(sid, {}).get("enable")]
        if not times or self._closed:
            return
        # a hair late rather than early: woken early, nothing is due yet and it re-arms
        delay = self.clock.seconds_until(min(times)) + 0.002
        self._timer = asyncio.get_running_loop().call_later(delay, self.poke)

    # -- the API's operations -----------------------------------------------------------
    async def create(self, data: dict) -> str:
        now = self.clock.now()
        values = schedule_values(data, None, self.default_zone, now)
        await self.sources[values["source"]].check(values["source_id"])
        local = clock.now()
        row = {"schedule_id": str(uuid.uuid4()), **values, "last_fire_at": None, "last_target_id": None,
               "create_at": local, "update_at": local}

        def insert() -> None:
            self.rows[row["schedule_id"]] = row
            self._next.pop(row["schedule_id"], None)
            if row["enable"]:
                self._watched[row["schedule_id"]] = now
            self.core.record("insert_schedule", Row(row))
        await self.dispatcher.submit(insert)
        self.poke()
        return row["schedule_id"]

    def _row(self, schedule_id: str) -> dict:
        row = self.rows.get(schedule_id)
        if row is None:
            raise ScheduleNotExists(f"schedule {schedule_id} does not exist")
        return row

    async def update(self, schedule_id: str, data: dict) -> None:
        current = self._row(schedule_id)
        now = self.clock.now()
        values = schedule_values(data, current, self.default_zone, now)
        if "source_id" in values and (values["source_id"], values["source"]) != (current["source_id"],
                                                                                 current["source"]):
            await self.sources[values["source"]].check(values["source_id"])

        def apply() -> None:
            old = self._row(schedule_id)   # deleted meanwhile: 404
            row = {**old, **values, "update_at": clock.now()}
            if row["enable"] and not old["enable"]:
                self._watched[schedule_id] = now   # fires missed while disabled follow catchup
                self._started.discard(schedule_id)
            self.rows[schedule_id] = row           # a new object: fires prepared for the old one are dropped
            self._next.pop(schedule_id, None)      # its next fire is computed afresh
            self.core.record("update_schedule", Row(row))
        await self.dispatcher.submit(apply)
        self.poke()

    async def delete(self, schedule_id: str) -> None:
        self._row(schedule_id)

        def remove() -> None:
            self._row(schedule_id)
            del self.rows[schedule_id]
            self._watched.pop(schedule_id, None)
            self._started.discard(schedule_id)
            self._next.pop(schedule_id, None)
            self.core.record("delete_schedule_fires", Row(schedule_id=schedule_id))
            self.core.record("delete_schedule", Row(schedule_id=schedule_id))
        await self.dispatcher.submit(remove)
        self._arm()

    def view(self, row: dict, upcoming: bool = False) -> dict:
        """A schedule as the API shows it."""
        zone = row["timezone"]
        out = {key: row[key] for key in ("schedule_id", "schedule_name", "source", "source_id", "input_data",
                                          "enable", "cron", "minute", "hour", "day_of_month", "day_of_week",
                                          "timezone", "catchup", "overlap")}
        out.update(create_at=clock.fmt(row["create_at"]), update_at=clock.fmt(row["update_at"]),
                   last_fire_at=show(from_utc_naive(row["last_fire_at"]), zone),
                   last_target_id=row["last_target_id"])
        if upcoming:
            now = self.clock.now()
            start = max(now, self._last(row))
            out["next_fire_at"] = [show(t, zone) for t in Timing(row["cron"], zone).upcoming(start, NEXT_FIRES)] \
                if row["enable"] else []
        return out

    async def info(self, schedule_id: str) -> dict:
        row = await self.manager.db(self.manager.schedule_store.get_schedule, schedule_id)
        if row is None:
            raise ScheduleNotExists(f"schedule {schedule_id} does not exist")
        return self.view(row, upcoming=True)

    async def list(self, offset: int, limit: int, **filters: Any) -> tuple[list, int]:
        rows, total = await self.manager.db(functools.partial(
            self.manager.schedule_store.list_schedules, offset, limit, **filters))
        return [self.view(r) for r in rows], total

    async def fires(self, schedule_id: str, offset: int, limit: int) -> tuple[list, int]:
        row = self._row(schedule_id)
        rows, total = await self.manager.db(self.manager.schedule_store.list_fires, schedule_id, offset, limit)
        return [{"fire_at": show(from_utc_naive(r["fire_at"]), row["timezone"]), "source": r["source"],
                 "target_id": r["target_id"], "outcome": r["outcome"], "create_at": clock.fmt(r["create_at"])}
                for r in rows], total
