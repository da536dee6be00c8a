"""The push channel: what a committed scheduling round changed, fanned out to browsers.

The dispatcher calls :meth:`Hub.publish` with each batch once it is persisted. The hub
turns the batch into small JSON events *at once* (the batch's objects keep changing
after the call) and only for the topics someone listens to, then offers them to each
subscriber's bounded queue. A browser that reads too slowly overflows its queue: its
events are dropped and it is sent one ``resync`` instead, so it refetches the state.
The scheduler never waits for a browser.
"""
from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any, Container, Optional

from litepipeline.common import clock
from litepipeline.common.errors import ServiceUnavailable
from litepipeline.manager.taskstate import Batch
from litepipeline.manager.ui.states import action_state, task_state

QUEUE_LIMIT = 256   # events a subscriber may have unread before it is told to resync
MAX_SUBSCRIBERS = 1000   # open event streams, all browsers together
TOPICS = ("cluster", "tasks", "task", "work")
ALL_WORKS = ""   # a ``work`` subscriber without a work id hears every work (the works list)


def task_summary(task: Any) -> dict:
    """A task as the task list shows it."""
    return {"task_id": task.task_id, "task_name": task.task_name, "application_id": task.application_id,
            "create_at": clock.fmt(task.create_at), "start_at": clock.fmt(task.start_at),
            "end_at": clock.fmt(task.end_at), "stage": task.stage, "status": task.status,
            "message": task.message, "state": task_state(task.stage, task.status)}


def action_summary(action: Any, new: bool = False) -> dict:
    """An action's changing fields, as the task page redraws them."""
    return {"name": action.name, "stage": action.stage, "status": action.status, "attempt": action.attempt,
            "node_id": action.node_id, "start_at": clock.fmt(action.start_at), "end_at": clock.fmt(action.end_at),
            "returncode": action.returncode, "message": action.message, "kind": action.kind,
            "parent": action.parent, "to_action": action.to_action, "condition": list(action.condition),
            "state": action_state(action.stage, action.status, action.retry_at), "new": new}


def attempt_summary(record: Any) -> dict:
    return {"attempt_id": record.attempt_id, "name": record.name, "attempt": record.attempt,
            "node_id": record.node_id, "dispatched_at": clock.fmt(record.dispatched_at),
            "start_at": clock.fmt(record.start_at), "end_at": clock.fmt(record.end_at), "status": record.status,
            "returncode": record.returncode, "message": record.message}


def task_events(batch: Batch, wanted: Optional[Container[str]] = None) -> dict[str, dict]:
    """task_id -> ``{task?, actions, attempts}``: what the round changed in each task
    (only in the ``wanted`` tasks when given: the others cost nothing)."""
    out: dict[str, dict] = {}

    def entry(task_id: str) -> Optional[dict]:
        item = out.get(task_id)
        if item is None:
            if wanted is not None and task_id not in wanted:
                return None
            item = out[task_id] = {"task_id": task_id, "actions": [], "attempts": []}
        return item

    for task in (*batch.new_tasks, *batch.tasks.values()):
        item = entry(task.task_id)
        if item is not None:
            item["task"] = task_summary(task)
    for actions, new in ((batch.new_actions, True), (batch.actions.values(), False)):
        for action in actions:
            item = entry(action.task_id)
            if item is not None:
                item["actions"].append(action_summary(action, new=new))
    for record in (*batch.new_attempts, *batch.attempts.values()):
        item = entry(record.task_id)
        if item is not None:
            item["attempts"].append(attempt_summary(record))
    return out


def work_summary(work: Any) -> dict:
    """A work (``manager.workflows.WorkState``) as the works list and the work page redraw it."""
    return {"work_id": work.work_id, "name": work.name, "workflow_id": work.workflow_id,
            "create_at": clock.fmt(work.create_at), "start_at": clock.fmt(work.start_at),
            "end_at": clock.fmt(work.end_at), "stage": work.stage, "status": work.status,
            "message": work.message, "event_task_id": work.event_task_id, "state": task_state(work.stage, work.status),
            "entries": [{"name": e["name"], "task_id": e.get("task_id"), "stage": e.get("stage"),
                         "status": e.get("status")} for e in work.entries.values()]}


def work_events(batch: Batch, wanted: Container[str]) -> dict[str, dict]:
    """work_id -> ``{work_id, work?, tasks}``: the works the round changed, and their
    tasks that moved (an entry's task starting is no change to its work). With
    :data:`ALL_WORKS` in ``wanted`` every work counts, else only the ``wanted`` ones."""
    every = ALL_WORKS in wanted
    out: dict[str, dict] = {}

    def entry(work_id: Optional[str]) -> Optional[dict]:
        if not work_id or not (every or work_id in wanted):
            return None
        item = out.get(work_id)
        if item is None:
            item = out[work_id] = {"work_id": work_id, "tasks": []}
        return item

    for work in (*batch.new_works, *batch.works):
        item = entry(work.work_id)
        if item is not None:
            item["work"] = work_summary(work)
    for task in (*batch.new_tasks, *batch.tasks.values()):
        item = entry(getattr(task, "work_id", None))
        if item is not None:
            item["tasks"].append(task_summary(task))
    return out


