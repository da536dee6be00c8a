"""What a manager that does not lead serves, and the gates that hand its ports over.

A standby (fail-over on PostgreSQL, see :mod:`litepipeline.manager.leader`) listens on its
HTTP and TCP ports from the start, so a taken port is found at once, but answers only:

- ``GET /`` and ``GET /cluster/info``: its ``role`` and who leads (``leader``);
- ``GET /openapi.json``: the API document, as on the leader;
- every other route: 503 ``NotLeader`` naming the leader; web pages redirect to its ``/ui/``;
- a node's REGISTER: ``FAILURE`` naming the leader (the answer's ``leader`` field), then
  the connection is closed.

When it takes the lease over, :class:`HttpGate` and :class:`TcpGate` switch the same
listening sockets to the full manager: no port is closed and opened again.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable, Optional

import tornado.web
from tornado import httputil
from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpserver import TCPServer

from litepipeline.common import protocol
from litepipeline.common.messages import RegisterAnswer
from litepipeline.common.protocol import FAILURE, REGISTER
from litepipeline.common.web import JsonHandler
from litepipeline.manager import openapi

LOG = logging.getLogger(__name__)
NO_LEADER = "no manager leads right now; try again shortly"
FRAME_TIMEOUT = 5.0   # a connection that sends nothing is closed after this


def http_message(leader: Optional[dict], scheme: str = "http") -> str:
    if not leader:
        return NO_LEADER
    return f"this manager is a standby; the leader is at {scheme}://{leader['address']}"


def tcp_message(leader: Optional[dict]) -> str:
    if not leader:
        return NO_LEADER
    return f"this manager is a standby; the leader is at {leader['tcp_host']}:{leader['http_port']}:{leader['tcp_port']}"


class HttpGate(httputil.HTTPServerConnectionDelegate):
    """The HTTP server's delegate: every new request goes to the current application."""

    def __init__(self, app: Any = None) -> None:
        self.app = app

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> Any:
        return self.app.start_request(server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)


class TcpGate(TCPServer):
    """The TCP listener: every new connection goes to the current handler."""

    def __init__(self, ssl_options: Any = None) -> None:
        super().__init__(max_buffer_size=protocol.MAX_FRAME_SIZE * 2, ssl_options=ssl_options)
        self.handler: Optional[Callable[[IOStream, tuple], Awaitable[None]]] = None

    async def handle_stream(self, stream: IOStream, address: tuple) -> None:
        if self.handler is None:
            stream.close()
            return
        await self.handler(stream, address)


class Standby:
    """The standby's answers, from ``view()``: ``{"role": "standby", "leader": {...}|None}``.

    Args:
        view: who leads, as last read from the lease.
        token: the cluster's auth token (``/cluster/info`` needs it, as on the leader).
        scheme: ``https`` when the managers serve TLS.
    """

    def __init__(self, view: Callable[[], dict], token: Optional[str], scheme: str = "http") -> None:
        self.view = view
        self.token = token
        self.scheme = scheme

    def message(self) -> str:
        return http_message(self.view().get("leader"), self.scheme)

    def app(self) -> tornado.web.Application:
        args = {"standby": self}
        return tornado.web.Application([
            (r"/", IndexHandler, args),
            (r"/cluster/info", ClusterInfoHandler, args),
            (r"/openapi.json", OpenApiHandler, args),
            (r"/ui(/.*)?", PageHandler, args),
        ], default_handler_class=NotLeaderHandler, default_handler_args=args)

    async def handle_stream(self, stream: IOStream, address: tuple) -> None:
        """A node's connection: its REGISTER is refused naming the leader; then closed."""
        try:
            message = await asyncio.wait_for(protocol.read_message(stream), FRAME_TIMEOUT)
            leader = self.view().get("leader")
            command = message["command"] if message["command"] in (REGISTER, protocol.HEARTBEAT) else REGISTER
            await stream.write(RegisterAnswer(FAILURE, tcp_message(leader), leader=leader).frame(command,
                                                                                                 node_id=None))
            LOG.info("refused %s from %s: this manager is a standby", command, address[0])
        except (StreamClosedError, protocol.ProtocolError, asyncio.TimeoutError, OSError):
            pass
        finally:
            stream.close()


class _StandbyHandler(JsonHandler):
    def initialize(self, standby: Standby) -> None:
        self.standby = standby
        self.auth_token = standby.token

    def body_limit(self) -> Optional[int]:
        return 0   # a standby reads no body


class IndexHandler(_StandbyHandler):
    public = True

    def get(self) -> None:
        self.finish({"message": "LitePipeline manager service", **self.standby.view()})


class OpenApiHandler(_StandbyHandler):
    """The API document, as the leader serves it: public, the same on every manager."""

    public = True

    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(openapi.document_bytes())


class ClusterInfoHandler(_StandbyHandler):
    def get(self) -> None:
        self.reply(message=self.standby.message(), **self.standby.view())


class NotLeaderHandler(_StandbyHandler):
    """Every other route: 503 ``NotLeader`` naming the leader (before any body is read)."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def prepare(self) -> None:
        self.set_status(503)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        # answered before the request is read to its end, which makes tornado close the
        # connection: say so, or a client would send its next request on it
        self.set_header("Connection", "close")
        self.finish(json.dumps({"result": "NotLeader", "message": self.standby.message(),
                                "leader": self.standby.view().get("leader")}))


class PageHandler(_StandbyHandler):
    """The web interface: to the leader's ``/ui/``, or a page saying none leads."""

    public = True

    def prepare(self) -> None:
        leader = self.standby.view().get("leader")
        self.set_header("Connection", "close")   # answered in prepare (see NotLeaderHandler)
        if leader:
            self.redirect(f"{self.standby.scheme}://{leader['address']}/ui/")
            return
        self.set_status(503)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish("<!doctype html><title>LitePipeline</title><p>This manager is a standby and "
                    f"{NO_LEADER}.</p>")

