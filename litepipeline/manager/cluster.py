"""Registered nodes: the TCP listener (SPEC §5), heartbeats, and liveness.

A node registers over one TCP connection and keeps it open, sending heartbeats. The
connection closing, or heartbeats stopping for the node's ``heartbeat_timeout``, drops
the node at once and its work goes back to the scheduler. Garbage on a connection (bad
CRC, not JSON, unknown command, oversized frame, a HEARTBEAT before REGISTER is answered
FAILURE) affects only that connection.

Nodes that list the ``RUN``/``REPORT`` features at REGISTER also send their reports over
this connection, and get their dispatches on it (written by
:class:`~litepipeline.manager.nodelink.NodeLink`); the others use the HTTP routes of
SPEC §3/§4. Each live node is a :class:`~litepipeline.manager.nodes.NodeInfo`.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from typing import Any, Callable, Optional

from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpserver import TCPServer

from litepipeline.common import protocol
from litepipeline.common.errors import LiteError
from litepipeline.common.messages import Answer, Heartbeat, HeldAttempt, Register, RegisterAnswer, Report
from litepipeline.common.textcheck import find_poison, may_hold_poison, poison_message
from litepipeline.common.protocol import FAILURE, FEATURES, HEARTBEAT, REGISTER, REPORT, RUN, SUCCESS, ProtocolError
from litepipeline.manager.nodes import NODE_FIELDS, NodeInfo

LOG = logging.getLogger(__name__)
MAX_CONNECTIONS = 1024   # registered nodes
# Connections that have not registered (no token is needed to open one) have their own
# small pool: when it is full the oldest is closed to make room, so idle connections can
# never lock a real node out, and each must REGISTER this soon after opening.
MAX_UNREGISTERED = 64
REGISTER_TIMEOUT = 5.0


class Cluster(TCPServer):
    """Accepts node connections; keeps the table of live nodes."""

    def __init__(self, token: Optional[str], on_up: Callable[[str, Any, bool], Any],
                 on_down: Callable[[str, str, float], Any],
                 on_report: Optional[Callable[[Report, int, bool], Any]] = None, ssl_options: Any = None) -> None:
        super().__init__(max_buffer_size=protocol.MAX_FRAME_SIZE * 2, ssl_options=ssl_options)
        self.token = token
        self.on_up = on_up
        self.on_down = on_down
        self.on_report = on_report
        self._reports: set = set()
        self.nodes: dict[str, NodeInfo] = {}
        self.connections = 0
        #: called with no argument once a node has joined or left (the web interface's push)
        self.listeners: list[Callable[[], None]] = []
        self._unregistered: dict[IOStream, str] = {}   # stream -> peer address, oldest first

    def address(self, node_id: str) -> Optional[str]:
        node = self.nodes.get(node_id)
        return node.address if node else None

    def url(self, node_id: str) -> Optional[str]:
        """``http(s)://host:port`` of the node's HTTP API (HTTPS when it registered with tls)."""
        node = self.nodes.get(node_id)
        return node.url if node else None

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
                        message, raw = await asyncio.wait_for(protocol.read_frame(stream), remaining)
                    except asyncio.TimeoutError:
                        raise ProtocolError(f"no successful REGISTER within {REGISTER_TIMEOUT:g} s") from None
                else:
                    message, raw = await protocol.read_frame(stream)
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
                    if node is None:
                        raise ProtocolError("RUN answer from a connection that is not registered")
                    node.answered(Answer.parse(data))
                elif command == REPORT:
                    if node is None or self.nodes.get(node.node_id) is not node:
                        raise ProtocolError("REPORT from a connection that is not registered")
                    # concurrently: a report waits for its round to be persisted; heartbeats must not
                    # the raw frame sizes the report and screens its text (see Manager.action_update)
                    task = asyncio.ensure_future(self._report(stream, data, len(raw), may_hold_poison(raw)))
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
                node.fail_runs(reason)
            if node is not None and self.nodes.get(node.node_id) is node:
                self._drop(node, reason)

    async def _register(self, stream: IOStream, address: tuple, data: dict) -> Optional[NodeInfo]:
        # poison first: a token with a lone surrogate cannot even be compared
        found = find_poison(data)
        refusal = poison_message(found) if found else self._check_token(data.get("token"))
        try:
            message = Register.parse(data)
        except LiteError as exc:
            refusal = refusal or exc.message
        if refusal:
            LOG.warning("refused REGISTER from %s: %s", address[0], refusal)
            await stream.write(RegisterAnswer(FAILURE, refusal).frame(REGISTER, node_id=None))
            return None
        node_id = message.node_id or str(uuid.uuid4())
        if node_id not in self.nodes and len(self.nodes) >= MAX_CONNECTIONS:
            refusal = f"the manager holds {MAX_CONNECTIONS} nodes already"
            LOG.warning("refused REGISTER from %s: %s", address[0], refusal)
            await stream.write(RegisterAnswer(FAILURE, refusal).frame(REGISTER, node_id=None))
            return None
        info = {k: getattr(message, k) for k in NODE_FIELDS}
        info["node_id"] = node_id
        if info["http_host"] in (None, "", "0.0.0.0", "::"):
            info["http_host"] = address[0]
        old = self.nodes.get(node_id)
        if old is not None and old.stream is not stream:
            old.stream.close()   # the node restarted or reconnected: the old connection is dead
            self.nodes.pop(node_id, None)
        node = NodeInfo(node_id, info, stream, features=frozenset(f for f in message.features if f in FEATURES))
        self.nodes[node_id] = node
        LOG.info("node %s registered from %s (http %s, %s slots)", node_id, address[0], node.address,
                 info["action_slots"])
        stops = await self.on_up(node_id, message, True)
        self._changed()
        await stream.write(RegisterAnswer(SUCCESS, "", node_id, _stop_list(stops),
                                          FEATURES if self.on_report is not None else []).frame(REGISTER))
        return node

    # -- reports over the connection (dispatches: see nodelink) ------------------------------
    async def _report(self, stream: IOStream, data: dict, size: int, screen: bool) -> None:
        answer = Answer(data.get("attempt_id"), 200, "ok", "")
        try:
            await self.on_report(Report.parse(data), size, screen)
        except LiteError as exc:
            answer.code, answer.result, answer.message = exc.http_status, exc.name, exc.message
        except Exception:  # noqa: BLE001 - answered like the HTTP route's 500
            LOG.exception("report over the node channel failed")
            answer.code, answer.result, answer.message = 500, "ServerException", "internal server error"
        try:
            await stream.write(protocol.encode(REPORT, answer.to_dict()))
        except StreamClosedError:
            pass   # the node re-sends reports it did not hear back about

    def _check_token(self, given: Any) -> Optional[str]:
        if self.token and (not isinstance(given, str)
                           or not hmac.compare_digest(given.encode(), self.token.encode())):
            return "missing or wrong token"
        return None

    async def _heartbeat(self, stream: IOStream, node: Optional[NodeInfo], data: dict) -> None:
        if node is None or self.nodes.get(node.node_id) is not node:
            await stream.write(protocol.reply(HEARTBEAT, FAILURE, "node is not registered"))
            return
        node.last_seen = time.monotonic()
        stops = await self.on_up(node.node_id, Heartbeat.parse(data), False)
        await stream.write(RegisterAnswer(SUCCESS, "", stop=_stop_list(stops)).frame(HEARTBEAT))

    def _drop(self, node: NodeInfo, reason: str, close: bool = True) -> None:
        if self.nodes.get(node.node_id) is node:
            del self.nodes[node.node_id]
            hold = hold_seconds(node.timeout, time.monotonic() - node.last_seen)
            LOG.warning("node %s dropped: %s; its actions are re-queued in %.1f s unless it comes back",
                        node.node_id, reason, hold)
            self.on_down(node.node_id, reason, hold)
            self._changed()
        if close and node.stream is not None:
            node.stream.close()

    def _changed(self) -> None:
        for listener in self.listeners:
            try:
                listener()
            except Exception:  # noqa: BLE001 - a listener's bug must not break registration
                LOG.exception("listener of node changes failed")

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
    return [HeldAttempt(s.task_id, s.name, s.attempt_id) for s in (stops or [])]
