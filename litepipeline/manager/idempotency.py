"""``POST /task/create`` with an ``Idempotency-Key``: a repeated key gets the first task back.

A client whose answer was lost (a timeout, a dropped connection) retries with the same key
and gets the task its first request made instead of a second one, for 24 hours. The key
is recorded (with the new task's id) before the task is created, in the store, so the
promise survives a manager restart: a key whose task was never stored (the manager died
in between) creates it then, under the recorded id.
"""
from __future__ import annotations

import asyncio
import re
import uuid
from typing import Awaitable, Callable

from litepipeline.common import clock
from litepipeline.common.errors import InvalidParameters, OperationFailed
from litepipeline.manager.dbthread import DbThread
from litepipeline.manager.store import idempotency
from litepipeline.manager.store.store import Store

HEADER = "Idempotency-Key"
KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")   # visible ASCII, as header values allow


def check_key(key: str) -> str:
    if not KEY_RE.fullmatch(key):
        raise InvalidParameters(f"header '{HEADER}' must be 1 to 255 visible ASCII characters")
    return key


class KeyedCreates:
    """Creates tasks under keys, one keyed create at a time (they are rare; it keeps two
    requests with one key from both creating)."""

    def __init__(self, db: DbThread, store: Store, create: Callable[..., Awaitable[str]],
                 exists: Callable[[str], Awaitable[bool]]) -> None:
        self.db = db
        self.store = store
        self.create = create
        self.exists = exists
        self._lock = asyncio.Lock()

    async def create_task(self, key: str, app_id: str, task_name: str, input_data: dict) -> str:
        async with self._lock:
            task_id = str(uuid.uuid4())
            record = await self.db(idempotency.claim, self.store.engine, key, task_id, app_id, clock.now())
            if record is None:
                try:
                    return await self.create(app_id, task_name, input_data, task_id=task_id)
                except Exception:
                    await self.db(idempotency.release, self.store.engine, key)
                    raise
            if record["application_id"] != app_id:
                raise OperationFailed(f"{HEADER} {key!r} was used for a task of application "
                                      f"{record['application_id']} within the last 24 hours")
            if await self.exists(record["task_id"]):
                return record["task_id"]
            # recorded by a manager that stopped before the task was stored: create it now
            return await self.create(app_id, task_name, input_data, task_id=record["task_id"])
