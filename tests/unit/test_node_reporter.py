"""Unit tests of report delivery and of the manager link, against in-process fake managers."""
from __future__ import annotations

import asyncio
import json
import os

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_sockets
from tornado.tcpserver import TCPServer

from litepipeline.common import protocol
from litepipeline.common.messages import HeldAttempt, Register, Report
from litepipeline.node.managerlink import ManagerLink, load_node_id
from litepipeline.node.reporter import Reporter


class Update(tornado.web.RequestHandler):
    def initialize(self, answers: list, seen: list) -> None:
        self.answers = answers
        self.seen = seen

    def put(self) -> None:
        self.seen.append(json.loads(self.request.body))
        code, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        self.set_status(code)
        self.finish(body)


async def http_manager(answers: list, seen: list) -> tuple[HTTPServer, str]:
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(tornado.web.Application([(r"/action/update", Update, {"answers": answers, "seen": seen})]))
    server.add_sockets(sockets)
    return server, f"http://127.0.0.1:{sockets[0].getsockname()[1]}/action/update"


def report(attempt_id: str = "a1", stage: str = "finished") -> Report:
    return Report(name="first", task_id="t1", node_id=None, attempt_id=attempt_id, attempt=1, stage=stage,
                  status="success" if stage == "finished" else None, start_at="x", end_at="y", returncode=0,
                  result={}, message="")


def http_reporter(reports_dir: str, url: str, retry_interval: float, node_id: str) -> Reporter:
    """A reporter whose link has no TCP channel: every report goes as PUT /action/update."""
    link = ManagerLink(url, None, retry_interval=retry_interval)
    link.node_id = node_id
    link.start()
    return Reporter(reports_dir, link, retry_interval)


async def until(predicate, timeout: float = 5) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_finished_report_is_retried_until_acknowledged(tmp_path):
    seen: list = []
    answers = [(503, {"result": "ServiceUnavailable", "message": "busy"}), (500, "oops"), (200, {"result": "ok"})]

    async def run() -> None:
        server, url = await http_manager(answers, seen)
        reporter = http_reporter(str(tmp_path / "reports"), url, 0.2, "node-1")
        reporter.start()
        reporter.submit(report())
        assert reporter.has("a1") and reporter.pending_entries()[0].attempt_id == "a1"
        assert await reporter.flush(5)
        await reporter.close()
        server.stop()

    asyncio.run(run())
    assert len(seen) == 3 and all(r["node_id"] == "node-1" for r in seen)
    assert os.listdir(tmp_path / "reports") == []


def test_stale_attempt_is_dropped_not_retried(tmp_path):
    seen: list = []

    async def run() -> None:
        server, url = await http_manager([(409, {"result": "StaleAttempt", "message": "gone"})], seen)
        reporter = http_reporter(str(tmp_path / "reports"), url, 0.2, "n")
        reporter.start()
        reporter.submit(report())
        await until(lambda: not reporter.has("a1"))
        await asyncio.sleep(0.3)
        await reporter.close()
        server.stop()

    asyncio.run(run())
    assert len(seen) == 1
    assert os.listdir(tmp_path / "reports") == []


def test_running_report_refused_means_disowned(tmp_path):
    seen: list = []
    rejected: list = []

    async def run() -> None:
        server, url = await http_manager([(409, {"result": "StaleAttempt", "message": "gone"})], seen)
        reporter = http_reporter(str(tmp_path / "reports"), url, 0.2, "n")
        reporter.on_rejected = lambda attempt_id, message: rejected.append((attempt_id, message))
        reporter.start()
        reporter.send_running(report("a2", "running"))
        await until(lambda: rejected)
        await reporter.close()
        server.stop()

    asyncio.run(run())
    assert rejected == [("a2", "StaleAttempt: gone")]


def test_unsent_reports_are_persisted_and_resent_at_start(tmp_path):
    seen: list = []
    reports_dir = str(tmp_path / "reports")

    async def first_run() -> None:
        # nobody listens on this port
        sockets = bind_sockets(0, "127.0.0.1")
        port = sockets[0].getsockname()[1]
        sockets[0].close()
        reporter = http_reporter(reports_dir, f"http://127.0.0.1:{port}/action/update", 0.1, "n")
        reporter.start()
        reporter.submit(report("a3"))
        await until(lambda: os.path.exists(os.path.join(reports_dir, "a3.json")))
        assert not await reporter.flush(0.3)
        await reporter.close()

    async def second_run() -> None:
        server, url = await http_manager([(200, {"result": "ok"})], seen)
        reporter = http_reporter(reports_dir, url, 0.1, "n")
        assert reporter.start() == 1
        assert await reporter.flush(5)
        await reporter.close()
        server.stop()

    asyncio.run(first_run())
    assert os.listdir(reports_dir) == ["a3.json"]
    asyncio.run(second_run())
    assert [r["attempt_id"] for r in seen] == ["a3"] and os.listdir(reports_dir) == []


