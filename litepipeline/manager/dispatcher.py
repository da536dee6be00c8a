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
import json
import logging
import time
from typing import Any, Callable, Optional

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from litepipeline.common import clock
from litepipeline.common.web import auth_headers
from litepipeline.manager.dbthread import DbThread
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
    return instruction.payload["task_id"] if isinstance(instruction, Dispatch) else instruction.task_id


class FailedTasks(dict):
    """task_id -> why, for tasks failed in a round because the store refused their text;
    ``stops`` are what failing them decided."""

    def __init__(self) -> None:
        super().__init__()
        self.stops: list = []


class Dispatcher:
    """Owns the :class:`SchedulerCore`; the only code that changes it."""

    def __init__(self, core: SchedulerCore, store: Store, db: DbThread, node_address: Callable[[str], Optional[str]],
                 token: Optional[str], on_fatal: Callable[[str], None]) -> None:
        self.core = core
        self.store = store
        self.db = db
        self.node_address = node_address
        self.token = token
        self.on_fatal = on_fatal
        self.http = AsyncHTTPClient(max_clients=64)
        self._queue: list[tuple[Callable[[], Any], asyncio.Future]] = []
        self._wake = asyncio.Event()
        self._loop_task: Optional[asyncio.Task] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._inflight: set[asyncio.Task] = set()
        self.rounds = 0
        self.commits = 0            # store transactions written by rounds
        self.commit_seconds = 0.0   # time spent writing them
        #: ``Cluster.start_run``/``Cluster.run``: dispatches over the node's TCP channel
        self.channel_start: Optional[Callable[..., Any]] = None
        self.channel_run: Optional[Callable[..., Any]] = None
        #: called with each batch once it is persisted (the manager wakes waiting clients)
        self.on_saved: Optional[Callable[[Batch], None]] = None

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
        for fn, future in queue:
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 - each submitter gets its own error
                outcomes.append((future, False, exc))
                continue
            if isinstance(result, list):
                actions.extend(r for r in result if isinstance(r, (Dispatch, Stop)))
            outcomes.append((future, True, result))
        actions.extend(self.core.schedule())
        batch = self.core.take_batch()
        if batch:
            failed = await self._save(batch)
            if failed:   # tasks failed for unstorable text: what they were about to start, doesn't
                actions = [a for a in actions if _task_of(a) not in failed] + failed.stops
            if self.on_saved is not None:
                self.on_saved(batch)
        self.rounds += 1
        # dispatches first: they are on the path of the next action; answers can wait a turn
        for instruction in actions:
            if isinstance(instruction, Dispatch):
                # written now, in this turn: the node can start while the round winds up
                started = self.channel_start(instruction.node_id, instruction.payload) if self.channel_start else None
                self._spawn(self._send_dispatch(instruction, started))
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
                self.commits += 1
                self.commit_seconds += time.perf_counter() - started
                return failed
            except Exception as exc:  # noqa: BLE001
                problems = unstorable_tasks(batch)
                if problems:
                    # one task's text must not stop the others: fail it and write the round again
                    LOG.error("store refused a round (%s); failing task(s) %s", exc, problems)
                    failed = failed or FailedTasks()
                    failed.update(problems)
                    scrub_tasks(batch, set(problems))
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
                "unfinished_tasks": len(self.core.tasks)}

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        wake = self.core.next_wakeup()
        if wake is not None:
            seconds = max((wake - clock.now()).total_seconds(), 0.0) + 0.001
            self._timer = asyncio.get_running_loop().call_later(seconds, self.poke)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _node_call(self, node_id: str, method: str, path: str, body: dict) -> tuple[int, dict]:
        address = self.node_address(node_id)
        if address is None:
            return 0, {"result": "NodeGone", "message": f"node {node_id} is not registered"}
        request = HTTPRequest(f"{address}{path}", method=method, body=json.dumps(body),
                              headers={"Content-Type": "application/json", **auth_headers(self.token)},
                              connect_timeout=5, request_timeout=30)
        try:
            response = await self.http.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            return 0, {"result": "NodeUnreachable", "message": str(exc)}
        try:
            data = json.loads(response.body or b"{}")
        except ValueError:
            data = {"result": "BadResponse", "message": f"HTTP {response.code} with a non-JSON body"}
        return response.code, data if isinstance(data, dict) else {}

    async def _send_dispatch(self, dispatch: Dispatch, started: Any = None) -> None:
        payload = dispatch.payload
        answer = await self.channel_run(dispatch.node_id, payload, 30, started) if self.channel_run else None
        if answer is None:   # the node's HTTP route: an original node, or a big payload
            answer = await self._node_call(dispatch.node_id, "POST", "/action/run", payload)
        code, data = answer
        if code == 200 and data.get("result") == "ok":
            return
        reason = f"HTTP {code}: {data.get('result')}: {data.get('message')}"
        LOG.warning("dispatch of %s/%s to node %s failed: %s", payload["task_id"], payload["name"],
                    dispatch.node_id, reason)
        full = code in (409, 503)
        self.submit(lambda: self.core.dispatch_failed(payload["attempt_id"], dispatch.node_id, reason, full))

    async def _send_stop(self, stop: Stop) -> None:
        body = {"task_id": stop.task_id, "name": stop.name, "signal": stop.signal, "attempt_id": stop.attempt_id}
        code, data = await self._node_call(stop.node_id, "PUT", "/action/stop", body)
        if code not in (200, 404):
            LOG.warning("stop of %s/%s on node %s failed: HTTP %s %s", stop.task_id, stop.name, stop.node_id,
                        code, data.get("message"))
