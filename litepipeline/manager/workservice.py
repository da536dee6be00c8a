"""The manager's workflows and works: the user's operations, and the work controller that
runs inside the dispatcher's rounds.

Every change to a work is made inside a round (a function given to
``Dispatcher.submit``, or :meth:`WorkService.step`), so it is written in the same
transaction as the tasks it creates or ends. Reads and the workflows' own rows go
through the database thread.
"""
from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable
from typing import Any, Callable, Optional

from litepipeline.common import clock
from litepipeline.common.appspec import AppSpec, is_venv_id
from litepipeline.common.errors import (
    AppNotExists,
    InvalidParameters,
    OperationFailed,
    PayloadTooLarge,
    TaskAlreadyFinished,
    TaskNotExists,
)
from litepipeline.common.states import Stage, Status
from litepipeline.manager.dbthread import DbThread
from litepipeline.manager.dispatcher import Dispatcher
from litepipeline.manager.scheduler import SchedulerCore, Stop
from litepipeline.manager.store.workflows import WorkflowStore
from litepipeline.manager.taskstate import Batch, TaskState
from litepipeline.manager.workflows import (
    CreateTask,
    StopTask,
    WorkCore,
    WorkflowDisabled,
    WorkflowNotExists,
    WorkNotExists,
    WorkState,
    build_task,
    config_app_ids,
    new_work,
    spec_to_dict,
    validate_configuration,
)

LOG = logging.getLogger(__name__)
FINISHED = Stage.FINISHED.value


def workflow_view(row: dict) -> dict:
    return {"workflow_id": row["workflow_id"], "name": row["name"], "description": row["description"],
            "enable": bool(row["enable"]), "configuration": row["configuration"],
            "create_at": clock.fmt(row["create_at"]), "update_at": clock.fmt(row["update_at"])}


def work_view(row: dict) -> dict:
    return {"work_id": row["work_id"], "name": row["name"], "workflow_id": row["workflow_id"],
            "create_at": clock.fmt(row["create_at"]), "start_at": clock.fmt(row["start_at"]),
            "update_at": clock.fmt(row["update_at"]), "end_at": clock.fmt(row["end_at"]), "stage": row["stage"],
            "status": row["status"], "message": row["message"], "input_data": row["input_data"],
            "result": row["entries"], "event_task_id": row["event_task_id"],
            "configuration": row["configuration"],
            "app_sha1": {app_id: pin["sha1"] for app_id, pin in (row["pinned"] or {}).items()}}


def _candidate_app_ids(raw: Any) -> list:
    """The app ids a configuration not yet validated names (to look them up first)."""
    ids = []
    if isinstance(raw, dict):
        items = raw.get("applications") if isinstance(raw.get("applications"), list) else []
        events = raw.get("event_applications")
        items = items + (list(events.values()) if isinstance(events, dict) else [])
        ids = [i["app_id"] for i in items if isinstance(i, dict) and isinstance(i.get("app_id"), str)]
    return list(dict.fromkeys(ids))[:1000]


