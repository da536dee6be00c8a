"""The node's one way to reach the manager: REGISTER, HEARTBEAT, reconnect, reports.

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
message on the path of every action. A reader task routes incoming frames. A report the
channel can't carry (not connected, an original manager, a big one) goes as
``PUT /action/update``: :meth:`ManagerLink.report` chooses.

Fail-over: given several managers (the node's ``managers``), the link finds the leader
before each connection (``GET /`` of each in turn: a leader or a standby naming it), and
follows a standby's refused REGISTER to the ``leader`` it names. A connection that drops,
or a heartbeat the leader leaves unanswered for :data:`FOLLOW_ANSWER_TIMEOUT`, sends it
looking again; the node's actions keep running meanwhile (its lease is longer than a
take-over) and its next REGISTER reports them to the new leader, which adopts them.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any, Callable, Optional

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpclient import TCPClient

from litepipeline.common import protocol
from litepipeline.common.errors import LiteError, envelope_of
from litepipeline.common.messages import Answer, Register, RegisterAnswer, Report, RunAction
from litepipeline.common.protocol import FEATURES, HEARTBEAT, REGISTER, REPORT, RUN, ProtocolError
from litepipeline.common.web import auth_headers
from litepipeline.node.workspace import read_json, write_json_atomic

LOG = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10
REQUEST_TIMEOUT = 30
# with several managers: a leader silent this long (frozen, partitioned) is left for another
FOLLOW_ANSWER_TIMEOUT = 3.0
FOLLOW_RETRY = 1.0       # the longest wait between rounds of the managers' list
LOOKUP_TIMEOUT = 2.0     # each manager's GET / while looking for the leader


class RegisterRefused(Exception):
    """The manager answered REGISTER with something other than SUCCESS (``leader``: the
    leader a standby named)."""

    def __init__(self, message: str, leader: Optional[dict] = None) -> None:
        super().__init__(message)
        self.leader = leader


class ChannelUnavailable(Exception):
    """Reports cannot go over the TCP channel now (not connected, or the manager lacks it)."""


def load_node_id(path: str) -> Optional[str]:
    """The node_id persisted in ``data_path/configuration.json``, or None."""
    try:
        node_id = read_json(path).get("node_id")
    except (OSError, ValueError, AttributeError):
        return None
    return node_id if isinstance(node_id, str) and node_id else None


class ManagerLink:
    """Keeps the node registered with the manager and carries its reports.

    Args:
        update_url: the manager's ``PUT /action/update`` (reports the channel can't carry).
        token: the cluster's auth token.
        host, port: the manager's TCP address (None: reports over HTTP only).
        id_path: where the node_id is persisted.
        info: returns the node's REGISTER/HEARTBEAT message (node_id and features are set here).
        heartbeat_interval, heartbeat_timeout, retry_interval: seconds, from the config.

    The node sets ``on_stop`` (the ``stop`` list of an answer), ``on_registered`` (after every
    successful REGISTER) and ``on_run`` (a RUN frame: returns the answer's code and envelope).
    """

    def __init__(self, update_url: str, token: Optional[str], host: Optional[str] = None, port: int = 0,
                 id_path: Optional[str] = None, info: Optional[Callable[[], Register]] = None,
                 heartbeat_interval: float = 1.0, heartbeat_timeout: float = 30.0,
                 retry_interval: float = 5.0, managers: Optional[list] = None, scheme: str = "http") -> None:
        self.update_url = update_url
        #: fail-over: every manager as (http_host, http_port, tcp_host, tcp_port); the leader is looked for
        self.managers = list(managers or [])
        self.scheme = scheme
        self._next = 0   # where the next look for the leader starts in ``managers``
        self._moved: Optional[asyncio.Future] = None   # done when the link turns to another manager
        #: called with the leader's ``scheme://host:port`` whenever the link turns to another manager
        self.on_manager: Callable[[str], None] = lambda base: None
        self.token = token
        self.host = host
        self.port = port
        self.id_path = id_path
        self.info = info
        self.on_stop: Callable[[list], None] = lambda entries: None
        self.on_registered: Callable[[], None] = lambda: None
        self.heartbeat_interval = heartbeat_interval
        self.answer_timeout = max(heartbeat_timeout, 5.0)
        self.retry_interval = retry_interval
        self.heartbeat_answer_timeout = self.answer_timeout
        if len(self.managers) > 1:   # a silent leader is left for the next one well within the node's lease
            self.heartbeat_answer_timeout = min(self.answer_timeout, max(FOLLOW_ANSWER_TIMEOUT, 5 * heartbeat_interval))
            self.answer_timeout = min(self.answer_timeout, 2 * self.heartbeat_answer_timeout)
            self.retry_interval = min(retry_interval, FOLLOW_RETRY)
        self.node_id: Optional[str] = load_node_id(id_path) if id_path else None
        self._client: Optional[AsyncHTTPClient] = None
        self._beat = asyncio.Event()
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
        #: called with a RUN frame's message; returns (HTTP-like status code, envelope dict)
        self.on_run: Callable[[RunAction], tuple[int, dict]] = lambda message: (
            503, {"result": "ServiceUnavailable", "message": "not ready"})

    def open(self) -> None:
        """Open the HTTP client: reports can go (over HTTP) from now on."""
        if self._client is None:
            self._client = AsyncHTTPClient(force_instance=True, max_clients=32)

    def start(self) -> None:
        """:meth:`open`, then register over TCP when the manager's TCP address is known (the
        node's info must be final: its HTTP port is bound)."""
        self.open()
        if self.host is not None and self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Disconnect; HTTP reports still work until :meth:`close`."""
        self._stopping.set()
        if self._stream is not None:
            self._stream.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def heartbeat_soon(self) -> None:
        """Send the next HEARTBEAT now (the node's state changed, e.g. it began to drain)."""
        self._beat.set()

    # -- internals -----------------------------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping.is_set():
            follow = None
            try:
                if len(self.managers) > 1 or (self.managers and (self.host, self.port) != self.managers[0][2:]):
                    await self._find_leader()   # several managers, or one that named another as leader
                await self._session()
            except (StreamClosedError, OSError, ProtocolError, asyncio.TimeoutError, RegisterRefused) as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if isinstance(exc, StreamClosedError) and exc.real_error is not None:
                    error = f"{type(exc.real_error).__name__}: {exc.real_error}"
                if isinstance(exc, RegisterRefused) and exc.leader and self.managers:
                    follow = exc.leader
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
            if follow is not None and self._follow(follow):
                continue   # a standby named the leader: go there at once
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
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            while True:
                beat = asyncio.ensure_future(self._beat.wait())
                done, _ = await asyncio.wait([stopping, beat], timeout=self.heartbeat_interval,
                                             return_when=asyncio.FIRST_COMPLETED)
                beat.cancel()
                self._beat.clear()
                if stopping in done:
                    return
                answer = await self._call(HEARTBEAT)
                if not answer.ok:
                    LOG.warning("manager answered heartbeat with %s (%s); registering again",
                                answer.status, answer.message)
                    await self._register()
        finally:
            stopping.cancel()

    async def _find_leader(self) -> None:
        """Point the link at the leader: ask each manager's ``GET /`` in turn, from where the
        last look ended. A manager answering as the leader wins; the leaders standbys name
        are asked themselves after (a standby may name one that has just stopped)."""
        errors, named = [], {}
        count = len(self.managers)
        for step in range(count):
            index = (self._next + step) % count
            http_host, http_port, tcp_host, tcp_port = self.managers[index]
            answer = await self._lookup(http_host, http_port, errors)
            if answer.get("role") in ("leader", "single"):
                self._next = index
                self._point(http_host, http_port, tcp_host, tcp_port, answer.get("leader"))
                return
            leader = answer.get("leader")
            if isinstance(leader, dict) and isinstance(leader.get("address"), str):
                named.setdefault(leader["address"], leader)
        for leader in named.values():
            try:
                answer = await self._lookup(str(leader["http_host"]), int(leader["http_port"]), errors)
            except (KeyError, TypeError, ValueError):
                continue
            if answer.get("role") == "leader" and self._follow(leader):
                return
        self._next = (self._next + 1) % count
        raise OSError("no manager leads right now (" + "; ".join(errors) + ")")

    async def _lookup(self, http_host: str, http_port: int, errors: list) -> dict:
        """``GET /`` of one manager (its ``role`` and ``leader``); {} when it does not answer."""
        url = f"{self.scheme}://{http_host}:{http_port}/"
        try:
            response = await self._client.fetch(HTTPRequest(url, headers=auth_headers(self.token),
                                                             connect_timeout=LOOKUP_TIMEOUT,
                                                             request_timeout=LOOKUP_TIMEOUT), raise_error=False)
            answer = json.loads(response.body or b"{}") if response.code == 200 else {}
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - refused, timed out, not JSON: the next one
            errors.append(f"{http_host}:{http_port}: {type(exc).__name__}")
            return {}
        if not isinstance(answer, dict) or answer.get("role") not in ("leader", "single", "standby"):
            errors.append(f"{http_host}:{http_port}: HTTP {response.code}, not a manager's answer")
            return {}
        if answer["role"] == "standby":
            errors.append(f"{http_host}:{http_port}: standby")
        return answer

    def _follow(self, leader: dict) -> bool:
        """Point the link at the ``leader`` a standby named; False when it names none usable."""
        try:
            http_host, http_port = str(leader["http_host"]), int(leader["http_port"])
            tcp_host, tcp_port = str(leader["tcp_host"]), int(leader["tcp_port"])
        except (KeyError, TypeError, ValueError):
            return False
        self._point(http_host, http_port, tcp_host, tcp_port, leader)
        return True

    def _point(self, http_host: str, http_port: int, tcp_host: str, tcp_port: int, leader: Optional[dict]) -> None:
        base = f"{self.scheme}://{http_host}:{http_port}"
        if (tcp_host, tcp_port) != (self.host, self.port) or self.update_url != f"{base}/action/update":
            epoch = leader.get("epoch") if isinstance(leader, dict) else None
            LOG.info("following the leader at %s:%d:%d%s", http_host, http_port, tcp_port,
                     f" (epoch {epoch})" if epoch is not None else "")
            self.host, self.port = tcp_host, tcp_port
            self.update_url = f"{base}/action/update"
            self.on_manager(base)
            if self._moved is not None and not self._moved.done():
                self._moved.set_result(None)   # reports on their way to the old manager: sent again
            self._moved = None

    async def _register(self) -> None:
        answer = await self._call(REGISTER)
        if not answer.ok:
            raise RegisterRefused(str(answer.message or answer.status), answer.leader)
        self.manager_features = set(answer.features or ())
        node_id = answer.node_id
        if isinstance(node_id, str) and node_id and node_id != self.node_id:
            self.node_id = node_id
            write_json_atomic(self.id_path, {"node_id": node_id})
            LOG.info("registered with manager %s:%d as new node %s", self.host, self.port, node_id)
        elif self._last_error is not None or not self.registered.is_set():
            LOG.info("registered with manager %s:%d as node %s", self.host, self.port, self.node_id)
        self._last_error = None
        self.registered.set()
        self.on_registered()

    async def _call(self, command: str) -> RegisterAnswer:
        """Send one frame, wait for its answer (routed by the reader)."""
        info = self.info()
        info.node_id = self.node_id
        info.features = list(FEATURES)
        self._answer = asyncio.get_running_loop().create_future()
        sent_at = time.monotonic()
        if command == REGISTER and self._register_sent_at is None:   # the connection's first
            self._register_sent_at = sent_at
        await self._stream.write(protocol.encode(command, info.to_dict()))
        timeout = self.heartbeat_answer_timeout if command == HEARTBEAT else self.answer_timeout
        answer = RegisterAnswer.parse(await asyncio.wait_for(self._answer, timeout))
        if answer.ok:
            self.on_heard(sent_at)
        if answer.stop:
            self.on_stop(answer.stop)
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
                    try:
                        code, envelope = self.on_run(RunAction.parse(data))
                    except LiteError as exc:
                        code, envelope = exc.http_status, exc.envelope()
                    reply = Answer(data.get("attempt_id"), code, envelope.get("result"), envelope.get("message", ""))
                    await stream.write(protocol.encode(RUN, reply.to_dict()))
                elif command == REPORT:
                    answer = Answer.parse(data)
                    waiter = self._reports.pop(str(answer.attempt_id), None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(answer)
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

    # -- reports ----------------------------------------------------------------------------
    def start_report(self, report: Report) -> Optional[tuple[str, asyncio.Future, Any]]:
        """Write one REPORT frame now (in the loop turn the action's end is seen); returns
        what :meth:`report` waits on, or None when the channel can't carry it."""
        stream = self._stream
        if stream is None or stream.closed() or not self.registered.is_set() or REPORT not in self.manager_features:
            return None
        frame = report.to_frame()
        if len(frame) > protocol.CHANNEL_MESSAGE_LIMIT:
            return None
        attempt_id = report.attempt_id
        waiter = asyncio.get_running_loop().create_future()
        self._reports[attempt_id] = waiter
        try:
            written = stream.write(frame)
        except StreamClosedError:
            self._reports.pop(attempt_id, None)
            return None
        return attempt_id, waiter, written

    async def report(self, report: Report, started: Optional[tuple[str, asyncio.Future, Any]] = None) -> Answer:
        """Deliver one report once: over the channel (written by :meth:`start_report` unless
        ``started`` says it was) when it can carry it, else ``PUT /action/update``. Transport
        trouble is an answer with code 599."""
        if self._client is None:
            return Answer(report.attempt_id, 599, None, "link closed")
        started = started or self.start_report(report)
        if started is not None:
            attempt_id, waiter, written = started
            try:
                await written
                return await asyncio.wait_for(waiter, REQUEST_TIMEOUT)
            except asyncio.TimeoutError:
                return Answer(attempt_id, 599, None, "no answer to the report frame")
            except (StreamClosedError, ChannelUnavailable):
                pass   # the connection broke: HTTP below
            finally:
                self._reports.pop(attempt_id, None)
        headers = {"Content-Type": "application/json", **auth_headers(self.token)}
        request = HTTPRequest(self.update_url, method="PUT", body=json.dumps(report.to_dict()), headers=headers,
                              connect_timeout=5, request_timeout=REQUEST_TIMEOUT)
        if self._moved is None:
            self._moved = asyncio.get_running_loop().create_future()
        moved, fetch = self._moved, asyncio.ensure_future(self._client.fetch(request, raise_error=False))
        try:
            # a report to a manager that stopped leading (frozen, say) must not wait out its timeout
            await asyncio.wait([fetch, moved], return_when=asyncio.FIRST_COMPLETED)
            if not fetch.done():
                fetch.cancel()
                return Answer(report.attempt_id, 599, None, "the leader changed")
            response = fetch.result()
        except asyncio.CancelledError:
            fetch.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - refused, reset, timed out: the manager is away
            return Answer(report.attempt_id, 599, None, str(exc) or type(exc).__name__)
        result, message = envelope_of(response.code, response.body)
        return Answer(report.attempt_id, response.code, result, message)


def id_path_for(data_path: str) -> str:
    return os.path.join(data_path, "configuration.json")
