"""SQLite WAL checkpoints on the database thread, at most every :data:`CHECKPOINT_EVERY`.

SQLite rounds commit on the event loop without an fsync (WAL, ``synchronous=NORMAL``);
the checkpoint that makes them durable (and fsyncs) runs apart, driven by the sweep.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Optional

LOG = logging.getLogger(__name__)
CHECKPOINT_EVERY = 5.0   # seconds between SQLite WAL checkpoints (each one fsyncs)


class Checkpoints:
    def __init__(self, store: Any, db: Callable[..., Any], clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.db = db
        self.clock = clock
        self._running: Optional[asyncio.Future] = None
        self._last = 0.0

    def maybe(self) -> None:
        """Start a checkpoint unless one runs or one ran less than CHECKPOINT_EVERY ago."""
        now = self.clock()
        if not self.store.inline_writes or self._running is not None or now - self._last < CHECKPOINT_EVERY:
            return
        self._last = now
        self._running = asyncio.ensure_future(self._checkpoint())

    async def _checkpoint(self) -> None:
        try:
            await self.db(self.store.checkpoint)
        except Exception as exc:  # noqa: BLE001 - retried at the next sweep
            LOG.warning("WAL checkpoint failed: %s", exc)
        finally:
            self._running = None
