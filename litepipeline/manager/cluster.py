"""Registered nodes: the TCP listener (SPEC §5), heartbeats, and liveness.

A node registers over one TCP connection and keeps it open, sending heartbeats. The
connection closing, or heartbeats stopping for the node's ``heartbeat_timeout``, drops
the node at once and its work goes back to the scheduler. Garbage on a connection (bad
CRC, not JSON, unknown command, oversized frame, a HEARTBEAT before REGISTER is answered
FAILURE) affects only that connection.

Nodes that list the ``RUN``/``REPORT`` features at REGISTER also get their dispatches and
send their reports over this connection (see :mod:`litepipeline.common.protocol`); the
others use the HTTP routes of SPEC §3/§4.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpserver import TCPServer

from litepipeline.common import protocol
from litepipeline.common.errors import LiteError
from litepipeline.common.textcheck import find_poison, poison_message
from litepipeline.common.protocol import FAILURE, FEATURES, HEARTBEAT, REGISTER, REPORT, RUN, SUCCESS, ProtocolError

LOG = logging.getLogger(__name__)
MAX_CONNECTIONS = 1024   # registered nodes
# Connections that have not registered (no token is needed to open one) have their own
# small pool: when it is full the oldest is closed to make room, so idle connections can
# never lock a real node out, and each must REGISTER this soon after opening.
MAX_UNREGISTERED = 64
REGISTER_TIMEOUT = 5.0
HOST_RE = re.compile(r"^[A-Za-z0-9._:\[\]-]+$")
MAX_INFO_TEXT = 4096
NODE_FIELDS = ("node_id", "http_host", "http_port", "action_slots", "heartbeat_interval", "heartbeat_timeout",
               "data_path", "app_path", "python3", "version", "tls")


@dataclass
class NodeInfo:
    """One registered node, as ``cluster info`` shows it."""

    node_id: str
    info: dict
    stream: Any = field(repr=False, default=None)
    last_seen: float = field(default_factory=time.monotonic)
    features: frozenset = frozenset()
    runs: dict = field(default_factory=dict, repr=False)   # attempt_id -> future of the RUN answer

    @property
    def address(self) -> str:
        return f"{self.info['http_host']}:{self.info['http_port']}"

    @property
    def timeout(self) -> float:
        return float(self.info.get("heartbeat_timeout") or 30)

    def public(self) -> dict:
        out = {k: self.info.get(k) for k in NODE_FIELDS}
        out["node_id"] = self.node_id
        return out


class Cluster(TCPServer):
    """Accepts node connections; keeps the table of live nodes."""

    def __init__(self, token: Optional[str], on_up: Callable[[str, int, list, bool], Any],
                 on_down: Callable[[str, str, float], Any],
                 on_report: Optional[Callable[[dict], Any]] = None, ssl_options: Any = None) -> None:
        super().__init__(max_buffer_size=protocol.MAX_FRAME_SIZE * 2, ssl_options=ssl_options)
        self.token = token
        self.on_up = on_up
        self.on_down = on_down
        self.on_report = on_report
        self._reports: set = set()
        self.nodes: dict[str, NodeInfo] = {}
        self.connections = 0
        self._unregistered: dict[IOStream, str] = {}   # stream -> peer address, oldest first

    def address(self, node_id: str) -> Optional[str]:
        node = self.nodes.get(node_id)
        return node.address if node else None

    def url(self, node_id: str) -> Optional[str]:
        """``http(s)://host:port`` of the node's HTTP API (HTTPS when it registered with tls)."""
        node = self.nodes.get(node_id)
        if node is None:
            return None
        return f"{'https' if node.info.get('tls') is True else 'http'}://{node.address}"

    def public(self) -> list[dict]:
        return [n.public() for n in self.nodes.values()]

    async def handle_stream(self, stream: IOStream, address: tuple) -> None:
        if len(self._unregistered) >= MAX_UNREGISTERED:
            oldest = next(iter(self._unregistered))
            LOG.warning("%d node connections have not registered; closing the oldest, from %s",
                        len(self._unregistered), self._unregistered.pop(oldest))
            oldest.close()
        self._unregistered[stream] = address[0]
        self.connections += 1
        # small frames, answered at once: Nagle's algorithm would hold each one back ~40 ms
        stream.set_nodelay(True)
        node: Optional[NodeInfo] = None
        reason = "connection closed"
        deadline = time.monotonic() + REGISTER_TIMEOUT
        try:
            while True:
                if node is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise ProtocolError(f"no successful REGISTER within {REGISTER_TIMEOUT:g} s")
                    try:
                        message = await asyncio.wait_for(protocol.read_message(stream), remaining)
                    except asyncio.TimeoutError:
                        raise ProtocolError(f"no successful REGISTER within {REGISTER_TIMEOUT:g} s") from None
                else:
                    message = await protocol.read_message(stream)
                command, data = message["command"], message["data"]
                if command == REGISTER:
                    previous = node
                    node = await self._register(stream, address, data)
                    if node is not None:
                        self._unregistered.pop(stream, None)
                    if previous is not None and (node is None or node.node_id != previous.node_id):
                        self._drop(previous, "re-registered", close=False)   # this connection goes on
                elif command == HEARTBEAT:
                    await self._heartbeat(stream, node, data)
                elif command == RUN:
                    self._run_answer(node, data)
                elif command == REPORT:
                    if node is None or self.nodes.get(node.node_id) is not node:
                        raise ProtocolError("REPORT from a connection that is not registered")
                    # concurrently: a report waits for its round to be persisted; heartbeats must not
                    task = asyncio.ensure_future(self._report(stream, data))
                    self._reports.add(task)      # a strong reference until it is done
                    task.add_done_callback(self._reports.discard)
                else:
                    LOG.warning("node %s sent ERROR: %s", address[0], data)
        except StreamClosedError:
            pass
        except ProtocolError as exc:
            reason = f"protocol error: {exc}"
            LOG.warning("closing node connection from %s: %s", address[0], exc)
        except Exception:  # noqa: BLE001 - one bad connection must never take the manager down
            reason = "internal error"
            LOG.exception("closing node connection from %s after an internal error", address[0])
        finally:
            self.connections -= 1
            self._unregistered.pop(stream, None)
            stream.close()
            if node is not None:
                for waiter in node.runs.values():
                    if not waiter.done():
                        waiter.set_result((0, {"result": "NodeGone", "message": reason}))
                node.runs.clear()
            if node is not None and self.nodes.get(node.node_id) is node:
                self._drop(node, reason)

    async def _register(self, stream: IOStream, address: tuple, data: dict) -> Optional[NodeInfo]:
        refusal = self._check_register(data)
        if refusal:
            LOG.warning("refused REGISTER from %s: %s", address[0], refusal)
            await stream.write(protocol.reply(REGISTER, FAILURE, refusal, node_id=None))
            return None
        # canonical form: uuid.UUID() also reads '{...}', 'urn:uuid:...' and 32 bare hex digits
        node_id = str(uuid.UUID(data["node_id"])) if data.get("node_id") else str(uuid.uuid4())
        if node_id not in self.nodes and len(self.nodes) >= MAX_CONNECTIONS:
            refusal = f"the manager holds {MAX_CONNECTIONS} nodes already"
            LOG.warning("refused REGISTER from %s: %s", address[0], refusal)
            await stream.write(protocol.reply(REGISTER, FAILURE, refusal, node_id=None))
            return None
        info = {k: data.get(k) for k in NODE_FIELDS}
        if info["http_host"] in (None, "", "0.0.0.0", "::"):
            info["http_host"] = address[0]
        old = self.nodes.get(node_id)
        if old is not None and old.stream is not stream:
            old.stream.close()   # the node restarted or reconnected: the old connection is dead
            self.nodes.pop(node_id, None)
        features = data.get("features")
        node = NodeInfo(node_id, info, stream,
                        features=frozenset(f for f in features if f in FEATURES) if isinstance(features, list)
                        else frozenset())
        self.nodes[node_id] = node
        LOG.info("node %s registered from %s (http %s, %s slots)", node_id, address[0], node.address,
                 info["action_slots"])
        stops = await self.on_up(node_id, int(info["action_slots"]), data.get("running") or [], True)
        await stream.write(protocol.reply(REGISTER, SUCCESS, node_id=node_id, stop=_stop_list(stops),
                                          features=FEATURES if self.on_report is not None else []))
        return node

    # -- dispatches and reports over the connection ------------------------------------------
    def start_run(self, node_id: str, payload: dict) -> Optional[tuple[Any, Any]]:
        """Write one RUN frame now (no loop turn between a commit and its dispatch); returns
        what :meth:`run` waits on, or None when the channel can't carry it (a node without
        the feature, a big payload): the caller then uses the node's HTTP route."""
        node = self.nodes.get(node_id)
        if node is None or RUN not in node.features:
            return None
        frame = protocol.encode(RUN, payload)
        if len(frame) > protocol.CHANNEL_MESSAGE_LIMIT:
            return None
        waiter = asyncio.get_running_loop().create_future()
        node.runs[payload["attempt_id"]] = waiter
        try:
            written = node.stream.write(frame)   # tornado sends at once what the socket takes
        except StreamClosedError as exc:
            written = asyncio.get_running_loop().create_future()
            written.set_exception(exc)
        return node, (waiter, written)

    async def run(self, node_id: str, payload: dict, timeout: float,
                  started: Optional[tuple[Any, Any]] = None) -> Optional[tuple[int, dict]]:
        """Send one RUN frame (unless :meth:`start_run` did) and wait for the node's answer:
        (status code, envelope); None when the channel can't carry it."""
        started = started or self.start_run(node_id, payload)
        if started is None:
            return None
        node, (waiter, written) = started
        try:
            await written
            return await asyncio.wait_for(waiter, timeout)
        except StreamClosedError:
            return 0, {"result": "NodeGone", "message": f"connection to node {node_id} closed"}
        except asyncio.TimeoutError:
            return 0, {"result": "NodeUnreachable", "message": f"node {node_id} did not answer RUN in {timeout:g} s"}
        finally:
            node.runs.pop(payload["attempt_id"], None)

    def _run_answer(self, node: Optional[NodeInfo], data: dict) -> None:
        if node is None:
            raise ProtocolError("RUN answer from a connection that is not registered")
        waiter = node.runs.get(str(data.get("attempt_id")))
        if waiter is not None and not waiter.done():
            code = data.get("code")
            waiter.set_result((code if isinstance(code, int) and not isinstance(code, bool) else 500,
                               {"result": data.get("result"), "message": data.get("message", "")}))

    async def _report(self, stream: IOStream, data: dict) -> None:
        try:
            await self.on_report(data)
            code, envelope = 200, {"result": "ok", "message": ""}
        except LiteError as exc:
            code, envelope = exc.http_status, exc.envelope()
        except Exception:  # noqa: BLE001 - answered like the HTTP route's 500
            LOG.exception("report over the node channel failed")
            code, envelope = 500, {"result": "ServerException", "message": "internal server error"}
        try:
            await stream.write(protocol.encode(REPORT, {"attempt_id": data.get("attempt_id"), "code": code,
                                                        **envelope}))
        except StreamClosedError:
            pass   # the node re-sends reports it did not hear back about

    def _check_register(self, data: dict) -> Optional[str]:
        found = find_poison(data)   # first: a token with a lone surrogate cannot even be compared
        if found:
            return poison_message(found)
        if self.token:
            given = data.get("token")
            if not isinstance(given, str) or not hmac.compare_digest(given.encode(), self.token.encode()):
                return "missing or wrong token"
        node_id = data.get("node_id")
        if node_id is not None:
            try:
                valid = isinstance(node_id, str) and uuid.UUID(node_id) is not None
            except ValueError:
                valid = False
            if not valid:
                return f"node_id must be a uuid, got {str(node_id)[:60]!r}"
        slots = data.get("action_slots")
        if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= 10000:
            return "action_slots must be an integer between 1 and 10000"
        port = data.get("http_port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            return "http_port must be an integer between 1 and 65535"
        host = data.get("http_host")
        if host is not None and (not isinstance(host, str) or len(host) > 255):
            return "http_host must be a string"
        if host and not HOST_RE.match(host):   # it becomes http://{host}:{port}/action/run
            return f"http_host must be a host name or an IP address, got {host[:60]!r}"
        running = data.get("running")
        if running is not None and not isinstance(running, list):
            return "running must be a list"
        if data.get("tls") not in (None, True, False):
            return "tls must be true or false"
        for key in ("heartbeat_interval", "heartbeat_timeout"):
            value = data.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                return f"{key} must be a positive number"
        for key in ("data_path", "app_path", "python3", "version"):   # shown as is in cluster info
            value = data.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > MAX_INFO_TEXT):
                return f"{key} must be a string of at most {MAX_INFO_TEXT} characters"
        return None

    async def _heartbeat(self, stream: IOStream, node: Optional[NodeInfo], data: dict) -> None:
        if node is None or self.nodes.get(node.node_id) is not node:
            await stream.write(protocol.reply(HEARTBEAT, FAILURE, "node is not registered"))
            return
        node.last_seen = time.monotonic()
        running = data.get("running")
        stops = await self.on_up(node.node_id, node.info["action_slots"],
                                 running if isinstance(running, list) else [], False)
        await stream.write(protocol.reply(HEARTBEAT, SUCCESS, stop=_stop_list(stops)))

    def _drop(self, node: NodeInfo, reason: str, close: bool = True) -> None:
        if self.nodes.get(node.node_id) is node:
            del self.nodes[node.node_id]
            hold = hold_seconds(node.timeout, time.monotonic() - node.last_seen)
            LOG.warning("node %s dropped: %s; its actions are re-queued in %.1f s unless it comes back",
                        node.node_id, reason, hold)
            self.on_down(node.node_id, reason, hold)
        if close and node.stream is not None:
            node.stream.close()

    def sweep(self) -> None:
        """Drop nodes whose heartbeats stopped (the repair sweep calls this)."""
        now = time.monotonic()
        for node in list(self.nodes.values()):
            if now - node.last_seen > node.timeout:
                self._drop(node, f"no heartbeat for {node.timeout:g}s")

    def close_all(self) -> None:
        self.stop()
        for node in list(self.nodes.values()):
            if node.stream is not None:
                node.stream.close()


def hold_seconds(timeout: float, silent_for: float) -> float:
    """How long a dropped node's actions must wait before running elsewhere.

    The node stops them itself once ``timeout`` has passed since it last heard from us
    (its lease, node/lease.py, counted from a frame we received no earlier than
    ``last_seen``); the margin covers the node's reaper waking up and the kill landing.
    """
    return max(timeout + lease_margin(timeout) - silent_for, 0.0)


def lease_margin(timeout: float) -> float:
    return max(1.0, 0.1 * timeout)


def _stop_list(stops: Any) -> list:
    return [{"task_id": s.task_id, "name": s.name, "attempt_id": s.attempt_id} for s in (stops or [])]
