"""The manager's link to nodes and the cluster's TCP side, in-process (no node processes)."""
from __future__ import annotations

import asyncio
import json

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_sockets
from tornado.tcpclient import TCPClient

from litepipeline.common import protocol
from litepipeline.common.messages import Answer, Heartbeat, Register, RunAction, StopAction
from litepipeline.manager.cluster import Cluster
from litepipeline.manager.nodes import NodeInfo
from litepipeline.manager.nodelink import NodeLink

SHA1 = "b" * 40


def run_message(attempt_id: str = "att-1", **changes) -> RunAction:
    fields = dict(name="a", main="python a.py", task_id="t1", app_id="app", app_sha1=SHA1, attempt_id=attempt_id)
    fields.update(changes)
    return RunAction(**fields)


class FakeStream:
    def __init__(self, closed: bool = False) -> None:
        self.frames: list = []
        self.closed = closed

    def write(self, frame: bytes):
        if self.closed:
            raise StreamClosedError()
        self.frames.append(frame)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def node(stream, features=frozenset({protocol.RUN}), address=("127.0.0.1", 1)) -> NodeInfo:
    return NodeInfo("n1", {"http_host": address[0], "http_port": address[1]}, stream, features=features)


def decode(frame: bytes) -> dict:
    body, trailer = frame.split(protocol.JSON_END, 1)
    return protocol.decode(body, trailer)


def test_run_writes_the_frame_before_returning_and_waits_for_the_answer():
    async def run() -> Answer:
        stream = FakeStream()
        info = node(stream)
        link = NodeLink({"n1": info}.get, None)
        pending = link.run("n1", run_message())
        (frame,) = stream.frames                      # written already, in this loop turn
        assert decode(frame) == {"command": "RUN", "data": run_message().to_dict()}
        info.answered(Answer("att-1", 200, "ok", ""))
        return await pending

    answer = asyncio.run(run())
    assert answer.ok and answer.code == 200


def test_a_closed_connection_and_a_vanished_node_are_answers():
    async def run() -> tuple:
        info = node(FakeStream(closed=True))
        closed = await NodeLink({"n1": info}.get, None).run("n1", run_message())
        gone = await NodeLink({}.get, None).run("n1", run_message())
        waiting = node(FakeStream())
        pending = NodeLink({"n1": waiting}.get, None).run("n1", run_message())
        waiting.fail_runs("connection closed")         # the cluster saw the connection end
        return closed, gone, await pending

    closed, gone, dropped = asyncio.run(run())
    assert (closed.code, closed.result) == (0, "NodeGone")
    assert (gone.code, gone.result) == (0, "NodeGone") and "not registered" in gone.message
    assert (dropped.code, dropped.result, dropped.message) == (0, "NodeGone", "connection closed")


class Route(tornado.web.RequestHandler):
    def initialize(self, seen: list, code: int, body: str) -> None:
        self.seen, self.code, self.body = seen, code, body

    def post(self) -> None:
        self.seen.append((self.request.method, self.request.path, json.loads(self.request.body)))
        self.set_status(self.code)
        self.finish(self.body)

    put = post


def test_without_the_feature_or_when_big_run_goes_over_http_and_stop_always_does():
    seen: list = []

    async def run() -> tuple:
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(tornado.web.Application([
            (r"/action/run", Route, {"seen": seen, "code": 200, "body": '{"result": "ok", "message": ""}'}),
            (r"/action/stop", Route, {"seen": seen, "code": 404, "body": "not json"})]))
        server.add_sockets(sockets)
        address = ("127.0.0.1", sockets[0].getsockname()[1])
        try:
            plain = node(FakeStream(), features=frozenset(), address=address)
            small = await NodeLink({"n1": plain}.get, None).run("n1", run_message())
            framed = node(FakeStream(), address=address)
            big = await NodeLink({"n1": framed}.get, None).run(
                "n1", run_message(input_data={"x": "y" * protocol.CHANNEL_MESSAGE_LIMIT}))
            stopped = await NodeLink({"n1": framed}.get, None).stop("n1", StopAction("t1", "a", -9, "att-1"))
            return small, big, stopped, framed.stream.frames
        finally:
            server.stop()

    small, big, stopped, frames = asyncio.run(run())
    assert small.ok and big.ok and frames == []
    assert [(m, p) for m, p, _ in seen] == [("POST", "/action/run"), ("POST", "/action/run"),
                                           ("PUT", "/action/stop")]
    assert seen[2][2] == {"task_id": "t1", "name": "a", "signal": -9, "attempt_id": "att-1"}
    assert (stopped.code, stopped.result) == (404, "BadResponse")


def test_the_cluster_hands_on_what_a_draining_node_says():
    ups: list = []

    async def on_up(node_id, message, registering):
        ups.append((node_id, message, registering))
        return []

    async def run() -> list:
        cluster = Cluster(None, on_up, lambda node_id, reason: None)
        sockets = bind_sockets(0, "127.0.0.1")
        cluster.add_sockets(sockets)
        stream = await TCPClient().connect("127.0.0.1", sockets[0].getsockname()[1])
        info = Register(http_port=8001, action_slots=3, http_host="127.0.0.1")
        answers = []
        try:
            await stream.write(protocol.encode(protocol.REGISTER, info.to_dict()))
            answers.append(await protocol.read_message(stream))
            info.draining, info.free_slots = True, 0
            await stream.write(protocol.encode(protocol.HEARTBEAT, info.to_dict()))
            answers.append(await protocol.read_message(stream))
        finally:
            stream.close()
            cluster.close_all()
        return answers

    register, heartbeat = asyncio.run(run())
    assert register["data"]["status"] == "SUCCESS" and heartbeat["data"] == {"status": "SUCCESS",
                                                                            "message": "SUCCESS", "stop": []}
    (_, first, registering), (_, second, again) = ups
    assert isinstance(first, Register) and registering and first.action_slots == 3 and not first.draining
    assert isinstance(second, Heartbeat) and not again and second.draining and second.free_slots == 0


def test_lookup_is_the_only_way_to_a_node():
    # the link holds no table of its own: a node the cluster dropped is gone for it at once
    table = {"n1": node(FakeStream())}
    link = NodeLink(table.get, None)
    del table["n1"]
    answer = asyncio.run(link.stop("n1", StopAction("t1", "a")))
    assert answer.result == "NodeGone"
