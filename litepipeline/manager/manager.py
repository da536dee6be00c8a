"""The Manager: owns the store, the application store, the cluster and the scheduler.

Handlers call these methods and serialize what they return; every rule about
applications and tasks lives here, not in the handlers.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import uuid
from typing import Any, AsyncIterator, Callable, Optional

from litepipeline.common import clock
from litepipeline.common.config import ManagerConfig
from litepipeline.common.errors import (AppNotExists, InvalidParameters, OperationFailed, PayloadTooLarge,
                                        StaleAttempt, TaskAlreadyFinished, TaskNotExists)
from litepipeline.common.messages import Register, Report
from litepipeline.common.states import UNFINISHED_STAGES, Stage, Status
from litepipeline.common.textcheck import find_poison, poison_message, scrub
from litepipeline.manager.appstore import AppStore
from litepipeline.manager.backlog import PARKED, Backlog
from litepipeline.manager.cluster import Cluster
from litepipeline.manager.dbthread import DbThread
from litepipeline.manager.dispatcher import Dispatcher
from litepipeline.manager.idempotency import KeyedCreates
from litepipeline.manager.nodelink import NodeLink
from litepipeline.manager.placement import NodeFacts, apply_input_targets
from litepipeline.manager.scheduledriver import ApplicationSource, DriverClock, ScheduleDriver, WorkflowSource
from litepipeline.manager.scheduler import SchedulerCore
from litepipeline.manager.schedules import check_zone, local_zone
from litepipeline.manager.servicedriver import ServiceDriver
from litepipeline.manager.store.store import Store, safe_url, sqlite_url
from litepipeline.manager.store.store_schedules import ScheduleStore
from litepipeline.manager.store.workflows import WorkflowStore
from litepipeline.manager.taskstate import DAG, EVENT, ActionState, Batch, TaskState
from litepipeline.manager.versions import Versions
from litepipeline.manager.views import app_view, attempt_view, running_view, task_view
from litepipeline.manager.waiters import FinishWaiters
from litepipeline.manager.waiting import NO_NODE, waiting_for
from litepipeline.manager.workservice import WorkService
from litepipeline.manager.workspaces import NodeStreams
from litepipeline.manager.checkpoints import Checkpoints
from litepipeline.manager.retention import Retention, RetentionPolicy
from litepipeline.version import __version__

LOG = logging.getLogger(__name__)
UNFINISHED = {s.value for s in UNFINISHED_STAGES}
DOWNLOAD_CHUNK = 1024 * 1024
SHA1_RE = re.compile(r"[0-9a-fA-F]{40}")
NAME_LIMIT = 255    # the name columns' length
MAX_WAIT = 600.0    # longest ``GET /task/info?wait=`` a client may ask for, in seconds
BIG_DAG = 1000      # actions above which a task's objects are built off the event loop
_MAX_DUMPS_GROWTH = 6   # json.dumps characters per byte of the JSON it re-encodes, at most (\uXXXX)


class Manager:
    """One LitePipeline manager: applications, tasks, nodes, scheduling."""

    def __init__(self, config: ManagerConfig, on_fatal: Callable[[str], None],
                 tls_server: Any = None, leadership: Any = None) -> None:
        self.config = config
        self.store = Store(config.database_url or sqlite_url(config.data_path),
                           leadership.application_name if leadership is not None else None,
                           synchronous_commit=config.pg_synchronous_commit == "on")
        #: the lease this manager leads under (fail-over on PostgreSQL), or None: the only manager
        self.leadership = leadership
        if leadership is not None:
            # fencing: no write commits, and no dispatch leaves, once the lease is not ours
            self.store.fence(leadership.epoch, leadership.fence_failed)
        self.db = DbThread()
        self.apps = AppStore(config.data_path, config.max_unpacked_size, config.max_actions)
        self.core = SchedulerCore(max_generated_actions=config.max_generated_actions,
                                  max_actions=config.max_actions,
                                  recovery_timeout=config.recovery_timeout)
        self.cluster = Cluster(config.auth_token, self._node_up, self._node_down, self.action_update,
                               ssl_options=tls_server)
        self.link = NodeLink(self.cluster.nodes.get, config.auth_token)
        if leadership is not None:
            self.link.may_send = leadership.lease.holds
        self.dispatcher = Dispatcher(self.core, self.store, self.db, self.link, on_fatal)
        # pending tasks beyond the window wait in the store, not in memory (see backlog.py)
        self.backlog = Backlog(self.core, self.store, self.db, config.queue_window)
        self.dispatcher.backlog = self.backlog
        self.workspaces = NodeStreams(self)   # action logs and workspaces on the nodes
        self.works = WorkService(self.core, self.dispatcher, self.db, WorkflowStore(self.store.engine), self.app_row,
                                 self.apps.spec, config.max_input_size, self.apps.ensure)
        self.versions = Versions(self.store.engine, self.db, self.apps, config.data_path,
                                 config.max_unpacked_size, lambda app_id: self._app_rows.pop(app_id, None))
        self.versions.pinned_by_work = self.works.pins_version   # history delete keeps a work's versions
        self.core.venv_sha1 = self.versions.active_venv   # generated actions naming a venv
        self._task_pins: dict = {}   # task_id -> Pins, held until the task is stored
        self.keyed = KeyedCreates(self.db, self.store, self.create_task, self._task_exists)
        self._closing = False
        self._app_rows: dict[str, dict] = {}
        self.waiters = FinishWaiters()
        self.dispatcher.on_saved = self._saved
        self.checkpoints = Checkpoints(self.store, self.db)
        self.schedule_store = ScheduleStore(self.store.engine)
        self.services = ServiceDriver(self, config.service_stop_timeout)
        self.dispatcher.before_save = self.services.before_save
        workflows = WorkflowSource(self.works.workflow_exists, self.works.plan, self.works.create_in_round,
                                   self.works.unfinished)
        self.schedules = ScheduleDriver(
            self, {"application": ApplicationSource(self), "workflow": workflows},
            DriverClock(config.test_clock_speed, config.test_clock_epoch or None),
            check_zone(config.timezone) if config.timezone else local_zone())
        self.retention = Retention(RetentionPolicy(config.task_retention), self)

    # -- life cycle ---------------------------------------------------------------------
    async def start(self) -> None:
        LOG.info("store: %s", safe_url(self.store.url))
        await self.db(self.store.migrate_in_child)
        await self.versions.start()
        loaded, backlogged = await self.db(self.store.load_start, self.backlog.state.window)
        for task_row, action_rows in loaded:
            self.core.load(TaskState.from_rows(task_row, action_rows))
        if loaded:
            LOG.info("resuming %d unfinished task(s) from the store", len(loaded))
        self.backlog.load(backlogged)
        await self.services.load()
        await self.works.load()
        self.dispatcher.start()
        self.dispatcher.submit(self.works.restop)
        await self.services.start()
        await self.schedules.start()
        self.retention.start()

    @property
    def closing(self) -> bool:
        return self._closing

    async def close(self) -> None:
        """Stop scheduling, keep the store consistent, drop node connections quietly."""
        self._closing = True
        self.retention.close()
        self.schedules.close()
        self.services.close()
        self.waiters.release_all()
        await self.dispatcher.stop()
        self.cluster.close_all()
        await asyncio.get_running_loop().run_in_executor(None, self.db.shutdown)
        self.store.close()

    def sweep(self) -> None:
        """The periodic repair sweep: silent nodes, nodes that never came back."""
        self.cluster.sweep()
        self.dispatcher.submit(self.core.tick)
        self.checkpoints.maybe()

    async def _node_up(self, node_id: str, message: Any, registering: bool) -> list:
        """A REGISTER (``registering``) or HEARTBEAT message from a node."""
        slots = message.action_slots if isinstance(message, Register) else None
        facts = None
        if isinstance(message, Register):
            node = self.cluster.nodes.get(node_id)
            facts = NodeFacts.of(message.labels, message.platform, node.info["http_host"] if node else None)
        return await self.dispatcher.submit(lambda: self.core.node_up(
            node_id, message.running, registering, slots, message.draining, facts))

    def _node_down(self, node_id: str, reason: str, hold: float = 0.0) -> None:
        if not self._closing:   # a manager shutting down keeps its nodes' work assigned
            self.dispatcher.submit(lambda: self.core.node_down(node_id, reason, hold))

    # -- applications -------------------------------------------------------------------
    async def create_app(self, upload_path: str, sha1: str, name: str, description: str) -> str:
        return await self.versions.create(self.versions.apps, upload_path, sha1, name, description)

    async def update_app(self, app_id: str, upload: Optional[tuple[str, str]], name: Optional[str],
                         description: Optional[str]) -> str:
        """New name/description; a file is a new version, kept in the history (see Versions)."""
        return await self.versions.update(self.versions.apps, app_id, upload, name, description)

    async def app_row(self, app_id: str) -> dict:
        # applications are few and change rarely: keep their rows, so creating a task
        # needs no database read
        row = self._app_rows.get(app_id)
        if row is None:
            row = await self.db(self.store.get_app, app_id)
            if row is None:
                raise AppNotExists(f"application {app_id} does not exist")
            self._app_rows[app_id] = row
        return dict(row)

    async def app_info(self, app_id: str, config: bool = False) -> dict:
        """``app_info``; with ``config``, ``app_config``: the active version's configuration.json."""
        row = await self.app_row(app_id)
        out = {"app_info": app_view(row)}
        if config:
            out["app_config"] = await self.versions.config(app_id, row["sha1"])
        return out

    async def list_apps(self, offset: int, limit: int) -> tuple[list[dict], int]:
        rows, total = await self.db(self.store.list_apps, offset, limit)
        return [app_view(r) for r in rows], total

    async def delete_app(self, app_id: str) -> None:
        await self.app_row(app_id)
        busy = await self.db(self.store.unfinished_task_count, app_id)
        if busy:
            raise OperationFailed(f"application {app_id} has {busy} unfinished task(s); stop or wait for them first")
        await self.works.check_app_delete(app_id)
        await self.versions.delete_app(app_id)
        LOG.info("application %s deleted", app_id)

    async def app_download(self, app_id: str, sha1: Optional[str]) -> tuple[str, str]:
        if sha1 is not None and not SHA1_RE.fullmatch(sha1):
            raise InvalidParameters(f"parameter 'sha1' must be 40 hexadecimal digits, got {sha1[:60]!r}")
        row = await self.app_row(app_id)
        sha1 = sha1 or row["sha1"]
        path = self.apps.path(app_id, sha1)
        if not await self.apps.ensure(app_id, sha1):   # with PostgreSQL, fetched from the database
            raise AppNotExists(f"application {app_id} has no version with sha1 {sha1}")
        return path, sha1

    async def read_chunks(self, path: str) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        with open(path, "rb") as fp:
            while True:
                chunk = await loop.run_in_executor(None, fp.read, DOWNLOAD_CHUNK)
                if not chunk:
                    return
                yield chunk

    # -- tasks --------------------------------------------------------------------------
    async def create_task(self, app_id: str, task_name: str, input_data: dict, task_id: Optional[str] = None,
                          idempotency_key: Optional[str] = None) -> str:
        """A new task (``task_id``: the id to give it); with ``idempotency_key``, the task
        that key made within 24 h if there is one (see :mod:`~litepipeline.manager.idempotency`)."""
        if idempotency_key is not None:
            return await self.keyed.create_task(idempotency_key, app_id, task_name, input_data)
        task = await self.build_task(app_id, task_name, input_data, task_id)
        try:
            await self.dispatcher.submit(lambda: self.core.add_task(task))
        finally:
            self.unpin_task(task)
        return task.task_id

    async def _task_exists(self, task_id: str) -> bool:
        return task_id in self.core.tasks or await self.db(self.store.get_task, task_id) is not None

    async def build_task(self, app_id: str, task_name: str, input_data: dict,
                         task_id: Optional[str] = None) -> TaskState:
        """A new task of the application's active version, ready for ``core.add_task`` in a round."""
        size = len(json.dumps(input_data))
        if size > self.config.max_input_size:
            raise PayloadTooLarge(f"input_data is {size} bytes, more than the limit of "
                                  f"{self.config.max_input_size}")
        row = await self.app_row(app_id)
        spec = await self.apps.spec(app_id, row["sha1"])
        # the task runs this application version and these venv versions to its end; the
        # pins hold until the task is stored (see _saved) or its creation is given up (unpin_task)
        pins = self.versions.pin(app_id, row["sha1"], spec)
        now = clock.now()
        task = TaskState(task_id=task_id or str(uuid.uuid4()), task_name=task_name, application_id=app_id,
                         app_sha1=row["sha1"], input_data=input_data, stage=Stage.PENDING.value, create_at=now,
                         update_at=now, on_success=spec.on_success, on_fail=spec.on_fail)
        events = {spec.on_success, spec.on_fail}

        def add_actions() -> None:
            for seq, action_spec in enumerate(spec.actions):
                kind = EVENT if action_spec.name in events else DAG
                action = ActionState.from_spec(task.task_id, action_spec, seq, kind)
                action.env_sha1 = pins.venvs.get(action.env)
                task.actions[action_spec.name] = action
            apply_input_targets(task.actions, input_data)   # the task's own targets win, per key

        try:
            if len(spec.actions) > BIG_DAG:   # ~5 µs an action: thousands would hold the loop
                await asyncio.get_running_loop().run_in_executor(None, add_actions)
            else:
                add_actions()
        except BaseException:
            self.versions.unpin(pins)
            raise
        self._task_pins[task.task_id] = pins
        return task

    def unpin_task(self, task: TaskState) -> None:
        """Release what :meth:`build_task` pinned for ``task`` (once it is stored, or not made)."""
        pins = self._task_pins.pop(task.task_id, None)
        if pins is not None:
            self.versions.unpin(pins)

    async def task_row(self, task_id: str) -> dict:
        row = await self.db(self.store.get_task, task_id)
        if row is None:
            raise TaskNotExists(f"task {task_id} does not exist")
        return row

    async def task_info(self, task_id: str, wait: float = 0) -> dict:
        """The task with its actions' results and attempts.

        ``wait`` > 0: answer once the task has finished (as soon as that is persisted), or
        after ``wait`` seconds with the task as it is then — a client waiting for a result
        needs one request instead of polling.
        """
        # registered before the read: a finish persisted after the read still wakes us
        waiter = self.waiters.add(task_id) if wait > 0 else None
        try:
            in_memory = self.core.tasks.get(task_id)
            if waiter is not None and in_memory is not None and not in_memory.finished:
                # unfinished: no need to read what will be read again once it has ended
                row = None
            else:
                row, actions, attempts = await self.db(self._read_task, task_id)
            if waiter is not None and (row is None or row["stage"] != Stage.FINISHED.value):
                try:
                    await asyncio.wait_for(waiter, wait)
                except asyncio.TimeoutError:
                    pass
                row, actions, attempts = await self.db(self._read_task, task_id)
        finally:
            if waiter is not None:
                self.waiters.remove(task_id, waiter)
        info = task_view(row, actions)
        if row["stage"] in (Stage.PENDING.value, Stage.RUNNING.value):
            reason = waiting_for(self.core.tasks.get(task_id), self.core.nodes, self.core.now(), self.core.mono())
            if task_id in self.backlog:
                if not self.core.nodes:
                    reason = NO_NODE
                elif self.backlog.state.parked(task_id):   # its rows are all there is of it
                    why = waiting_for(TaskState.from_rows(row, actions), self.core.nodes, self.core.now(),
                                      self.core.mono())
                    reason = f"{why or 'no free node its targets allow'}; {PARKED}"
                else:
                    reason = self.backlog.waiting(task_id)
            if reason:
                info["waiting_for"] = reason
        info["attempts"] = [attempt_view(a) for a in attempts]
        out = {"task_info": info}
        if row["stage"] in (Stage.RUNNING.value, Stage.STOPPING.value):
            out["task_running_info"] = running_view(row, actions, self.cluster.address)
        return out

    def _read_task(self, task_id: str) -> tuple[dict, list, list]:
        """DB thread: the task row, its actions and attempts, in one trip to the thread."""
        row = self.store.get_task(task_id)
        if row is None:
            raise TaskNotExists(f"task {task_id} does not exist")
        return row, self.store.get_actions(task_id), self.store.get_attempts(task_id)

    def _saved(self, batch: Batch) -> None:
        """After a round is persisted: services see their tasks' ends; waiting clients wake."""
        self.services.saved(batch)
        self.waiters.saved([*batch.new_tasks, *batch.tasks.values()])
        for task in batch.new_tasks:   # stored: the store now keeps their versions from deletion
            self.unpin_task(task)

    async def list_tasks(self, offset: int, limit: int, stage: Optional[str], app_id: Optional[str],
                         status: Optional[str], work_id: Optional[str] = None) -> tuple[list[dict], int]:
        rows, total = await self.db(self.store.list_tasks, offset, limit, stage, app_id, status, work_id)
        return [task_view(r) for r in rows], total

    async def delete_task(self, task_id: str) -> None:
        row = await self.task_row(task_id)
        if row["stage"] in UNFINISHED - {Stage.PENDING.value}:
            raise OperationFailed(f"task {task_id} is {row['stage']}; stop it first")
        self.works.check_task_change(row, "delete")
        holders = await self.workspaces.holders(task_id)
        await self.dispatcher.submit(lambda: self.core.remove_task(task_id))
        await self.db(self.store.delete_task, task_id)
        await self.workspaces.forget(task_id, holders)

    async def stop_task(self, task_id: str, signal: int) -> None:
        row = await self.task_row(task_id)
        if row["stage"] == Stage.FINISHED.value:
            raise TaskAlreadyFinished(f"task {task_id} is already finished ({row['status']})")
        self.backlog.want(task_id)   # if it waits in the store: admitted first in the round below
        await self.dispatcher.submit(lambda: self.core.stop_task(task_id, signal))

    async def rerun_task(self, task_id: str) -> str:
        """A new task with a finished task's application (its current version), name and input."""
        row = await self.task_row(task_id)
        if row["stage"] != Stage.FINISHED.value:
            raise OperationFailed(f"task {task_id} is {row['stage']}; only a finished task can be rerun")
        return await self.create_task(row["application_id"], row["task_name"], row["input_data"] or {})

    async def recover_task(self, task_id: str) -> None:
        """Run a failed or killed task again in place: what succeeded is kept (see SchedulerCore.recover)."""
        row = await self.task_row(task_id)
        if row["stage"] != Stage.FINISHED.value:
            raise OperationFailed(f"task {task_id} is {row['stage']}; only a failed or killed task can be "
                                  f"recovered")
        if row["status"] not in (Status.FAIL.value, Status.KILL.value):
            raise OperationFailed(f"task {task_id} ended {row['status']}; only a failed or killed task can "
                                  f"be recovered (rerun makes a new task)")
        self.works.check_task_change(row, "recover")
        if not await self.apps.ensure(row["application_id"], row["app_sha1"]):
            raise OperationFailed(f"the application version task {task_id} ran (sha1 {row['app_sha1']}) "
                                  f"is no longer stored; rerun makes a new task with the current version")
        task = TaskState.from_rows(row, await self.db(self.store.get_actions, task_id))
        await self.versions.check_recoverable(task)

        def recover() -> Any:
            if task_id in self.retention.retiring:   # checked in the round the retention claims in
                raise TaskNotExists(f"task {task_id} is being deleted (task_retention)")
            return self.core.recover(task)
        await self.dispatcher.submit(recover)
        LOG.info("task %s recovered", task_id)

    async def action_update(self, report: Report, body_size: Optional[int] = None, screen: bool = True) -> None:
        """Record a node's report (``body_size``: the size of its raw JSON when known, a cheap
        first check; ``screen`` False: that JSON was seen to hold no text a store refuses)."""
        if screen:
            report = storable_report(report)
        if report.stage == Stage.FINISHED.value and (
                body_size is None or body_size * _MAX_DUMPS_GROWTH > self.config.max_output_size):
            # Accepted as a failure, not refused: a refused report would be dropped by the
            # node, the attempt would look lost, and the action would run again forever.
            size = len(json.dumps(report.result))
            if size > self.config.max_output_size:
                report = dataclasses.replace(report, status="fail", result={}, message=(
                    f"output.data is {size} bytes, larger than the manager's limit of "
                    f"{self.config.max_output_size} bytes"))
        try:
            await self.dispatcher.submit(lambda: self.core.report(report))
        except StaleAttempt as exc:
            LOG.warning("refused report from node %s: %s", report.node_id, exc.message)
            raise

    # -- cluster ------------------------------------------------------------------------
    def cluster_info(self) -> dict:
        nodes = self.cluster.public()
        # info.manager: what the 0.1.5 CLI shows (never a secret: no token, no database URL)
        manager = {"http_host": self.config.http_host, "http_port": self.config.http_port,
                   "tcp_host": self.config.tcp_host, "tcp_port": self.config.tcp_port, "version": __version__,
                   "data_path": self.config.data_path}
        info = {"number_of_nodes": len(nodes), "nodes": nodes, "manager": manager}
        return {"version": __version__, "info": info, "scheduler": self.dispatcher.stats(), **self.role()}

    def role(self) -> dict:
        """``role`` and ``leader`` (fail-over): "single" without leadership (SQLite)."""
        if self.leadership is None:
            return {"role": "single", "leader": None}
        return self.leadership.view()



def storable_report(report: Report) -> Report:
    """A report whose text every store can keep.

    Unstorable identifiers are refused (400: the node drops the report, which matches no
    attempt anyway); unstorable text in what the action produced fails the action instead,
    naming the field: refused, the report would be dropped and the action run again forever.
    """
    ids = ("task_id", "name", "attempt_id", "node_id")
    found = find_poison({k: getattr(report, k) for k in (*ids, "stage")})
    if found:
        raise InvalidParameters(f"report {poison_message(found)}")
    found = find_poison({f.name: getattr(report, f.name) for f in dataclasses.fields(report) if f.name not in ids})
    if found is None:
        return report
    message = f"the action's report {poison_message(found)}"
    if report.stage != Stage.FINISHED.value:
        raise InvalidParameters(message)
    return dataclasses.replace(report, status=Status.FAIL.value, result={}, message=message,
                               start_at=scrub(report.start_at), end_at=scrub(report.end_at))
