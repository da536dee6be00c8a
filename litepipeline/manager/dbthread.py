"""Runs blocking store calls on one dedicated thread, so the event loop never waits on SQL.

One thread serializes every database call: SQLite allows one writer anyway, and the
scheduler's batches stay in order.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable


class DbThread:
    """``await db(fn, *args)`` runs ``fn(*args)`` on the database thread."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="litepipeline-db")

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
