"""The scheduler's rounds written to PostgreSQL from the event loop (psycopg's asyncio API).

A round written from the database thread wakes four parties in turn: that thread, the
server, the thread again (which then waits for the GIL behind the busy loop), and the loop.
On a machine whose cores are all busy (actions running) each wake-up waits for a core,
and the round, which the next dispatch waits for, took ten times its lone time. Written
from the loop, a round wakes the server and then the loop: BEGIN, every statement and
COMMIT go out in one pipeline with one sync, and one answer comes back.

The loop itself never waits on the server (the connection is non-blocking); what runs on
it is the rows' conversion, which the thread would hold the GIL for anyway. Very large
rounds still go to the database thread (the dispatcher decides), so no single round holds
the loop for long.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from litepipeline.manager.taskstate import Batch

LOG = logging.getLogger(__name__)


class LoopWriter:
    """``await writer.save(batch)``: one round in one transaction, on its own connection."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._conn: Any = None

    async def save(self, batch: Batch) -> None:
        """Write ``batch`` as :meth:`Store.save` does (same statements, same fencing)."""
        store = self.store
        writes = store.compiled_writes()
        conn = self._conn or await self._connect()
        try:
            # autocommit: BEGIN and COMMIT are sent as statements, in the pipeline
            # (psycopg's own transaction handling would sync and wait on each)
            async with conn.pipeline():
                cursor = conn.cursor()
                try:
                    await cursor.execute("BEGIN")
                    for name, objects in store.changes(batch):
                        if objects:
                            write = writes[name]
                            await cursor.executemany(write.sql, [write.params(o.to_row()) for o in objects])
                    if store.epoch is not None:   # fencing, as in Store.save
                        await cursor.execute(store.fence_sql())
                    await cursor.execute("COMMIT")
                finally:
                    await cursor.close()
        except BaseException as exc:
            await self._roll_back(conn)
            deposed = store.deposed_from(exc) if isinstance(exc, Exception) else None
            if deposed is not None:
                raise deposed from None
            raise

    async def _roll_back(self, conn: Any) -> None:
        try:
            await conn.rollback()
        except Exception:  # noqa: BLE001 - the round's own error is the one to raise
            self._conn = None   # the next round connects again
            try:
                await conn.close()
            except Exception:  # noqa: BLE001
                pass

    async def _connect(self) -> Any:
        import psycopg

        store = self.store
        args, kwargs = store.engine.dialect.create_connect_args(store.engine.url)
        kwargs.update(store.connect_args)
        conn = await psycopg.AsyncConnection.connect(*args, autocommit=True, **kwargs)
        if not store.synchronous_commit:
            await conn.execute("SET synchronous_commit = off")
        self._conn = conn
        return conn

    async def close(self) -> None:
        conn: Optional[Any] = self._conn
        self._conn = None
        if conn is not None:
            try:
                await conn.close()
            except Exception as exc:  # noqa: BLE001 - closing at shutdown: nothing left to lose
                LOG.debug("closing the round writer's connection: %s", exc)
