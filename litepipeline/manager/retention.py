"""Task retention: finished tasks older than ``task_retention`` days go, with their actions,
attempts and workspaces on the nodes.

What stays, whatever its age:

- an unfinished task (only finished ones are candidates, and the delete re-checks it);
- a task of an unfinished work (the work still reads its entries' tasks);
- each service's current task (``service info`` shows its stage and status);
- a task in the scheduler's memory (one being recovered).

A finished work keeps its row: its ``result`` holds each entry's status and result, so
``work info`` stays whole; an entry's ``task_id`` may then name a deleted task. A
schedule's fires keep the ids of what they created, as history.

The driver is a timer, not a poll: after a pass it sleeps until the oldest finished task
left reaches the age (or ``task_retention`` when none is finished), at least 1 % of the
age (so a steady stream of ending tasks does not mean a pass a second) and at most an
hour (so a wall-clock step is caught up). A pass deletes tasks in transactions sized to
take about :data:`TARGET` seconds (at most :data:`BATCH` tasks) on the database thread,
and waits as long as each took before the next (SQLite's one writer is shared with the
scheduler's commits); the claim of each batch runs in a scheduling round, so a recovery
and a deletion of one task never interleave.
Workspaces are deleted first (a crash leaves rows whose workspaces are gone, which the
next pass deletes), best effort: a node that is down keeps its copy.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any, Callable, Iterable, Optional

from litepipeline.common import clock

LOG = logging.getLogger(__name__)
BATCH = 500           # the most tasks per transaction
WORKSPACE_CALLS = 16  # workspace deletes in flight at once
MIN_DELAY = 1.0       # seconds: the shortest sleep between passes that found nothing more
MAX_DELAY = 3600.0    # seconds: the longest (a wall-clock step is noticed within it)
LATENESS = 0.01       # of the age: the shortest sleep between passes for long ages
START_BATCH = 50      # tasks in a pass's first transaction; then sized to take about TARGET
TARGET = 0.02         # seconds: a batch's transaction, which on SQLite holds the scheduler's commits back
MIN_BATCH = 10


def batch_size(size: int, took: float, largest: int) -> int:
    """The next batch's size: scaled so its transaction takes about :data:`TARGET` seconds
    (the last one, ``size`` tasks, took ``took``), at most doubling, within
    [:data:`MIN_BATCH`, ``largest``]."""
    wanted = size * 2 if took <= 0 else int(size * TARGET / took)
    return min(largest, max(MIN_BATCH, min(wanted, size * 2)))


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """Database thread: ``fn(*args)`` and the seconds it took."""
    started = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - started


class RetentionPolicy:
    """The pure decisions: which tasks go, and when to look again."""

    def __init__(self, days: float) -> None:
        self.age = dt.timedelta(days=days)

    @property
    def enabled(self) -> bool:
        return self.age > dt.timedelta(0)

    def cutoff(self, now: dt.datetime) -> dt.datetime:
        """Tasks that ended before this go."""
        return now - self.age

    def choose(self, candidates: Iterable[dict], now: dt.datetime, keep_tasks: set, keep_works: set) -> list[str]:
        """The ids among ``candidates`` (rows with task_id, stage, end_at, work_id) to delete."""
        cutoff = self.cutoff(now)
        return [row["task_id"] for row in candidates
                if row["stage"] == "finished" and row["end_at"] is not None and row["end_at"] < cutoff
                and row["task_id"] not in keep_tasks and not (row.get("work_id") and row["work_id"] in keep_works)]

    def next_delay(self, now: dt.datetime, next_end: Optional[dt.datetime]) -> float:
        """Seconds until the next pass: when the oldest finished task left (``next_end``)
        reaches the age, or a whole age when no task is finished yet."""
        if next_end is None:
            seconds = self.age.total_seconds()
        else:
            seconds = (next_end + self.age - now).total_seconds()
        # tasks finishing every second would otherwise mean a pass every second (each one
        # reading the old tasks kept back again): a task may go up to 1 % of the age late
        shortest = max(MIN_DELAY, self.age.total_seconds() * LATENESS)
        return min(max(seconds, shortest), MAX_DELAY)


class Retention:
    """Runs the policy: a timer on the event loop, the store work on the database thread."""

    def __init__(self, policy: RetentionPolicy, manager: Any, now: Callable[[], dt.datetime] = clock.now,
                 batch: int = BATCH) -> None:
        self.policy = policy
        self.manager = manager
        self.now = now
        self.batch = batch
        self.size = min(batch, START_BATCH)   # tasks per transaction now (see batch_size)
        self.retiring: set[str] = set()   # claimed by the pass in progress: a recover is refused
        self._timer: Optional[asyncio.TimerHandle] = None
        self._pass: Optional[asyncio.Task] = None
        self.deleted = 0   # tasks deleted since start (for logs and tests)

    def start(self) -> None:
        if self.policy.enabled:
            self._arm(0)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pass is not None:
            self._pass.cancel()

    def _arm(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(delay, self._begin)

    def _begin(self) -> None:
        self._timer = None
        self._pass = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        delay = MIN_DELAY
        try:
            await self.run_once()
            delay = self.policy.next_delay(self.now(), await self.manager.db(
                self._next_end, self.policy.cutoff(self.now())))
        except asyncio.CancelledError:
            return
        except Exception:  # noqa: BLE001 - the next pass tries again
            LOG.exception("task retention pass failed")
            delay = 60.0
        finally:
            self._pass = None
        if not self.manager.closing:
            self._arm(delay)

    def _next_end(self, cutoff: dt.datetime) -> Optional[dt.datetime]:
        from litepipeline.manager.store import history
        return history.next_end(self.manager.store.engine, cutoff)

    async def run_once(self) -> int:
        """One pass: every task past the age, batch by batch; returns how many were deleted."""
        from litepipeline.manager.store import history

        manager, engine, total = self.manager, self.manager.store.engine, 0
        now = self.now()
        cutoff, after = self.policy.cutoff(now), None
        while not manager.closing:
            rows = await manager.db(history.finished_before, engine, cutoff, after, self.size)
            if not rows:
                break
            after = (rows[-1]["end_at"], rows[-1]["id"])
            chosen = await manager.dispatcher.submit(lambda rows=rows: self._claim(rows, now))
            took = 0.0
            try:
                if chosen:
                    nodes = await manager.db(history.holders, engine, chosen)
                    await self._delete_workspaces(nodes)
                    gone, took = await manager.db(_timed, history.delete_finished, engine, chosen)
                    total += len(gone)
            finally:
                self.retiring.difference_update(chosen)
            if len(rows) < self.size:
                break
            self.size = batch_size(self.size, took, self.batch)
            # SQLite has one writer: the scheduler's commits wait while a batch is written,
            # so the retention takes at most about half of the store's time
            await asyncio.sleep(took)
        if total:
            self.deleted += total
            LOG.info("task retention: %d finished task(s) older than %s deleted", total, cutoff)
        return total

    def _claim(self, rows: list[dict], now: dt.datetime) -> list[str]:
        """In a scheduling round: what the policy lets go now, minus tasks in memory."""
        manager = self.manager
        keep = {row.get("task_id") for row in manager.services.state.services.values()}
        keep.update(manager.core.tasks)
        chosen = self.policy.choose(rows, now, keep, set(manager.works.wcore.works))
        self.retiring.update(chosen)
        return chosen

    async def _delete_workspaces(self, nodes: dict[str, set]) -> None:
        streams, gate, failures = self.manager.workspaces, asyncio.Semaphore(WORKSPACE_CALLS), []

        async def one(task_id: str, node_ids: set) -> None:
            async with gate:
                failures.extend(await streams.delete_on(task_id, node_ids))

        await asyncio.gather(*(one(t, n) for t, n in nodes.items() if n))
        if failures:
            LOG.warning("task retention: %d workspace delete(s) failed (kept on their nodes), e.g. %s",
                        len(failures), failures[0])
