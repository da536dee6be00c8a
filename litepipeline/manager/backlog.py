"""The pending queue beyond the scheduler's window: tasks kept in the store, not in memory.

The scheduler core holds every unfinished task it can dispatch in full (a ``TaskState``
with its ``ActionState``\\ s, ~3.6 KB each). With 100,000 pending tasks that alone would
be ~360 MB, so the core keeps at most a *window* of pending tasks (plus those running);
the rest wait in the store (stage ``pending``), and only their ids are in memory, in
creation order (~150 bytes each), in :class:`BacklogCore`.

* A task created while the window is full, or while older tasks wait in the backlog, is
  written to the store in its round and its id appended here (FIFO: it may not pass them).
* At the start of a round, when the window has room, the oldest ids are read from the
  store (full rows, on the database thread) and admitted into the core *before* the
  round's events, so nothing between the read and the admission can change those rows:
  rounds are serial and each commits before the next starts.
* Tasks no free node can take (their targets allow only busy or absent nodes) do not
  count toward the window, up to ``UNPLACED_FACTOR`` window(s) of them. Past that bound the
  newest of them are *parked*: dropped from memory (their rows are as stored, pending)
  and kept here by id with their ready actions' targets, never read while parked, so
  newer tasks other nodes can run are read past them. Once a scan ends with a free node
  that one of a parked class's targets allows (a node joined, or one that can take them
  has nothing left in memory to run), that class goes back to the front of the queue.
* A stop or delete of a backlogged task goes through a round too: a stop pulls the task
  forward (read and admitted first in the next round), then the core's ordinary stop ends
  it, with everything an end implies (works, services, waiting clients, the web page).

:class:`BacklogCore` is the pure part (what to read, what a new task does), tested
without network or database; :class:`Backlog` is its driver, called by the dispatcher.
"""
from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any, Iterable, Optional

from litepipeline.common.errors import TaskAlreadyFinished, TaskNotExists
from litepipeline.manager.placement import FreeNodes
from litepipeline.manager.taskstate import TaskState

LOG = logging.getLogger(__name__)
READ_RETRY = 0.5  # seconds before a failed read is tried again
SLOT_FACTOR = 4   # the window holds at least this many pending tasks per action slot
# tasks no free node can take (their targets allow only busy or absent nodes) are held
# beyond the window, up to this many windows more; the rest are parked (a round passes
# over every task held, so this bounds its cost as well as memory)
UNPLACED_FACTOR = 1
PARKED = "held in the store until a node its targets allow has a free slot"


