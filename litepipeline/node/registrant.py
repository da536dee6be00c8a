"""The node's side of the TCP channel (SPEC §5): REGISTER, HEARTBEAT, reconnect.

One connection at a time. Each REGISTER/HEARTBEAT frame is answered by one frame from the
manager, read before the next is sent. The node connects at once on start; after a lost
connection or a refused REGISTER it tries again every ``retry_interval``. A heartbeat
answered ``FAILURE`` (the manager forgot this node) is followed by a REGISTER at once.
Answers may carry ``stop: [{task_id, name, attempt_id}]``: attempts the manager no longer
expects, handed to ``on_stop``.

When the manager lists the ``RUN``/``REPORT`` features in its REGISTER answer, the same
connection also carries dispatches (RUN frames from the manager, answered by the node) and
reports (REPORT frames from the node, answered by the manager): one frame each way on a
connection that is already open and authenticated, instead of a new HTTP connection per
message on the path of every action. A reader task routes incoming frames.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Callable, Optional

from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpclient import TCPClient

from litepipeline.common import protocol
from litepipeline.common.protocol import FEATURES, HEARTBEAT, REGISTER, REPORT, RUN, SUCCESS, ProtocolError
from litepipeline.node.workspace import read_json, write_json_atomic

LOG = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10


class RegisterRefused(Exception):
    """The manager answered REGISTER with something other than SUCCESS."""


class ChannelUnavailable(Exception):
    """Reports cannot go over the TCP channel now (not connected, or the manager lacks it)."""


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
        self._answer: Optional[asyncio.Future] = None          # the pending REGISTER/HEARTBEAT answer
        self._reports: dict[str, asyncio.Future] = {}           # attempt_id -> pending REPORT answer
        self._reader: Optional[asyncio.Task] = None
        self.manager_features: set = set()
        #: the manager's TCP port speaks TLS: verify it with this client context (node's tls_ca)
        self.ssl_options: Any = None
        #: called with the (monotonic) send time of every frame the manager answered SUCCESS
        self.on_heard: Callable[[float], None] = lambda sent_at: None
        self._register_sent_at: Optional[float] = None   # when this connection's REGISTER went out
        #: called with a RUN frame's data; returns (HTTP-like status code, envelope dict)
        self.on_run: Callable[[dict], tuple[int, dict]] = lambda data: (503, {"result": "ServiceUnavailable",
                                                                              "message": "not ready"})

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
                self.manager_features = set()
                if self._stream is not None:
                    self._stream.close()
                    self._stream = None
                if self._reader is not None:
                    self._reader.cancel()
                    self._reader = None
                self._fail_waiters()
            try:
                await asyncio.wait_for(self._stopping.wait(), self.retry_interval)
            except asyncio.TimeoutError:
                pass

    async def _session(self) -> None:
        # with ssl_options tornado verifies the certificate for self.host
        self._register_sent_at = None   # a new connection: nothing registered on it yet
        self._stream = await TCPClient().connect(self.host, self.port, timeout=CONNECT_TIMEOUT,
                                                 ssl_options=self.ssl_options)
        self._stream.set_nodelay(True)   # small frames on the path of every action: no Nagle delay
        self._reader = asyncio.ensure_future(self._read_frames(self._stream))
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
        features = answer.get("features")
        self.manager_features = set(features) if isinstance(features, list) else set()
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
        """Send one frame, wait for its answer (routed by the reader); returns the answer's data."""
        data: dict[str, Any] = {"node_id": self.node_id, "features": FEATURES}
        data.update(self.info())
        self._answer = asyncio.get_running_loop().create_future()
        sent_at = time.monotonic()
        if command == REGISTER and self._register_sent_at is None:   # the connection's first
            self._register_sent_at = sent_at
        await self._stream.write(protocol.encode(command, data))
        answer = await asyncio.wait_for(self._answer, self.answer_timeout)
        if answer.get("status") == SUCCESS:
            self.on_heard(sent_at)
        stop = answer.get("stop")
        if isinstance(stop, list) and stop:
            self.on_stop([entry for entry in stop if isinstance(entry, dict)])
        return answer

    async def _read_frames(self, stream: IOStream) -> None:
        """Route every frame from the manager; a broken connection fails whoever waits."""
        try:
            while True:
                message = await protocol.read_message(stream)
                command, data = message["command"], message["data"]
                if command in (REGISTER, HEARTBEAT):
                    if self._answer is not None and not self._answer.done():
                        self._answer.set_result(data)
                elif command == RUN:
                    if self._register_sent_at is not None:
                        # the manager sends RUN only on the connection a node registered on: it
                        # has seen our REGISTER, even if its answer is still on the way (a
                        # registration's first dispatches are written before the answer)
                        self.on_heard(self._register_sent_at)
                    code, envelope = self.on_run(data)
                    reply = {"attempt_id": data.get("attempt_id"), "code": code, **envelope}
                    await stream.write(protocol.encode(RUN, reply))
                elif command == REPORT:
                    waiter = self._reports.pop(str(data.get("attempt_id")), None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(data)
                elif command == protocol.ERROR:
                    raise ProtocolError(f"manager sent ERROR: {data.get('message')}")
        except (StreamClosedError, ProtocolError, OSError) as exc:
            self._fail_waiters(exc)
            stream.close()

    def _fail_waiters(self, exc: Optional[BaseException] = None) -> None:
        error = exc or StreamClosedError()
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error if isinstance(error, Exception) else StreamClosedError())
        for waiter in self._reports.values():
            if not waiter.done():
                waiter.set_exception(ChannelUnavailable(str(error)))
        self._reports.clear()

    def start_report(self, report: dict) -> tuple[str, asyncio.Future, Any]:
        """Write one REPORT frame now (in the loop turn the action's end is seen); returns
        what :meth:`send_report` waits on. Raises :class:`ChannelUnavailable` when the
        channel can't carry it (the caller then uses HTTP)."""
        stream = self._stream
        if stream is None or stream.closed() or not self.registered.is_set() or REPORT not in self.manager_features:
            raise ChannelUnavailable("no registered connection with report frames")
        frame = protocol.encode(REPORT, report)
        if len(frame) > protocol.CHANNEL_MESSAGE_LIMIT:
            raise ChannelUnavailable("report too big for a frame")
        attempt_id = str(report.get("attempt_id"))
        waiter = asyncio.get_running_loop().create_future()
        self._reports[attempt_id] = waiter
        try:
            written = stream.write(frame)
        except StreamClosedError as exc:
            self._reports.pop(attempt_id, None)
            raise ChannelUnavailable(str(exc)) from None
        return attempt_id, waiter, written

    async def send_report(self, report: dict, timeout: float,
                          started: Optional[tuple[str, asyncio.Future, Any]] = None) -> tuple[int, dict]:
        """One report over the channel (written by :meth:`start_report` unless ``started``
        says it was); returns (status code, envelope) like the HTTP route.

        Raises :class:`ChannelUnavailable` when the channel can't carry it (the caller then
        uses HTTP) and ``asyncio.TimeoutError`` when no answer comes.
        """
        attempt_id, waiter, written = started or self.start_report(report)
        try:
            await written
        except StreamClosedError as exc:
            self._reports.pop(attempt_id, None)
            raise ChannelUnavailable(str(exc)) from None
        try:
            answer = await asyncio.wait_for(waiter, timeout)
        finally:
            self._reports.pop(attempt_id, None)
        code = answer.get("code")
        return (code if isinstance(code, int) else 500), {"result": answer.get("result"),
                                                         "message": answer.get("message", "")}


def id_path_for(data_path: str) -> str:
    return os.path.join(data_path, "configuration.json")
