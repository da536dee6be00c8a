"""The scheduler's driver: feeds events to the core, persists, then acts.

Every event (a task created, a report, a node joining or leaving, a stop) is a small
function submitted with :meth:`Dispatcher.submit`. One loop runs what was submitted,
asks the core what to dispatch, writes the round's changes to the store in *one*
transaction, answers the submitters, and only then sends dispatch/stop requests to
nodes. Events that arrive together share a round, which batches the database writes
under load; an idle system does nothing at all until the next event.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Optional

from litepipeline.common.messages import Answer, StopAction
from litepipeline.manager.dbthread import DbThread
from litepipeline.manager.nodelink import NodeLink
from litepipeline.manager.quarantine import merge, scrub_tasks, unstorable_tasks
from litepipeline.manager.scheduler import Dispatch, SchedulerCore, Stop
from litepipeline.manager.store.store import Store
from litepipeline.manager.taskstate import Batch

LOG = logging.getLogger(__name__)
SAVE_RETRY_SECONDS = 30.0
# rows above which a round is written from the database thread even on SQLite: a task of
# 10,000 actions takes ~0.4 s to insert, which must not hold the event loop
INLINE_ROWS = 500


def batch_rows(batch: Batch) -> int:
    return (len(batch.new_tasks) + len(batch.tasks) + len(batch.new_actions) + len(batch.actions)
            + len(batch.new_attempts) + len(batch.attempts))


def _task_of(instruction: Any) -> str:
    return instruction.message.task_id if isinstance(instruction, Dispatch) else instruction.task_id


class FailedTasks(dict):
    """task_id -> why, for tasks failed in a round because the store refused their text;
    ``stops`` are what failing them decided."""

    def __init__(self) -> None:
        super().__init__()
        self.stops: list = []


class Dispatcher:
    """Owns the :class:`SchedulerCore`; the only code that changes it."""

    def __init__(self, core: SchedulerCore, store: Store, db: DbThread, link: NodeLink,
                 on_fatal: Callable[[str], None]) -> None:
        self.core = core
        self.store = store
        self.db = db
        self.link = link
        self.on_fatal = on_fatal
        self._queue: list[tuple[Callable[[], Any], asyncio.Future]] = []
        self._wake = asyncio.Event()
        self._loop_task: Optional[asyncio.Task] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._inflight: set[asyncio.Task] = set()
        self.rounds = 0
        self.commits = 0            # store transactions written by rounds
        self.commit_seconds = 0.0   # time spent writing them
        #: called with each batch once it is persisted (the manager wakes waiting clients)
        self.on_saved: Optional[Callable[[Batch], None]] = None
        #: called with each batch before it is persisted: may add rows to it (services
        #: record their task's end in the same transaction)
        self.before_save: Optional[Callable[[Batch], None]] = None
        #: controllers of what is built on tasks (works): each round, after its events,
        #: ``step()`` returns instructions and may add tasks to the core; ``fill(batch)``
        #: adds the controller's own changed rows to the round's one transaction
        self.controllers: list[Any] = []
        #: more listeners of persisted batches (the web interface's push channel); each
        #: must return at once and copy what it keeps: the batch's objects change later
        self.saved_listeners: list[Callable[[Batch], None]] = []
        #: the pending tasks beyond the core's window (manager/backlog.py): read before each
        #: round's events and admitted first in it
        self.backlog: Optional[Any] = None
        #: told the seconds each store transaction of a round took (the metrics' histogram)
        self.on_commit: Optional[Callable[[float], None]] = None

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish the current round (so what was decided is persisted) and stop."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            try:
                await self._loop_task
            except asyncio.CancelledError:
                pass
        for task in list(self._inflight):
            task.cancel()

    def submit(self, fn: Callable[[], Any]) -> asyncio.Future:
        """Run ``fn`` against the core in the next round; the future resolves after persisting."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((fn, future))
        self._wake.set()
        return future

    def poke(self) -> None:
        """Schedule a round with no event (a slot may have freed, time may have passed)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._round()

    async def _round(self) -> None:
        queue, self._queue = self._queue, []
        outcomes: list[tuple[asyncio.Future, bool, Any]] = []
        actions: list[Any] = []
        if self.backlog is not None:
            # read before the events, admitted in this round: no commit falls between the two
            await self.backlog.prepare()
            actions.extend(self.backlog.apply())
        for fn, future in queue:
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 - each submitter gets its own error
                outcomes.append((future, False, exc))
                continue
            if isinstance(result, list):
                actions.extend(r for r in result if isinstance(r, (Dispatch, Stop)))
            outcomes.append((future, True, result))
        for controller in self.controllers:
            actions.extend(controller.step())
        actions.extend(self.core.schedule())
        batch = self.core.take_batch()
        for controller in self.controllers:
            controller.fill(batch)
        if batch and self.before_save is not None:
            self.before_save(batch)
        if batch:
            failed = await self._save(batch)
            if failed:   # tasks failed for unstorable text: what they were about to start, doesn't
                actions = [a for a in actions if _task_of(a) not in failed] + failed.stops
            if self.on_saved is not None:
                self.on_saved(batch)
            for listener in self.saved_listeners:
                try:
                    listener(batch)
                except Exception:  # noqa: BLE001 - a listener's bug must not stop scheduling
                    LOG.exception("listener of saved rounds failed")
        self.rounds += 1
        # dispatches first: they are on the path of the next action; answers can wait a turn
        for instruction in actions:
            if isinstance(instruction, Dispatch):
                # written now, in this turn: the node can start while the round winds up
                self._spawn(self._dispatched(instruction, self.link.run(instruction.node_id, instruction.message)))
            else:
                self._spawn(self._send_stop(instruction))
        for future, ok, value in outcomes:
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        self._arm_timer()
        if self.backlog is not None and self.backlog.has_work():
            self._wake.set()   # the window has room (or a stop waits): admit in another round

    async def _save(self, batch: Any) -> Optional["FailedTasks"]:
        """Write ``batch``; returns the tasks failed because their text could not be stored."""
        deadline = time.monotonic() + SAVE_RETRY_SECONDS
        delay = 0.1
        failed: Optional[FailedTasks] = None
        while True:
            try:
                started = time.perf_counter()
                if self.store.inline_writes and batch_rows(batch) <= INLINE_ROWS:
                    self.store.save(batch)
                else:
                    await self.db(self.store.save, batch)
                took = time.perf_counter() - started
                self.commits += 1
                self.commit_seconds += took
                if self.on_commit is not None:
                    self.on_commit(took)
                return failed
            except Exception as exc:  # noqa: BLE001
                problems = unstorable_tasks(batch)
                if problems:
                    # one task's text must not stop the others: fail it and write the round again
                    LOG.error("store refused a round (%s); failing task(s) %s", exc, problems)
                    failed = failed or FailedTasks()
                    failed.update(problems)
                    scrub_tasks(batch, set(problems))
                    if self.backlog is not None:   # new tasks of this round that went to the backlog
                        self.backlog.adopt(batch.new_tasks, problems)
                    failed.stops.extend(self.core.fail_unstorable(problems))
                    merge(batch, self.core.take_batch())
                    continue
                if time.monotonic() > deadline:
                    # memory and store disagree now; restarting rebuilds memory from the store
                    self.on_fatal(f"cannot write to the store: {exc}")
                    raise
                LOG.error("store write failed, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def stats(self) -> dict:
        """Counters for ``cluster info``: how much the store costs the scheduler."""
        return {"rounds": self.rounds, "commits": self.commits,
                "commit_ms": round(self.commit_seconds * 1000, 1),
                "unfinished_tasks": len(self.core.tasks),
                "backlog_tasks": len(self.backlog.state) if self.backlog is not None else 0}

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        wait = self.core.next_wakeup()
        if wait is not None:
            self._timer = asyncio.get_running_loop().call_later(wait + 0.001, self.poke)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _dispatched(self, dispatch: Dispatch, answer: Awaitable[Answer]) -> None:
        """Wait for the node's answer to a dispatch; a refusal puts the action back."""
        reply = await answer
        if reply.ok:
            return
        message = dispatch.message
        reason = f"HTTP {reply.code}: {reply.result}: {reply.message}"
        LOG.warning("dispatch of %s/%s to node %s failed: %s", message.task_id, message.name, dispatch.node_id,
                    reason)
        full = reply.code in (409, 503)
        self.submit(lambda: self.core.dispatch_failed(message.attempt_id, dispatch.node_id, reason, full))

    async def _send_stop(self, stop: Stop) -> None:
        reply = await self.link.stop(stop.node_id, StopAction(stop.task_id, stop.name, stop.signal, stop.attempt_id))
        if reply.code not in (200, 404):
            LOG.warning("stop of %s/%s on node %s failed: HTTP %s %s", stop.task_id, stop.name, stop.node_id,
                        reply.code, reply.message)
