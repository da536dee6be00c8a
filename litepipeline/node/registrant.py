"""The node's side of the TCP channel (SPEC §5): REGISTER, HEARTBEAT, reconnect.

One connection at a time. Each REGISTER/HEARTBEAT frame is answered by one frame from the
manager, read before the next is sent. The node connects at once on start; after a lost
connection or a refused REGISTER it tries again every ``retry_interval``. A heartbeat
answered ``FAILURE`` (the manager forgot this node) is followed by a REGISTER at once.
Answers may carry ``stop: [{task_id, name, attempt_id}]``: attempts the manager no longer
expects, handed to ``on_stop``.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Callable, Optional

from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpclient import TCPClient

from litepipeline.common import protocol
from litepipeline.common.protocol import HEARTBEAT, REGISTER, SUCCESS, ProtocolError
from litepipeline.node.workspace import read_json, write_json_atomic

LOG = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10


class RegisterRefused(Exception):
    """The manager answered REGISTER with something other than SUCCESS."""


def load_node_id(path: str) -> Optional[str]:
    """The node_id persisted in ``data_path/configuration.json``, or None."""
    try:
        node_id = read_json(path).get("node_id")
    except (OSError, ValueError, AttributeError):
        return None
    return node_id if isinstance(node_id, str) and node_id else None


class Registrant:
    """Keeps the node registered with the manager.

    Args:
        host, port: the manager's TCP address.
        id_path: where the node_id is persisted.
        info: returns the node's info sent with every REGISTER/HEARTBEAT (without node_id).
        on_stop: called with the ``stop`` list of an answer.
        on_registered: called after every successful REGISTER.
        heartbeat_interval, heartbeat_timeout, retry_interval: seconds, from the config.
    """

    def __init__(self, host: str, port: int, id_path: str, info: Callable[[], dict],
                 on_stop: Callable[[list], None], on_registered: Callable[[], None],
                 heartbeat_interval: float, heartbeat_timeout: float, retry_interval: float) -> None:
        self.host = host
        self.port = port
        self.id_path = id_path
        self.info = info
        self.on_stop = on_stop
        self.on_registered = on_registered
        self.heartbeat_interval = heartbeat_interval
        self.answer_timeout = max(heartbeat_timeout, 5.0)
        self.retry_interval = retry_interval
        self.node_id: Optional[str] = load_node_id(id_path)
        self.registered = asyncio.Event()
        self._stream: Optional[IOStream] = None
        self._task: Optional[asyncio.Task] = None
        self._stopping = asyncio.Event()
        self._last_error: Optional[str] = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        self._stopping.set()
        if self._stream is not None:
            self._stream.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)

    # -- internals -----------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._session()
            except (StreamClosedError, OSError, ProtocolError, asyncio.TimeoutError, RegisterRefused) as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if isinstance(exc, StreamClosedError) and exc.real_error is not None:
                    error = f"{type(exc.real_error).__name__}: {exc.real_error}"
                # one line per change of trouble, not one per retry
                if error != self._last_error:
                    if isinstance(exc, RegisterRefused):
                        LOG.error("manager refused registration: %s", exc)
                    else:
                        LOG.warning("manager %s:%d unreachable (%s); retrying every %g s", self.host,
                                    self.port, error, self.retry_interval)
                    self._last_error = error
            except Exception:  # a bug must not end the registration loop for good
                LOG.exception("unexpected error talking to the manager")
                self._last_error = "unexpected"
            finally:
                self.registered.clear()
                if self._stream is not None:
                    self._stream.close()
                    self._stream = None
            try:
                await asyncio.wait_for(self._stopping.wait(), self.retry_interval)
            except asyncio.TimeoutError:
                pass

    async def _session(self) -> None:
        self._stream = await TCPClient().connect(self.host, self.port, timeout=CONNECT_TIMEOUT)
        await self._register()
        while True:
            try:
                await asyncio.wait_for(self._stopping.wait(), self.heartbeat_interval)
                return
            except asyncio.TimeoutError:
                pass
            answer = await self._call(HEARTBEAT)
            if answer.get("status") != SUCCESS:
                LOG.warning("manager answered heartbeat with %s (%s); registering again",
                            answer.get("status"), answer.get("message"))
                await self._register()

    async def _register(self) -> None:
        answer = await self._call(REGISTER)
        if answer.get("status") != SUCCESS:
            raise RegisterRefused(str(answer.get("message") or answer.get("status")))
        node_id = answer.get("node_id")
        if isinstance(node_id, str) and node_id and node_id != self.node_id:
            self.node_id = node_id
            write_json_atomic(self.id_path, {"node_id": node_id})
            LOG.info("registered with manager %s:%d as new node %s", self.host, self.port, node_id)
        elif self._last_error is not None or not self.registered.is_set():
            LOG.info("registered with manager %s:%d as node %s", self.host, self.port, self.node_id)
        self._last_error = None
        self.registered.set()
        self.on_registered()

    async def _call(self, command: str) -> dict:
        """Send one frame, read the answer; returns the answer's data."""
        data: dict[str, Any] = {"node_id": self.node_id}
        data.update(self.info())
        await self._stream.write(protocol.encode(command, data))
        message = await asyncio.wait_for(protocol.read_message(self._stream), self.answer_timeout)
        if message["command"] == protocol.ERROR:
            raise ProtocolError(f"manager answered {command} with ERROR: {message['data'].get('message')}")
        answer = message["data"]
        stop = answer.get("stop")
        if isinstance(stop, list) and stop:
            self.on_stop([entry for entry in stop if isinstance(entry, dict)])
        return answer


def id_path_for(data_path: str) -> str:
    return os.path.join(data_path, "configuration.json")
