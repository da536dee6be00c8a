"""The services' driver: carries out :class:`~litepipeline.manager.services.ServiceCore`'s answers.

- A service task's end is seen in the round that records it (``before_save``), and the
  service's row (last exit, next start) is written in that same transaction.
- A start happens in a round too: the task and the service's row in one transaction, so
  a manager killed at any moment comes back with either both or neither, and adopts the
  live task instead of starting a second one.
- Waiting (back-off, the stop timeout) is a timer, never a poll.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from typing import Any, Optional

from litepipeline.common import clock
from litepipeline.common.errors import InvalidParameters, LiteError, NotFound, TaskAlreadyFinished, TaskNotExists
from litepipeline.common.messages import signal_value
from litepipeline.manager.schedules import flag, json_object, name_field
from litepipeline.manager.services import RESTART, ServiceCore
from litepipeline.manager.store.writes import Row
from litepipeline.manager.taskstate import Batch

LOG = logging.getLogger(__name__)


class ServiceNotExists(NotFound):
    name = "ServiceNotExists"


def service_values(data: dict, creating: bool) -> dict:
    """The columns a ``service/create`` or ``service/update`` request sets (validated)."""
    out: dict = {}
    if creating or "name" in data:
        out["name"] = name_field(data, "name")
    if creating or "app_id" in data:
        app_id = data.get("app_id")
        if not isinstance(app_id, str) or not app_id:
            raise InvalidParameters(f"field 'app_id' must be a non-empty string, got {app_id!r}")
        out["application_id"] = app_id
    if creating or "description" in data:
        description = data.get("description") or ""
        if not isinstance(description, str):
            raise InvalidParameters(f"field 'description' must be a string, got {type(description).__name__}")
        out["description"] = description
    if creating or "input_data" in data:
        out["input_data"] = json_object(data, "input_data")
    if creating or data.get("signal") is not None:   # 0.1.5 required it on update; its CLI never sent it
        out["signal"] = signal_value(data.get("signal", -15))
    if creating or "enable" in data:
        out["enable"] = flag(data, "enable", False)
    if creating or "restart" in data:
        restart = data.get("restart", "always")
        if restart not in RESTART:
            raise InvalidParameters(f"field 'restart' must be one of {', '.join(RESTART)}, got {restart!r}")
        out["restart"] = restart
    return out


class ServiceDriver:
    """Owns the services in memory (through its :class:`ServiceCore`)."""

    def __init__(self, manager: Any, stop_timeout: float) -> None:
        self.manager = manager
        self.core = manager.core            # the task scheduler's core
        self.dispatcher = manager.dispatcher
        self.state = ServiceCore()
        self.stop_timeout = stop_timeout
        self._timer: Optional[asyncio.TimerHandle] = None
        self._escalations: set = set()
        self._lock = asyncio.Lock()
        self._again = False
        self._closed = False
        self._tasks: set = set()
        self._ended = False
        self._changed: list = []

    # -- life cycle ---------------------------------------------------------------------
    async def load(self) -> None:
        """Read the services, before the dispatcher's first round: a service task's end
        recorded by any round is then always seen by :meth:`before_save`."""
        rows = await self.manager.db(self.manager.schedule_store.all_services)
        now = clock.now()
        self._changed = []
        for row in rows:
            live = self._live(row.get("task_id"))
            if self.state.load(row, live, now):
                self._changed.append(row)
            if live and not row["enable"]:
                self._escalate_later(row["task_id"])   # it was being stopped when the manager went away
            elif live:
                LOG.info("service %s (%s): adopted its running task %s", row["service_id"], row["name"],
                         row["task_id"])

    async def start(self) -> None:
        """Once the dispatcher runs: write what loading changed, start what is due."""
        changed, self._changed = self._changed, []
        if changed:
            def record() -> None:
                for row in changed:
                    self.core.record("update_service", Row(row))
            await self.dispatcher.submit(record)
        self.poke()

    def close(self) -> None:
        self._closed = True
        for handle in [self._timer, *self._escalations]:
            if handle is not None:
                handle.cancel()
        for task in list(self._tasks):
            task.cancel()

    def _live(self, task_id: Optional[str]) -> bool:
        return self.core.unfinished(task_id)   # in memory or waiting in the backlog

    # -- task ends, inside the round ----------------------------------------------------
    def before_save(self, batch: Batch) -> None:
        """The round's batch before it is written: record the end of any service's task in it."""
        for task in (*batch.new_tasks, *batch.tasks.values()):
            if task.finished and self.state.service_of(task.task_id):
                ended = self.state.ended(task.task_id, task.status, clock.now())
                if ended is None:
                    continue
                row = self.state.services[ended.service_id]
                row["update_at"] = clock.now()
                batch.extra.append(("update_service", Row(row)))
                self._ended = True
                LOG.info("service %s (%s): task %s ended %s; %s", row["service_id"], row["name"], task.task_id,
                         task.status, f"restart at {clock.fmt(ended.restart_at)}" if ended.restart_at
                         else "not restarted")

    def saved(self, batch: Batch) -> None:
        """After a round is written: arm the back-off timer for services whose task ended."""
        if self._ended:
            self._ended = False
            self._arm()

    # -- starts -------------------------------------------------------------------------
    def poke(self) -> None:
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._start_due())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        wake = self.state.next_wakeup()
        if wake is not None and not self._closed:
            delay = max((wake - clock.now()).total_seconds(), 0.0) + 0.002
            self._timer = asyncio.get_running_loop().call_later(delay, self.poke)

    async def _start_due(self) -> None:
        if self._lock.locked():
            self._again = True
            return
        async with self._lock:
            while True:
                self._again = False
                for service_id in self.state.due(clock.now()):
                    try:
                        await self._start(service_id)
                    except Exception:  # noqa: BLE001 - one service's trouble must not stop the others
                        LOG.exception("service %s: start failed", service_id)
                if not self._again:
                    break
        self._arm()

    async def _start(self, service_id: str) -> None:
        row = self.state.services[service_id]
        try:
            task = await self.manager.build_task(row["application_id"], row["name"], dict(row["input_data"] or {}))
        except LiteError as exc:
            reason = exc.message
            LOG.warning("service %s (%s): cannot start: %s", service_id, row["name"], reason)
            await self.dispatcher.submit(lambda: self._record_failed(service_id, reason))
            return

        def commit() -> None:
            current = self.state.services.get(service_id)
            if current is None or service_id not in self.state.due(clock.now()):
                return   # disabled, deleted or started meanwhile
            self.core.add_task(task)
            self.state.started(service_id, task.task_id, clock.now())
            current["update_at"] = clock.now()
            self.core.record("update_service", Row(current))
            LOG.info("service %s (%s): started task %s", service_id, current["name"], task.task_id)
        try:
            await self.dispatcher.submit(commit)
        finally:
            self.manager.unpin_task(task)   # stored, or not started: the versions it pinned are let go

    def _record_failed(self, service_id: str, reason: str) -> None:
        if service_id in self.state.services:
            self.state.start_failed(service_id, reason, clock.now())
            self.core.record("update_service", Row(self.state.services[service_id]))

    # -- stops --------------------------------------------------------------------------
    def _stop(self, task_id: Optional[str], signal: int) -> list:
        """In the round: stop a service's task with its signal; SIGKILL after the stop timeout."""
        if not task_id:
            return []
        try:
            stops = self.core.stop_task(task_id, signal)
        except (TaskNotExists, TaskAlreadyFinished):
            return []
        self._escalate_later(task_id)
        return stops

    def _escalate_later(self, task_id: str) -> None:
        loop = asyncio.get_running_loop()
        handle: Optional[asyncio.TimerHandle] = None

        def fire() -> None:
            self._escalations.discard(handle)
            if not self._closed:
                self.dispatcher.submit(lambda: self._kill(task_id))
        handle = loop.call_later(self.stop_timeout, fire)
        self._escalations.add(handle)

    def _kill(self, task_id: str) -> list:
        if not self._live(task_id):
            return []
        LOG.warning("task %s still running %.0fs after its stop: SIGKILL", task_id, self.stop_timeout)
        return self.core.stop_task(task_id, -9)

    # -- the API's operations -----------------------------------------------------------
    def _row(self, service_id: str) -> dict:
        row = self.state.services.get(service_id)
        if row is None:
            raise ServiceNotExists(f"service {service_id} does not exist")
        return row

    async def create(self, data: dict) -> str:
        values = service_values(data, creating=True)
        await self.manager.app_row(values["application_id"])   # AppNotExists: 404
        now = clock.now()
        row = {"service_id": str(uuid.uuid4()), **values, "create_at": now, "update_at": now}

        def insert() -> None:
            self.state.add(row, clock.now())
            self.core.record("insert_service", Row(row))
        await self.dispatcher.submit(insert)
        self.poke()
        return row["service_id"]

    async def update(self, service_id: str, data: dict) -> None:
        self._row(service_id)
        values = service_values(data, creating=False)
        if "application_id" in values:
            await self.manager.app_row(values["application_id"])
        enable = values.pop("enable", None)

        def apply() -> list:
            row = self._row(service_id)
            row.update(values)    # app_id and input_data apply at the next start
            stop = self.state.set_enable(service_id, enable, clock.now()) if enable is not None else None
            row["update_at"] = clock.now()
            self.core.record("update_service", Row(row))
            return self._stop(stop, row["signal"])
        await self.dispatcher.submit(apply)
        self.poke()

    async def delete(self, service_id: str) -> None:
        self._row(service_id)

        def remove() -> list:
            row = self._row(service_id)
            task_id = self.state.remove(service_id)
            self.core.record("delete_service", Row(service_id=service_id))
            return self._stop(task_id, row["signal"])
        await self.dispatcher.submit(remove)
        self._arm()

    async def view(self, row: dict) -> dict:
        task = None
        if row.get("task_id"):
            task = await self.manager.db(self.manager.store.get_task, row["task_id"])
        return {"service_id": row["service_id"], "name": row["name"], "application_id": row["application_id"],
                "app_id": row["application_id"], "description": row["description"],
                "input_data": row["input_data"], "signal": row["signal"], "enable": row["enable"],
                "restart": row["restart"], "task_id": row["task_id"],
                "stage": task["stage"] if task else None, "status": task["status"] if task else None,
                "restarts": row["restarts"], "last_exit": row["last_exit"],
                "next_start_at": clock.fmt(row["next_start_at"]), "started_at": clock.fmt(row["started_at"]),
                "create_at": clock.fmt(row["create_at"]), "update_at": clock.fmt(row["update_at"])}

    async def info(self, service_id: str) -> dict:
        row = await self.manager.db(self.manager.schedule_store.get_service, service_id)
        if row is None:
            raise ServiceNotExists(f"service {service_id} does not exist")
        return await self.view(row)

    async def list(self, offset: int, limit: int, **filters: Any) -> tuple[list, int]:
        rows, total = await self.manager.db(functools.partial(
            self.manager.schedule_store.list_services, offset, limit, **filters))
        return [await self.view(r) for r in rows], total