class WorkService:
    """Owns the :class:`WorkCore`; the dispatcher runs it as one of its round controllers."""

    def __init__(self, core: SchedulerCore, dispatcher: Dispatcher, db: DbThread, store: WorkflowStore,
                 app_row: Callable[[str], Awaitable[dict]], app_spec: Callable[[str, str], Awaitable[AppSpec]],
                 max_input_size: int, version_exists: Optional[Callable[[str, str], Awaitable[bool]]] = None) -> None:
        self.core = core
        self.dispatcher = dispatcher
        self.db = db
        self.store = store
        self.app_row = app_row
        self.app_spec = app_spec
        self.max_input_size = max_input_size
        self.version_exists = version_exists
        self.wcore = WorkCore(clock_fn=core.now)
        self._ended: list[TaskState] = []
        core.on_task_end = self._ended.append
        dispatcher.controllers.append(self)

    async def load(self) -> None:
        """Adopt the unfinished works from the store (at start, before the first round)."""
        rows = await self.db(self.store.load_unfinished_works)
        for row in rows:
            self.wcore.load(WorkState.from_row(row))
        if rows:
            LOG.info("resuming %d unfinished work(s) from the store", len(rows))

    def restop(self) -> list:
        """At start, in the first round: stop again the unfinished tasks of stopping works. A
        stop of a task waiting in the backlog is applied a round after the work's own (see
        manager/backlog.py); a crash between the two must not let that task run."""
        items = [StopTask(entry["task_id"], work.signal or -15) for work in self.wcore.works.values()
                 if work.stage == Stage.STOPPING.value for entry in work.entries.values()
                 if entry.get("task_id") and entry["stage"] == Stage.RUNNING.value]
        return self._apply(items)

    # -- the round controller ------------------------------------------------------------
    def step(self) -> list:
        """In a round, after its events: what the works do about the entry tasks that ended."""
        stops: list = []
        while self._ended:
            task = self._ended.pop(0)
            try:
                stops.extend(self._apply(self.wcore.task_ended(task)))
            except Exception:
                LOG.exception("work step for task %s of work %s failed", task.task_id, task.work_id)
        return stops

    def fill(self, batch: Batch) -> None:
        new, changed = self.wcore.take_changes()
        batch.new_works.extend(new)
        batch.works.extend(changed)

    def _apply(self, instructions: list) -> list[Stop]:
        stops: list[Stop] = []
        for item in instructions:
            if isinstance(item, CreateTask):
                task = build_task(item.task_id, item.task_name, item.app_id, item.sha1, item.spec, item.input_data,
                                  item.work_id, self.core.now())
                for action in task.actions.values():   # an env naming a venv: its active version
                    if is_venv_id(action.env):
                        action.env_sha1 = self.core.venv_sha1(action.env)
                self.core.add_task(task)
            elif isinstance(item, StopTask):
                try:
                    stops.extend(self.core.stop_task(item.task_id, item.signal))
                except (TaskNotExists, TaskAlreadyFinished):
                    pass   # it ended earlier in this round: its end is queued for step()
        return stops

    # -- creating a work inside a round (also for schedules) --------------------------------
    async def plan(self, workflow_id: str, name: str, input_data: dict) -> WorkState:
        """A new work of the workflow, with its configuration and application versions pinned
        now; not yet recorded. Give it to :meth:`create_in_round` inside a round."""
        size = len(json.dumps(input_data))
        if size > self.max_input_size:
            raise PayloadTooLarge(f"input_data is {size} bytes, more than the limit of {self.max_input_size}")
        row = await self.workflow_row(workflow_id)
        if not row["enable"]:
            raise WorkflowDisabled(f"workflow {workflow_id} is disabled")
        config = row["configuration"]
        pinned = {}
        for app_id in config_app_ids(config):
            try:
                app = await self.app_row(app_id)
            except AppNotExists:
                raise OperationFailed(f"workflow {workflow_id} names application {app_id}, which no longer "
                                      f"exists; update the workflow") from None
            spec = await self.app_spec(app_id, app["sha1"])
            pinned[app_id] = {"sha1": app["sha1"], "spec": spec_to_dict(spec)}
        return new_work(str(uuid.uuid4()), name, workflow_id, config, pinned, input_data, clock.now())

    def create_in_round(self, work: WorkState) -> str:
        """Record ``work`` (from :meth:`plan`) and create its first tasks, in the current round:
        call it from a function given to ``Dispatcher.submit``. Returns the work id."""
        self._apply(self.wcore.create(work))
        LOG.info("work %s (%s) of workflow %s created", work.work_id, work.name, work.workflow_id)
        return work.work_id

    async def workflow_exists(self, workflow_id: str) -> bool:
        try:
            await self.workflow_row(workflow_id)
        except WorkflowNotExists:
            return False
        return True

    def unfinished(self, work_id: str) -> bool:
        """True while the work is in memory, i.e. not finished (a schedule's ``overlap: skip``)."""
        return work_id in self.wcore.works

    async def create_work(self, workflow_id: str, name: str, input_data: dict) -> str:
        work = await self.plan(workflow_id, name, input_data)
        return await self.dispatcher.submit(lambda: self.create_in_round(work))

    # -- workflows -----------------------------------------------------------------------
    async def _validated(self, raw: Any) -> dict:
        existing = set()
        for app_id in _candidate_app_ids(raw):
            try:
                await self.app_row(app_id)
                existing.add(app_id)
            except AppNotExists:
                pass
        return validate_configuration(raw, existing.__contains__)

    async def create_workflow(self, name: str, configuration: Any, description: str, enable: bool) -> str:
        config = await self._validated(configuration)
        now = clock.now()
        workflow_id = str(uuid.uuid4())
        await self.db(self.store.insert_workflow, {
            "workflow_id": workflow_id, "name": name, "description": description, "enable": enable,
            "configuration": config, "create_at": now, "update_at": now})
        LOG.info("workflow %s created (%s)", workflow_id, name)
        return workflow_id

    async def update_workflow(self, workflow_id: str, name: Optional[str], configuration: Any,
                              description: Optional[str], enable: Optional[bool]) -> None:
        await self.workflow_row(workflow_id)
        values: dict = {"update_at": clock.now()}
        if configuration is not None:
            values["configuration"] = await self._validated(configuration)
        if name is not None:
            values["name"] = name
        if description is not None:
            values["description"] = description
        if enable is not None:
            values["enable"] = enable
        await self.db(self.store.update_workflow, workflow_id, values)

    async def workflow_row(self, workflow_id: str) -> dict:
        row = await self.db(self.store.get_workflow, workflow_id)
        if row is None:
            raise WorkflowNotExists(f"workflow {workflow_id} does not exist")
        return row

    async def workflow_info(self, workflow_id: str) -> dict:
        return workflow_view(await self.workflow_row(workflow_id))

    async def list_workflows(self, offset: int, limit: int, name: Optional[str],
                             workflow_id: Optional[str]) -> tuple[list, int]:
        rows, total = await self.db(self.store.list_workflows, offset, limit, name, workflow_id)
        return [workflow_view(r) for r in rows], total

    async def delete_workflow(self, workflow_id: str) -> None:
        await self.workflow_row(workflow_id)
        busy, _ = await self.db(self.store.delete_workflow_if_idle, workflow_id)
        if busy:
            raise OperationFailed(f"workflow {workflow_id} has {busy} unfinished work(s); stop or wait for them")

    # -- works ---------------------------------------------------------------------------
    async def work_row(self, work_id: str) -> dict:
        row = await self.db(self.store.get_work, work_id)
        if row is None:
            raise WorkNotExists(f"work {work_id} does not exist")
        return row

    async def work_info(self, work_id: str) -> dict:
        return work_view(await self.work_row(work_id))

    async def list_works(self, offset: int, limit: int, **filters: Optional[str]) -> tuple[list, int]:
        rows, total = await self.db(self.store.list_works, offset, limit, filters.get("work_id"),
                                    filters.get("workflow_id"), filters.get("name"), filters.get("stage"),
                                    filters.get("status"))
        return [work_view(r) for r in rows], total

    async def delete_work(self, work_id: str) -> None:
        row = await self.work_row(work_id)
        if row["stage"] != FINISHED or work_id in self.wcore.works:
            raise OperationFailed(f"work {work_id} is {row['stage']}; stop it first")
        await self.db(self.store.delete_work, work_id)

    async def stop_work(self, work_id: str, signal: int) -> None:
        row = await self.work_row(work_id)
        if row["stage"] == FINISHED:
            raise TaskAlreadyFinished(f"work {work_id} is already finished ({row['status']})")
        await self.dispatcher.submit(lambda: self._apply(self.wcore.stop(work_id, signal)))
        LOG.info("work %s stopped with signal %d", work_id, signal)

    async def rerun_work(self, work_id: str) -> str:
        """A new work of the same workflow (its current configuration) with the same name and input."""
        row = await self.work_row(work_id)
        if row["stage"] != FINISHED:
            raise OperationFailed(f"work {work_id} is {row['stage']}; only a finished work can be rerun")
        return await self.create_work(row["workflow_id"], row["name"], row["input_data"] or {})

    async def recover_work(self, work_id: str) -> None:
        """The failed and killed entries (and those that never started) run again, in the same work."""
        work = WorkState.from_row(await self.work_row(work_id))
        if work.stage == FINISHED and work.status == Status.SUCCESS.value:
            raise OperationFailed(f"work {work_id} succeeded; nothing to recover (rerun makes a new work)")
        for entry in work.entries.values():
            sha1 = work.pinned[entry["app_id"]]["sha1"]
            if entry["status"] != Status.SUCCESS.value and self.version_exists is not None \
                    and not await self.version_exists(entry["app_id"], sha1):
                raise OperationFailed(f"the version of application {entry['app_id']} work {work_id} pinned "
                                      f"(sha1 {sha1}) is no longer stored; rerun makes a new work")
        await self.dispatcher.submit(lambda: self._apply(self.wcore.recover(work)))
        LOG.info("work %s recovered", work_id)

    def pins_version(self, app_id: str, sha1: str) -> bool:
        """True while an unfinished work pins that application version (a history delete waits)."""
        return any((work.pinned.get(app_id) or {}).get("sha1") == sha1 for work in self.wcore.works.values())

    async def check_app_delete(self, app_id: str) -> None:
        """Refuse deleting an application an unfinished work pinned (its entry may not have started)."""
        pinned = await self.db(self.store.pinned_versions_in_use)
        if any(pinned_app == app_id for pinned_app, _ in pinned):
            raise OperationFailed(f"application {app_id} is part of an unfinished work; stop or wait for it first")

    def check_task_change(self, row: dict, what: str) -> None:
        """Refuse deleting or recovering a task on its own while its work is unfinished."""
        work_id = row.get("work_id")
        if work_id and work_id in self.wcore.works:
            raise OperationFailed(f"task {row['task_id']} is part of unfinished work {work_id}; {what} the "
                                  f"work instead")


def parse_enable(value: Any, default: Optional[bool]) -> Optional[bool]:
    """``enable`` as a boolean or 0.1.5's strings ``"true"``/``"false"``."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidParameters(f"field 'enable' must be true or false, got {str(value)[:60]!r}")