class FakeTCP(TCPServer):
    """Refuses the first REGISTER, forgets the node once (heartbeat FAILURE), sends a stop list."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list = []

    async def handle_stream(self, stream, address) -> None:
        try:
            while True:
                message = await protocol.read_message(stream)
                command, data = message["command"], message["data"]
                self.log.append((command, data.get("node_id")))
                registers = sum(1 for c, _ in self.log if c == protocol.REGISTER)
                heartbeats = sum(1 for c, _ in self.log if c == protocol.HEARTBEAT)
                if command == protocol.REGISTER and registers == 1:
                    await stream.write(protocol.reply(command, "FAILURE", "wrong token"))
                elif command == protocol.REGISTER:
                    await stream.write(protocol.reply(command, "SUCCESS", node_id=data["node_id"] or "id-1"))
                elif heartbeats == 1:
                    await stream.write(protocol.reply(command, "FAILURE", "unknown node"))
                else:
                    stop = [{"task_id": "t", "name": "n", "attempt_id": "a"}] if heartbeats == 2 else []
                    await stream.write(protocol.reply(command, "SUCCESS", stop=stop))
        except (StreamClosedError, protocol.ProtocolError):
            pass


def test_link_registers_retries_and_persists(tmp_path, caplog):
    id_path = str(tmp_path / "configuration.json")
    stops: list = []
    registered: list = []

    async def run() -> list:
        server = FakeTCP()
        sockets = bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        link = ManagerLink("http://127.0.0.1:1/action/update", None, "127.0.0.1", sockets[0].getsockname()[1],
                           id_path, lambda: Register(http_port=1, action_slots=1), 0.05, 5, 0.05)
        link.on_stop = stops.extend
        link.on_registered = lambda: registered.append(1)
        link.start()
        await until(lambda: stops)
        await link.stop()
        link.close()
        server.stop()
        return server.log

    log = asyncio.run(run())
    # refused → retried → registered → heartbeat FAILURE → registered again at once → heartbeats
    assert [c for c, _ in log[:5]] == ["REGISTER", "REGISTER", "HEARTBEAT", "REGISTER", "HEARTBEAT"]
    assert log[0][1] is None and log[2][1] == "id-1"
    assert load_node_id(id_path) == "id-1"
    assert len(registered) == 2
    assert stops == [HeldAttempt("t", "n", "a")]
    assert any(r.levelname == "ERROR" and "wrong token" in r.getMessage() for r in caplog.records)


class CountingTCP(TCPServer):
    """Answers every REGISTER and HEARTBEAT with SUCCESS and keeps what it got."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list = []

    async def handle_stream(self, stream, address) -> None:
        try:
            while True:
                message = await protocol.read_message(stream)
                self.seen.append((message["command"], message["data"].get("draining")))
                await stream.write(protocol.reply(message["command"], "SUCCESS", node_id="id-1"))
        except (StreamClosedError, protocol.ProtocolError):
            pass


def test_a_node_that_begins_to_drain_says_so_at_once(tmp_path):
    state = {"draining": False}

    async def run() -> list:
        server = CountingTCP()
        sockets = bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        # heartbeats every minute: only heartbeat_soon() can bring the next one
        link = ManagerLink("http://127.0.0.1:1/action/update", None, "127.0.0.1", sockets[0].getsockname()[1],
                           str(tmp_path / "configuration.json"),
                           lambda: Register(http_port=1, action_slots=1, draining=state["draining"]), 60, 5, 0.05)
        link.start()
        await until(lambda: link.registered.is_set())
        state["draining"] = True
        link.heartbeat_soon()
        await until(lambda: len(server.seen) == 2)
        await link.stop()
        link.close()
        server.stop()
        return server.seen

    assert asyncio.run(run()) == [("REGISTER", False), ("HEARTBEAT", True)]


class ChannelTCP(TCPServer):
    """A manager that offers the RUN/REPORT features and acknowledges every REPORT frame."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: list = []

    async def handle_stream(self, stream, address) -> None:
        try:
            while True:
                message = await protocol.read_message(stream)
                command, data = message["command"], message["data"]
                if command == protocol.REPORT:
                    self.reports.append(data["attempt_id"])
                    await stream.write(protocol.encode(protocol.REPORT, {"attempt_id": data["attempt_id"],
                                                                         "code": 200, "result": "ok"}))
                else:
                    await stream.write(protocol.reply(command, "SUCCESS", node_id="id-1",
                                                      features=protocol.FEATURES))
        except (StreamClosedError, protocol.ProtocolError):
            pass


def test_the_link_sends_a_report_as_a_frame_and_a_big_one_over_http(tmp_path):
    seen: list = []

    async def run() -> tuple:
        http, url = await http_manager([(200, {"result": "ok"})], seen)
        tcp = ChannelTCP()
        sockets = bind_sockets(0, "127.0.0.1")
        tcp.add_sockets(sockets)
        link = ManagerLink(url, None, "127.0.0.1", sockets[0].getsockname()[1], str(tmp_path / "configuration.json"),
                           lambda: Register(http_port=1, action_slots=1), 60, 5, 0.05)
        link.start()
        await until(lambda: link.registered.is_set())
        small = await link.report(report("small"))
        big = report("big")
        big.result = {"data": "x" * protocol.CHANNEL_MESSAGE_LIMIT}
        large = await link.report(big)
        await link.stop()
        link.close()
        tcp.stop()
        http.stop()
        return small, large, tcp.reports

    small, large, framed = asyncio.run(run())
    assert small.ok and large.ok
    assert framed == ["small"] and [r["attempt_id"] for r in seen] == ["big"]
