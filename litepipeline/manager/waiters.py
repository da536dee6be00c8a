"""Clients waiting for a task to finish (``wait`` on ``task create``/``task info``).

One held request per client instead of polling: a waiter registers before the task is
read, and is woken when the round that finishes the task has been persisted.
"""
from __future__ import annotations

import asyncio
from typing import Any


class FinishWaiters:
    """task_id -> the futures of the requests waiting for it."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future]] = {}

    def add(self, task_id: str) -> asyncio.Future:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(task_id, set()).add(waiter)
        return waiter

    def remove(self, task_id: str, waiter: asyncio.Future) -> None:
        waiters = self._waiters.get(task_id)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del self._waiters[task_id]

    def saved(self, tasks: Any) -> None:
        """A round was persisted: wake whoever waits for one of its tasks that has finished."""
        if not self._waiters:
            return
        for task in tasks:
            if task.finished:
                for waiter in self._waiters.get(task.task_id, ()):
                    if not waiter.done():
                        waiter.set_result(None)

    def release_all(self) -> None:
        """Shutting down: answer every waiting client with what is known now."""
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
