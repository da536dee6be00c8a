"""The manager's one way to reach a node: run an attempt, stop one.

A RUN goes as a frame on the node's registration connection when the node listed the
feature at REGISTER and the message is small (no new connection on the path of every
action); otherwise, and for every STOP, as the node's HTTP route (SPEC §4). The frame is
written in the caller's loop turn, so a dispatch leaves in the round that committed it.
Callers get the node's :class:`~litepipeline.common.messages.Answer` either way; transport
trouble is an answer too (code 0, ``NodeGone``/``NodeUnreachable``).
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable, Optional

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError

from litepipeline.common import protocol
from litepipeline.common.messages import Answer, RunAction, StopAction
from litepipeline.common.errors import envelope_of
from litepipeline.common.web import auth_headers

RUN_TIMEOUT = 30.0


class NodeLink:
    """Args:
        lookup: the live node of an id (the cluster's table): its address and connection.
        token: the cluster's auth token, sent on HTTP calls.
    """

    def __init__(self, lookup: Callable[[str], Any], token: Optional[str], timeout: float = RUN_TIMEOUT) -> None:
        self.lookup = lookup
        self.token = token
        self.timeout = timeout
        self._client: Optional[AsyncHTTPClient] = None   # made on first use, in the running loop
        #: whether this manager may send now (fail-over: only while it holds the lease; a
        #: leader frozen past its lease, then resumed, must not send what it decided before)
        self.may_send: Callable[[], bool] = lambda: True

    def run(self, node_id: str, message: RunAction) -> Awaitable[Answer]:
        """Send one attempt to the node: the frame (if any) is written before this returns."""
        if not self.may_send():
            return self._not_leader(message.attempt_id)
        node = self.lookup(node_id)
        if node is None or protocol.RUN not in node.features:
            return self._http(node_id, "POST", "/action/run", message.to_dict())
        frame = message.to_frame()
        if len(frame) > protocol.CHANNEL_MESSAGE_LIMIT:
            return self._http(node_id, "POST", "/action/run", message.to_dict())
        waiter = asyncio.get_running_loop().create_future()
        node.runs[message.attempt_id] = waiter
        try:
            written = node.stream.write(frame)   # tornado sends at once what the socket takes
        except StreamClosedError as exc:
            written = asyncio.get_running_loop().create_future()
            written.set_exception(exc)
        return self._channel_answer(node, message.attempt_id, waiter, written)

    async def stop(self, node_id: str, message: StopAction) -> Answer:
        if not self.may_send():
            return await self._not_leader(message.attempt_id)
        return await self._http(node_id, "PUT", "/action/stop", message.to_dict())

    async def _not_leader(self, attempt_id: Optional[str]) -> Answer:
        return Answer(attempt_id, 0, "NotLeader", "this manager no longer holds the leadership lease")

    async def _channel_answer(self, node: Any, attempt_id: str, waiter: asyncio.Future, written: Any) -> Answer:
        try:
            await written
            return await asyncio.wait_for(waiter, self.timeout)
        except StreamClosedError:
            return Answer(attempt_id, 0, "NodeGone", f"connection to node {node.node_id} closed")
        except asyncio.TimeoutError:
            return Answer(attempt_id, 0, "NodeUnreachable",
                          f"node {node.node_id} did not answer RUN in {self.timeout:g} s")
        finally:
            node.runs.pop(attempt_id, None)

    async def _http(self, node_id: str, method: str, path: str, body: dict) -> Answer:
        node = self.lookup(node_id)
        if node is None:
            return Answer(body.get("attempt_id"), 0, "NodeGone", f"node {node_id} is not registered")
        request = HTTPRequest(f"{node.url}{path}", method=method, body=json.dumps(body),
                              headers={"Content-Type": "application/json", **auth_headers(self.token)},
                              connect_timeout=5, request_timeout=self.timeout)
        if self._client is None:
            self._client = AsyncHTTPClient(max_clients=64)
        try:
            response = await self._client.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            return Answer(body.get("attempt_id"), 0, "NodeUnreachable", str(exc))
        result, message = envelope_of(response.code, response.body)
        return Answer(body.get("attempt_id"), response.code, result, message)
