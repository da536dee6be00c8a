"""A standby manager's answers (in-process HTTP and TCP on free loopback ports)."""
from __future__ import annotations

import asyncio
import json

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream
from tornado.netutil import bind_sockets

from litepipeline.common import protocol
from litepipeline.common.messages import RegisterAnswer
from litepipeline.manager.leadership import identity
from litepipeline.manager.standby import HttpGate, Standby, TcpGate

LEADER = {**identity("m-1", "10.1.2.3", 8000, "10.1.2.3", 6001), "epoch": 4}


def _serve(view: dict, token=None):
    standby = Standby(lambda: view, token)
    gate = HttpGate(standby.app())
    http, tcp = HTTPServer(gate), TcpGate()
    tcp.handler = standby.handle_stream
    http_sockets, tcp_sockets = bind_sockets(0, "127.0.0.1"), bind_sockets(0, "127.0.0.1")
    http.add_sockets(http_sockets)
    tcp.add_sockets(tcp_sockets)
    return http, tcp, http_sockets[0].getsockname()[1], tcp_sockets[0].getsockname()[1]


async def _fetch(port: int, path: str, method: str = "GET", body=None, headers=None):
    client = AsyncHTTPClient(force_instance=True)
    try:
        return await client.fetch(HTTPRequest(f"http://127.0.0.1:{port}{path}", method=method, body=body,
                                              headers=headers, follow_redirects=False), raise_error=False)
    finally:
        client.close()


def test_a_standby_names_the_leader_and_serves_nothing_else():
    async def run() -> None:
        http, tcp, port, tcp_port = _serve({"role": "standby", "leader": LEADER}, token="s3cret")
        try:
            index = await _fetch(port, "/")
            assert json.loads(index.body) == {"message": "LitePipeline manager service", "role": "standby",
                                              "leader": LEADER}
            assert (await _fetch(port, "/cluster/info")).code == 401
            info = await _fetch(port, "/cluster/info", headers={"Authorization": "Bearer s3cret"})
            assert json.loads(info.body) == {"result": "ok", "role": "standby", "leader": LEADER,
                                             "message": "this manager is a standby; the leader is at "
                                                        "http://10.1.2.3:8000"}
            for method, path, body in (("POST", "/task/create", b'{"app_id": "x"}'), ("GET", "/task/list", None),
                                       ("DELETE", "/nowhere", None)):
                answer = await _fetch(port, path, method, body)
                assert answer.code == 503, path
                assert json.loads(answer.body) == {"result": "NotLeader", "leader": LEADER, "message":
                                                   "this manager is a standby; the leader is at http://10.1.2.3:8000"}
            document = await _fetch(port, "/openapi.json")   # public, as on the leader
            assert document.code == 200 and json.loads(document.body)["openapi"].startswith("3.1")
            page = await _fetch(port, "/ui/tasks")
            assert (page.code, page.headers["Location"]) == (302, "http://10.1.2.3:8000/ui/")
            stream = await _connect(tcp_port)
            await stream.write(protocol.encode(protocol.REGISTER, {"http_port": 1, "action_slots": 1}))
            answer = RegisterAnswer.parse((await protocol.read_message(stream))["data"])
            assert (answer.status, answer.leader) == (protocol.FAILURE, LEADER)
            assert answer.message == "this manager is a standby; the leader is at 10.1.2.3:8000:6001"
            stream.close()
        finally:
            http.stop()
            tcp.stop()

    asyncio.run(run())


def test_with_no_leader_a_standby_says_to_try_again():
    async def run() -> None:
        http, tcp, port, _ = _serve({"role": "standby", "leader": None})
        try:
            answer = await _fetch(port, "/app/list")
            assert answer.code == 503
            assert json.loads(answer.body) == {"result": "NotLeader", "leader": None,
                                               "message": "no manager leads right now; try again shortly"}
            assert (await _fetch(port, "/ui/")).code == 503
        finally:
            http.stop()
            tcp.stop()

    asyncio.run(run())


async def _connect(port: int) -> IOStream:
    from tornado.tcpclient import TCPClient

    return await TCPClient().connect("127.0.0.1", port)