class BacklogCore:
    """The backlog's ids in creation order and the decisions on them; pure."""

    def __init__(self, window: int) -> None:
        self.window = max(1, window)
        self._ids: dict[str, None] = {}       # insertion order is creation order
        self._wanted: dict[str, None] = {}    # pulled forward (a stop): read first
        self._stops: dict[str, int] = {}      # task_id -> signal, applied once admitted
        self._parked: dict[str, str] = {}     # task_id -> its class, in the order parked
        #: a parked class -> the targets its tasks' ready actions need (one allowed: it wakes)
        self.classes: dict[str, list] = {}

    def __len__(self) -> int:
        return len(self._ids) + len(self._parked)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._ids or task_id in self._parked

    def parked(self, task_id: str) -> bool:
        return task_id in self._parked

    def parked_count(self) -> int:
        return len(self._parked)

    def park(self, task_id: str, targets: list) -> None:
        """Keep ``task_id`` (dropped from memory) unread until a node its ``targets`` allow is free."""
        key = _class_key(targets)
        self.classes.setdefault(key, targets)
        self._parked[task_id] = key
        self._ids.pop(task_id, None)

    def is_parked_class(self, targets: list) -> bool:
        """Whether tasks needing ``targets`` are parked now (a new one then joins them)."""
        return _class_key(targets) in self.classes

    def wake(self, keys: Iterable[str]) -> int:
        """Put the parked tasks of the classes ``keys`` back at the front of the queue,
        oldest first (they were admitted before every task still queued); returns how many."""
        keys = set(keys)
        woken = [task_id for task_id, key in self._parked.items() if key in keys]
        for task_id in woken:
            del self._parked[task_id]
        for key in keys:
            self.classes.pop(key, None)
        if woken:
            self._ids = {**dict.fromkeys(woken), **self._ids}
        return len(woken)

    def target(self, slots: int) -> int:
        """How many pending tasks the core should hold: the window, or more for many slots."""
        return max(self.window, SLOT_FACTOR * slots)

    def counted(self, pending: int, unplaced: int, slots: int) -> int:
        """How many of ``pending`` in-memory tasks count toward the window: not those the
        last scan could place nowhere while slots were free (``unplaced``: their targets
        allow only busy or absent nodes), up to ``UNPLACED_FACTOR`` window(s) of them, so a
        heap of tasks for one label cannot hold back newer tasks that other nodes could
        run, and memory stays bounded."""
        return max(0, pending - min(unplaced, UNPLACED_FACTOR * self.target(slots)))

    def takes_new(self, in_memory: int, slots: int) -> bool:
        """Whether a new task goes to the backlog: older tasks wait there (FIFO), or the
        core is full."""
        return bool(self._ids) or in_memory >= self.target(slots)

    def add(self, task_id: str) -> None:
        self._ids[task_id] = None

    def extend(self, task_ids: Iterable[str]) -> None:
        for task_id in task_ids:
            self._ids[task_id] = None

    def to_read(self, pending_in_memory: int, slots: int) -> list[str]:
        """The ids to read and admit now: the wanted ones, then the oldest, refilling the
        window once it has drained to three quarters (so reads come in batches)."""
        out = [task_id for task_id in self._wanted if task_id in self]
        if self.wants_read(pending_in_memory, slots):
            room = self.target(slots) - pending_in_memory
            for task_id in self._ids:
                if room <= 0:
                    break
                if task_id not in self._wanted:
                    out.append(task_id)
                    room -= 1
        return out

    def wants_read(self, pending_in_memory: int, slots: int) -> bool:
        """Whether the window has drained enough to read the next oldest tasks."""
        target = self.target(slots)
        return bool(self._ids) and pending_in_memory <= target - max(1, target // 4)

    def read_done(self, task_ids: Iterable[str]) -> None:
        """``task_ids`` were read: admitted now, or gone from the store (deleted)."""
        for task_id in task_ids:
            self._ids.pop(task_id, None)
            self._parked.pop(task_id, None)
            self._wanted.pop(task_id, None)

    def want(self, task_id: str) -> None:
        """Admit this task at the next round, whatever the window (a stop is coming)."""
        if task_id in self:
            self._wanted[task_id] = None

    def defer_stop(self, task_id: str, signal: int) -> None:
        """A stop decided inside a round: applied in the next one, once the task is admitted."""
        self.want(task_id)
        self._stops[task_id] = signal

    def take_stops(self) -> dict[str, int]:
        """The deferred stops whose tasks have left the backlog (admitted); the others wait."""
        stops = {t: s for t, s in self._stops.items() if t not in self}
        self._stops = {t: s for t, s in self._stops.items() if t in self}
        return stops

    def discard(self, task_id: str) -> None:
        """A task deleted while it waited here."""
        self._ids.pop(task_id, None)
        self._parked.pop(task_id, None)
        self._wanted.pop(task_id, None)
        self._stops.pop(task_id, None)

    def busy(self) -> bool:
        """Whether the next round has something to read whatever the window: a stop waits."""
        return bool(self._wanted)

    def position(self, task_id: str) -> Optional[int]:
        """How many queued tasks are older than ``task_id`` (None: not queued, or parked).
        O(n), for ``task info`` only."""
        if task_id not in self._ids:
            return None
        for index, other in enumerate(self._ids):
            if other == task_id:
                return index
        return None   # pragma: no cover - checked above


def _class_key(targets: list) -> str:
    # interned: 100,000 parked tasks of one application share one key
    return sys.intern(json.dumps(targets, sort_keys=True, default=str))


def pending_in_memory(core: Any) -> int:
    """An O(1) estimate of the core's tasks that wait for a first dispatch: unfinished
    tasks minus running attempts (a task with several running actions counts less)."""
    return max(0, len(core.tasks) - core.running_count())


class Backlog:
    """Owns the backlog: the dispatcher calls :meth:`prepare` and :meth:`apply` at the start
    of every round; the core asks :meth:`takes_new` of every new task."""

    def __init__(self, core: Any, store: Any, db: Any, window: int) -> None:
        self.core = core
        self.store = store
        self.db = db
        self.state = BacklogCore(window)
        self._read: list[tuple[dict, list[dict]]] = []
        self._asked: list[str] = []
        core.backlog = self

    # -- the core's questions (inside a round) --------------------------------------------
    def slots(self) -> int:
        return sum(node.slots for node in self.core.nodes.values())

    def takes_new(self, task: TaskState) -> bool:
        """Called by ``SchedulerCore.add_task``: True when the task waits in the store."""
        slots = self.slots()
        state = self.state
        if state.takes_new(state.counted(len(self.core.tasks), self.core.unplaced, slots), slots):
            # of a parked class: parked at once, never read only to be parked again
            targets = self.core.ready_targets(task) if state.classes else None
            if targets and None not in targets and state.is_parked_class(targets):
                state.park(task.task_id, targets)
            else:
                state.add(task.task_id)
            return True
        return False

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.state

    def defer_stop(self, task_id: str, signal: int) -> None:
        self.state.defer_stop(task_id, signal)

    def discard(self, task_id: str) -> None:
        self.state.discard(task_id)

    def want(self, task_id: str) -> None:
        self.state.want(task_id)

    # -- the dispatcher's round -----------------------------------------------------------
    def has_work(self) -> bool:
        """Whether a round would read, park or wake something now (the dispatcher runs one if so)."""
        slots = self.slots()
        state = self.state
        return state.busy() or state.wants_read(self._pending(slots), slots) \
            or self._over(slots) > 0 or bool(self._wakeable())

    def _over(self, slots: int) -> int:
        """How many tasks the last scan could place nowhere past the bound held in memory."""
        return self.core.unplaced - UNPLACED_FACTOR * self.state.target(slots)

    def _wakeable(self) -> list[str]:
        """The parked classes a node left free by the last scan allows."""
        state, core = self.state, self.core
        if not state.classes or not core.free_after:
            return []
        free = FreeNodes(core.free_after, core.nodes)
        return [key for key, targets in state.classes.items()
                if any(target is None or free.allowed(target) for target in targets)]

    def _pending(self, slots: int) -> int:
        return self.state.counted(pending_in_memory(self.core), self.core.unplaced, slots)

    async def prepare(self) -> None:
        """Before a round's events: park and wake (see the module docstring), then read the
        tasks to admit (database thread)."""
        slots = self.slots()
        self._park_and_wake(slots)
        if not self.state:
            return
        ids = self.state.to_read(self._pending(slots), slots)
        if not ids:
            return
        try:
            self._read = await self.db(self.store.load_tasks, ids)
        except Exception:  # noqa: BLE001 - the tasks stay in the backlog; a later round reads them
            LOG.exception("backlog: reading %d task(s) failed", len(ids))
            await asyncio.sleep(READ_RETRY)   # not a busy loop while the store is away
            return
        self._asked = ids

    def _park_and_wake(self, slots: int) -> None:
        """Nothing of the core changes between the last round's scan and this (rounds are
        serial and each committed before the next), so its findings still hold."""
        core, state = self.core, self.state
        keys = self._wakeable()
        if keys:
            LOG.info("backlog: %d parked task(s) queued again: a node they may use has a free slot",
                     state.wake(keys))
        over = self._over(slots)
        if over <= 0:
            return
        parked = 0
        for task in core.unplaced_tasks[-over:]:
            targets = core.ready_targets(task)
            if core.unload(task.task_id) is not None:
                state.park(task.task_id, targets)
                parked += 1
        # what could not be parked (never: they are pending and this round wrote nothing yet)
        # is not asked about again, so no round loops on it
        core.unplaced = min(core.unplaced - parked, UNPLACED_FACTOR * state.target(slots))
        if parked:
            LOG.info("backlog: %d task(s) no free node can take parked in the store (%d parked in all)",
                     parked, state.parked_count())

    def apply(self) -> list:
        """In the round, first: admit what :meth:`prepare` read, then apply deferred stops."""
        read, self._read = self._read, []
        asked, self._asked = self._asked, []
        self.state.read_done(asked)
        for row, action_rows in read:
            if row["task_id"] in self.core.tasks or row["stage"] != "pending":
                continue   # never: only rounds change a backlogged row, and none ran since the read
            self.core.load(TaskState.from_rows(row, action_rows))
        if len(asked) != len(read):
            LOG.info("backlog: %d task(s) were deleted before their admission", len(asked) - len(read))
        stops: list = []
        for task_id, signal in self.state.take_stops().items():
            if task_id in self.core.tasks:
                try:
                    stops.extend(self.core.stop_task(task_id, signal))
                except (TaskNotExists, TaskAlreadyFinished):
                    pass   # it ended meanwhile: nothing to stop
        return stops

    def adopt(self, tasks: Iterable[TaskState], task_ids: Iterable[str]) -> None:
        """Tasks of this round's batch (``tasks``) that the store refused (``task_ids``): taken
        into the core, so it fails them as it fails the others (see Dispatcher._save)."""
        wanted = {t for t in task_ids if t in self.state}
        for task in tasks:
            if task.task_id in wanted:
                self.state.discard(task.task_id)
                self.core.load(task)

    def load(self, task_ids: Iterable[str]) -> None:
        """At start: the pending tasks beyond the window, oldest first."""
        self.state.extend(task_ids)
        if self.state:
            LOG.info("%d pending task(s) wait in the store beyond the scheduler's window of %d",
                     len(self.state), self.state.window)

    def waiting(self, task_id: str) -> Optional[str]:
        """``task info``'s ``waiting_for`` of a backlogged task."""
        ahead = self.state.position(task_id)
        if ahead is None:
            return None
        return (f"queued: {len(self.core.tasks)} task(s) are ahead in the scheduler and {ahead} older "
                f"pending task(s) wait in the store before this one")