def list_event(batch: Batch) -> Optional[dict]:
    """The task list's event: tasks created or whose stage/status moved; None if none."""
    tasks = [task_summary(t) for t in (*batch.new_tasks, *batch.tasks.values())]
    if not tasks:
        return None
    return {"tasks": tasks, "created": [t.task_id for t in batch.new_tasks]}


def slots_changed(batch: Batch) -> bool:
    """Whether a node's busy slots may have changed (an attempt started or ended)."""
    return bool(batch.new_attempts or batch.attempts)


class Subscriber:
    """One browser's event stream: a bounded queue of encoded events."""

    def __init__(self, topic: str, task_id: Optional[str] = None, limit: int = QUEUE_LIMIT) -> None:
        if topic not in TOPICS:
            raise ValueError(f"unknown topic {topic!r}")
        self.topic = topic
        self.task_id = task_id
        self.limit = limit
        self.queue: deque[str] = deque()
        self.overflowed = False
        self.closed = False
        self._wake = asyncio.Event()

    def offer(self, event: str) -> None:
        """Never blocks: past the limit the queue is dropped and a resync is owed instead."""
        if self.closed or self.overflowed:
            return
        if len(self.queue) >= self.limit:
            self.queue.clear()
            self.overflowed = True
        else:
            self.queue.append(event)
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    def take(self) -> list[str]:
        """Every event waiting (``resync`` alone after an overflow), as SSE frames."""
        if self.overflowed:
            self.overflowed = False
            self.queue.clear()
            frames = ["event: resync\ndata: {}\n\n"]
        else:
            frames = [f"data: {event}\n\n" for event in self.queue]
            self.queue.clear()
        self._wake.clear()
        return frames

    async def wait(self, timeout: float) -> None:
        """Until something arrives, the subscriber is closed, or ``timeout`` seconds."""
        if self.queue or self.overflowed or self.closed:
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except asyncio.TimeoutError:
            pass


class Hub:
    """Every open event stream, by topic; fed by the dispatcher's committed rounds."""

    def __init__(self, max_subscribers: int = MAX_SUBSCRIBERS) -> None:
        self.max_subscribers = max_subscribers
        self._subs: dict[str, set[Subscriber]] = {topic: set() for topic in TOPICS}
        self._by_task: dict[str, set[Subscriber]] = {}
        self._by_work: dict[str, set[Subscriber]] = {}
        self.published = 0

    def subscribe(self, topic: str, task_id: Optional[str] = None, limit: int = QUEUE_LIMIT) -> Subscriber:
        """A new subscriber; ServiceUnavailable when too many streams are open already."""
        if len(self) >= self.max_subscribers:
            raise ServiceUnavailable(f"{len(self)} event streams are open, the most this manager serves")
        sub = Subscriber(topic, task_id, limit)
        self._subs[topic].add(sub)
        if topic == "task":
            self._by_task.setdefault(task_id or "", set()).add(sub)
        elif topic == "work":   # task_id: the work's id here (ALL_WORKS for every work)
            self._by_work.setdefault(task_id or ALL_WORKS, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        sub.close()
        self._subs[sub.topic].discard(sub)
        index = {"task": self._by_task, "work": self._by_work}.get(sub.topic)
        if index is not None:
            subs = index.get(sub.task_id or "")
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del index[sub.task_id or ""]

    def close(self) -> None:
        for subs in self._subs.values():
            for sub in list(subs):
                self.unsubscribe(sub)

    def __len__(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def nodes_changed(self) -> None:
        """A node joined or left (the cluster calls this)."""
        for sub in self._subs["cluster"]:
            sub.offer('{"nodes": true}')

    def publish(self, batch: Batch) -> None:
        """Called after a round is persisted; costs nothing when no browser listens."""
        if not len(self):
            return
        self.published += 1
        if self._by_task:
            for task_id, event in task_events(batch, self._by_task).items():
                subs = self._by_task.get(task_id)
                if subs:
                    encoded = json.dumps(event)
                    for sub in subs:
                        sub.offer(encoded)
        if self._by_work and (batch.new_works or batch.works or batch.new_tasks or batch.tasks):
            everyone = self._by_work.get(ALL_WORKS, ())
            for work_id, event in work_events(batch, self._by_work).items():
                subs = [*self._by_work.get(work_id, ()), *everyone]
                if subs:
                    encoded = json.dumps(event)
                    for sub in subs:
                        sub.offer(encoded)
        if self._subs["tasks"]:
            event = list_event(batch)
            if event is not None:
                encoded = json.dumps(event)
                for sub in self._subs["tasks"]:
                    sub.offer(encoded)
        if self._subs["cluster"] and slots_changed(batch):
            for sub in self._subs["cluster"]:
                sub.offer('{"slots": true}')
