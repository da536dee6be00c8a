"""Bounded byte-chunk channels between the event loop and one worker thread.

Tar archives are written and read with :mod:`tarfile`, which blocks; the node and the
manager run it in a thread and move the bytes to and from the event loop through a
:class:`Channel`: at most ``maxsize`` chunks wait in it, so a slow reader slows the
writer down instead of filling memory. The loop side awaits (``put``/``get``), the thread
side blocks (``put_blocking``/``get_blocking``); either side may :meth:`Channel.abort` it,
after which both sides get the abort's exception. Shared by the node and the manager.
"""
from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any, Optional

#: put into a channel after the last chunk
EOF = b""
CHUNK_SIZE = 256 * 1024


class ChannelAborted(Exception):
    """The other side gave up; carries its reason."""


class Channel:
    """A bounded queue of ``bytes`` chunks; create it on the event loop."""

    def __init__(self, maxsize: int = 8) -> None:
        self.maxsize = maxsize
        self._loop = asyncio.get_running_loop()
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._changed = asyncio.Event()
        self._error: Optional[BaseException] = None

    @property
    def error(self) -> Optional[BaseException]:
        return self._error

    def _notify_loop(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._changed.set)
        except RuntimeError:  # the loop is closed: nobody waits there any more
            pass

    def abort(self, error: Optional[BaseException] = None) -> None:
        """End the channel for both sides (the first reason given is kept)."""
        with self._cond:
            if self._error is None:
                self._error = error or ChannelAborted("channel aborted")
            self._cond.notify_all()
        self._notify_loop()

    # -- thread side ---------------------------------------------------------------------
    def put_blocking(self, chunk: bytes) -> None:
        with self._cond:
            while len(self._items) >= self.maxsize and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise ChannelAborted(str(self._error)) from self._error
            self._items.append(chunk)
        self._notify_loop()

    def get_blocking(self) -> bytes:
        with self._cond:
            while not self._items and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise ChannelAborted(str(self._error)) from self._error
            chunk = self._items.popleft()
            self._cond.notify_all()
        self._notify_loop()
        return chunk

    # -- loop side -----------------------------------------------------------------------
    async def put(self, chunk: bytes) -> None:
        while True:
            with self._cond:
                if self._error is not None:
                    raise ChannelAborted(str(self._error)) from self._error
                if len(self._items) < self.maxsize:
                    self._items.append(chunk)
                    self._cond.notify_all()
                    return
                self._changed.clear()
            await self._changed.wait()

    async def get(self) -> bytes:
        """The next chunk; :data:`EOF` after the last one (raises if the channel was aborted)."""
        while True:
            with self._cond:
                if self._error is not None:
                    raise ChannelAborted(str(self._error)) from self._error
                if self._items:
                    chunk = self._items.popleft()
                    self._cond.notify_all()
                    return chunk
                self._changed.clear()
            await self._changed.wait()


class ChannelWriter:
    """A write-only file object (for ``tarfile``) sending ``CHUNK_SIZE`` chunks into a channel."""

    def __init__(self, channel: Channel, chunk_size: int = CHUNK_SIZE) -> None:
        self.channel = channel
        self.chunk_size = chunk_size
        self._buffer = bytearray()

    def write(self, data: Any) -> int:
        self._buffer += data
        while len(self._buffer) >= self.chunk_size:
            self.channel.put_blocking(bytes(self._buffer[:self.chunk_size]))
            del self._buffer[:self.chunk_size]
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Send what is buffered, then :data:`EOF`."""
        if self._buffer:
            self.channel.put_blocking(bytes(self._buffer))
            self._buffer.clear()
        self.channel.put_blocking(EOF)


class ChannelReader:
    """A read-only file object (for ``tarfile`` in ``r|`` mode) fed by a channel."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._buffer = bytearray()
        self._eof = False

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or len(self._buffer) < size):
            chunk = self.channel.get_blocking()
            if chunk == EOF:
                self._eof = True
            else:
                self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out
