"""The node's HTTP API, in process: a real :class:`Node` against a fake manager's HTTP side."""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile

import pytest
import tornado.web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from litepipeline.common.config import NodeConfig
from litepipeline.node.node import Node


def app_tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = json.dumps({"actions": [{"name": "s", "condition": [], "main": "sleep 30 #"}]}).encode()
        info = tarfile.TarInfo("app/configuration.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


APP = app_tarball()
SHA1 = hashlib.sha1(APP).hexdigest()


class Manager(tornado.web.RequestHandler):
    def initialize(self, state: dict) -> None:
        self.state = state

    async def get(self) -> None:  # /app/download
        await asyncio.sleep(self.state.get("download_delay", 0))
        self.finish(APP)

    def put(self) -> None:  # /action/update
        self.state.setdefault("reports", []).append(json.loads(self.request.body))
        self.finish({"result": "ok"})


def free_port() -> int:
    sock = bind_sockets(0, "127.0.0.1")[0]
    port = sock.getsockname()[1]
    sock.close()
    return port


class Harness:
    def __init__(self, tmp_path, **config) -> None:
        self.tmp_path = tmp_path
        self.config = config
        self.state: dict = {}

    async def __aenter__(self) -> Harness:  # noqa: PYI034 (typing.Self needs 3.11)
        sockets = bind_sockets(0, "127.0.0.1")
        self.server = HTTPServer(tornado.web.Application(
            [(r"/app/download", Manager, {"state": self.state}), (r"/action/update", Manager, {"state": self.state})]))
        self.server.add_sockets(sockets)
        values = dict(http_host="127.0.0.1", http_port=0, manager_http_host="127.0.0.1",
                      manager_http_port=sockets[0].getsockname()[1], manager_tcp_port=free_port(),
                      retry_interval=0.2, data_path=str(self.tmp_path / "data"), log_path=str(self.tmp_path),
                      action_slots=1, drain_timeout=0.5)
        values.update(self.config)
        self.node = Node(NodeConfig(**values))
        await self.node.start()
        self.client = AsyncHTTPClient(force_instance=True)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.node.stop()
        self.client.close()
        self.server.stop()

    async def call(self, method: str, path: str, body=None, headers=None):
        response = await self.client.fetch(
            f"http://127.0.0.1:{self.node.http_port}{path}", method=method, raise_error=False,
            body=None if body is None else json.dumps(body), headers=headers)
        return response.code, json.loads(response.body)

    async def reports(self, stage: str, count: int = 1) -> list:
        for _ in range(500):
            found = [r for r in self.state.get("reports", []) if r["stage"] == stage]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.01)
        raise AssertionError(f"no {stage} report")


def action(attempt_id: str = "att-1", **changes) -> dict:
    body = {"name": "s", "main": "sleep 30 #", "condition": [], "env": None, "input_data": {}, "task_id": "t1",
            "app_id": "app1", "app_sha1": SHA1, "attempt_id": attempt_id}
    body.update(changes)
    return body


def test_root_unknown_and_validation(tmp_path):
    async def run() -> None:
        async with Harness(tmp_path) as h:
            assert await h.call("GET", "/") == (200, {"message": "LitePipeline node service"})
            code, body = await h.call("GET", "/no/such/path")
            assert code == 404 and body["result"] == "NotFound"
            code, body = await h.call("POST", "/action/run", action(name="../../x"))
            assert code == 400 and body["result"] == "InvalidParameters" and "'name'" in body["message"]
            code, body = await h.call("POST", "/action/run", {k: v for k, v in action().items() if k != "attempt_id"})
            assert code == 400 and "'attempt_id'" in body["message"]
            code, body = await h.call("PUT", "/action/stop", {"task_id": "t1", "name": "s", "signal": 2})
            assert code == 400 and "'signal'" in body["message"]
            code, body = await h.call("PUT", "/action/stop", {"task_id": "t1", "name": "s", "signal": -9})
            assert code == 404 and body["result"] == "ActionNotExists"

    asyncio.run(run())


def test_slots_idempotency_and_stop(tmp_path):
    async def run() -> None:
        async with Harness(tmp_path) as h:
            assert await h.call("POST", "/action/run", action("att-1")) == (200, {"result": "ok"})
            code, body = await h.call("POST", "/action/run", action("att-1"))
            assert code == 200 and body["result"] == "ok"  # the same attempt again: accepted, not re-run
            code, body = await h.call("POST", "/action/run", action("att-2", task_id="t2"))
            assert (code, body) == (409, {"result": "OperationFailed", "message": "node has no free action slot"})
            code, body = await h.call("GET", "/status/full")
            assert body == {"result": "ok", "full": True, "action_slots": 1, "running": 1, "draining": False}
            await h.reports("running")
            assert await h.call("PUT", "/action/stop", {"task_id": "t1", "name": "s", "signal": "-15"}) == \
                (200, {"result": "ok"})
            finished = (await h.reports("finished"))[0]
            assert finished["status"] == "kill" and finished["attempt_id"] == "att-1"
            assert finished["returncode"] == 143
            code, body = await h.call("GET", "/status/full")
            assert body["full"] is False and body["running"] == 0

    asyncio.run(run())


def test_stop_while_fetching_reports_kill(tmp_path):
    async def run() -> None:
        async with Harness(tmp_path) as h:
            h.state["download_delay"] = 0.5
            assert (await h.call("POST", "/action/run", action()))[0] == 200
            await asyncio.sleep(0.1)
            assert (await h.call("PUT", "/action/stop", {"task_id": "t1", "name": "s", "signal": -9}))[0] == 200
            finished = (await h.reports("finished"))[0]
            assert finished["status"] == "kill" and finished["returncode"] is None
            assert [r for r in h.state["reports"] if r["stage"] == "running"] == []

    asyncio.run(run())


def test_draining_refuses_actions(tmp_path):
    async def run() -> None:
        async with Harness(tmp_path) as h:
            h.node.executor.draining = True
            code, body = await h.call("POST", "/action/run", action())
            assert code == 503 and body["result"] == "ServiceUnavailable"
            assert (await h.call("GET", "/status/full"))[1]["full"] is True

    asyncio.run(run())


@pytest.mark.parametrize("header, expected", [(None, 401), ("Bearer wrong", 401), ("Bearer s3cret", 200)])
def test_auth_token(tmp_path, header, expected):
    async def run() -> None:
        async with Harness(tmp_path, auth_token="s3cret") as h:
            assert (await h.call("GET", "/"))[0] == 200  # public
            headers = {"Authorization": header} if header else None
            code, body = await h.call("GET", "/status/full", headers=headers)
            assert code == expected
            if expected == 401:
                assert body["result"] == "Unauthorized"

    asyncio.run(run())
