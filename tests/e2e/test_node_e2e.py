"""End-to-end tests of ``litenode``: a real node process against a fake manager.

The fake manager runs in this test process (its own thread and event loop): a TCP server
answering REGISTER/HEARTBEAT and an HTTP server for ``/app/download`` and
``/action/update``, all on 127.0.0.1 with ports picked by binding port 0.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import requests
import tornado.web
import yaml
from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_sockets
from tornado.tcpserver import TCPServer

from litepipeline.common import protocol
from tests.fixtures import live_group_members

APP_ID = "app-0001"

OK_PY = """
import json, os, sys
ws = sys.argv[1]
data = json.load(open(os.path.join(ws, "input.data")))
print("hello from ok.py")
json.dump({"data": {"seen": data, "n": data.get("n", 0) + 1}}, open(os.path.join(ws, "output.data"), "w"))
"""

SLEEPER_SH = """
sleep 60 &
echo $! > "$1/child.pid"
wait
"""


def make_app_tarball(actions: Optional[list] = None) -> bytes:
    """An application tarball (SPEC §6) with ok.py and sleeper.sh."""
    files = {
        "configuration.json": json.dumps({"actions": actions or [
            {"name": "ok", "condition": [], "main": f"{sys.executable} ok.py"},
            {"name": "sleeper", "condition": [], "main": "bash sleeper.sh"},
        ]}),
        "ok.py": OK_PY,
        "sleeper.sh": SLEEPER_SH,
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        top = tarfile.TarInfo("./app")
        top.type = tarfile.DIRTYPE
        top.mode = 0o755
        tar.addfile(top)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"./app/{name}")
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class FakeManager:
    """REGISTER/HEARTBEAT over TCP, /app/download and /action/update over HTTP."""

    def __init__(self, apps: dict[str, bytes]) -> None:
        self.apps = apps
        self.lock = threading.Lock()
        self.registers: list[dict] = []
        self.heartbeats: list[dict] = []
        self.reports: list[dict] = []  # every PUT /action/update body received
        self.update_mode: Callable[[dict], tuple[int, dict]] = lambda r: (200, {"result": "ok"})
        self.register_status = "SUCCESS"
        self.stop_next: list[dict] = []  # handed out once with the next answer
        self.downloads = 0
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self._ready = threading.Event()
        self._done: Optional[asyncio.Event] = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._http_server: Optional[HTTPServer] = None
        self.tcp_port = 0
        self.http_port = 0

    # -- thread side ------------------------------------------------------------------------
    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        tcp = _TCP(self)
        sockets = bind_sockets(0, "127.0.0.1")
        self.tcp_port = sockets[0].getsockname()[1]
        tcp.add_sockets(sockets)
        self._start_http(0)
        self._ready.set()
        await self._done.wait()
        tcp.stop()
        self._http_server.stop()

    def _start_http(self, port: int) -> None:
        app = tornado.web.Application([(r"/app/download", _Download, {"fm": self}),
                                       (r"/action/update", _Update, {"fm": self})])
        sockets = bind_sockets(port, "127.0.0.1")
        self.http_port = sockets[0].getsockname()[1]
        self._http_server = HTTPServer(app)
        self._http_server.add_sockets(sockets)

    def _answer_extra(self) -> dict:
        with self.lock:
            stop, self.stop_next = self.stop_next, []
        return {"stop": stop} if stop else {}

    # -- test side ----------------------------------------------------------------------------
    def start(self) -> FakeManager:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def close(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._done.set)
        self._thread.join(5)

    def call(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the manager's loop and wait for it."""
        done = threading.Event()

        def run() -> None:
            fn()
            done.set()

        self.loop.call_soon_threadsafe(run)
        assert done.wait(5)

    def http_down(self) -> None:
        self.call(self._http_server.stop)

    def http_up(self) -> None:
        self.call(lambda: self._start_http(self.http_port))

    def finished(self, attempt_id: str) -> list[dict]:
        with self.lock:
            return [r for r in self.reports if r["attempt_id"] == attempt_id and r["stage"] == "finished"]

    def held(self) -> Optional[list]:
        """The ``running`` list of the latest heartbeat (None before the first one)."""
        with self.lock:
            return self.heartbeats[-1]["running"] if self.heartbeats else None

    def running(self, attempt_id: str) -> list[dict]:
        with self.lock:
            return [r for r in self.reports if r["attempt_id"] == attempt_id and r["stage"] == "running"]


class _TCP(TCPServer):
    def __init__(self, fm: FakeManager) -> None:
        super().__init__()
        self.fm = fm

    async def handle_stream(self, stream, address) -> None:
        fm = self.fm
        try:
            while True:
                message = await protocol.read_message(stream)
                command, data = message["command"], message["data"]
                if command == protocol.REGISTER:
                    with fm.lock:
                        fm.registers.append(data)
                    if fm.register_status != "SUCCESS":
                        await stream.write(protocol.reply(command, "FAILURE", "wrong token"))
                        continue
                    node_id = data.get("node_id") or str(uuid.uuid4())
                    await stream.write(protocol.reply(command, "SUCCESS", node_id=node_id, **fm._answer_extra()))
                else:
                    with fm.lock:
                        fm.heartbeats.append(data)
                    await stream.write(protocol.reply(command, "SUCCESS", **fm._answer_extra()))
        except (StreamClosedError, protocol.ProtocolError):
            pass


class _Download(tornado.web.RequestHandler):
    def initialize(self, fm: FakeManager) -> None:
        self.fm = fm

    def get(self) -> None:
        body = self.fm.apps.get(self.get_query_argument("app_id"))
        if body is None:
            self.set_status(404)
            self.finish({"result": "AppNotExists", "message": "no such app"})
            return
        self.fm.downloads += 1
        self.finish(body)


class _Update(tornado.web.RequestHandler):
    def initialize(self, fm: FakeManager) -> None:
        self.fm = fm

    def put(self) -> None:
        report = json.loads(self.request.body)
        with self.fm.lock:
            self.fm.reports.append(report)
        code, body = self.fm.update_mode(report)
        self.set_status(code)
        self.finish(body)


def wait_for(predicate: Callable[[], Any], timeout: float = 10, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def is_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fp:
            stat = fp.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:].split()[0] not in (b"Z", b"X")


class NodeProcess:
    """A ``litenode`` subprocess; ``start()`` waits until it registered."""

    def __init__(self, tmp_path, fm: FakeManager, **overrides: Any) -> None:
        self.fm = fm
        self.dir = tmp_path
        self.data_path = str(tmp_path / "data")
        config = {
            "log_level": "DEBUG", "log_path": str(tmp_path / "logs"), "data_path": self.data_path,
            "http_host": "127.0.0.1", "http_port": 0,
            "manager_http_host": "127.0.0.1", "manager_http_port": fm.http_port,
            "manager_tcp_host": "127.0.0.1", "manager_tcp_port": fm.tcp_port,
            "heartbeat_interval": 0.2, "heartbeat_timeout": 5, "retry_interval": 0.2,
            "executor_interval": 0.2, "action_slots": 2, "drain_timeout": 5,
        }
        config.update(overrides)
        self.config_path = tmp_path / "node.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0

    def start(self) -> NodeProcess:
        with self.fm.lock:
            seen = len(self.fm.registers)
        with open(self.dir / "node.out", "ab") as log:   # the child keeps its own copy
            self.proc = subprocess.Popen([sys.executable, "-m", "litepipeline.node.server", "-c",
                                          str(self.config_path)], stdout=log, stderr=subprocess.STDOUT)
        register = wait_for(lambda: self.fm.registers[seen] if len(self.fm.registers) > seen else None,
                            10, "REGISTER")
        self.port = register["http_port"]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, name: str, attempt_id: Optional[str] = None, task_id: str = "task-1", **extra: Any) -> str:
        attempt_id = attempt_id or uuid.uuid4().hex
        body = {"name": name, "main": extra.pop("main", None), "condition": [], "env": None,
                "input_data": extra.pop("input_data", {}), "task_id": task_id, "app_id": APP_ID,
                "app_sha1": hashlib.sha1(self.fm.apps[APP_ID]).hexdigest(), "attempt_id": attempt_id}
        body.update(extra)
        if body["main"] is None:
            body["main"] = {"ok": f"{sys.executable} ok.py", "sleeper": "bash sleeper.sh"}[name]
        answer = requests.post(f"{self.url}/action/run", json=body, timeout=5)
        assert answer.status_code == 200, answer.text
        return attempt_id

    def workspace(self, name: str, task_id: str = "task-1") -> str:
        return os.path.join(self.data_path, "workspaces", task_id, name)

    def wait_child_pid(self, name: str) -> int:
        path = os.path.join(self.workspace(name), "child.pid")
        text = wait_for(lambda: os.path.exists(path) and Path(path).read_text().strip(), 10, "child.pid")
        return int(text)

    def terminate(self, timeout: float = 15) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def log(self) -> str:
        return (self.dir / "node.out").read_text(errors="replace")


@pytest.fixture
def fm():
    manager = FakeManager({APP_ID: make_app_tarball()}).start()
    try:
        yield manager
    finally:
        manager.close()


@pytest.fixture
def node_factory(tmp_path, fm):
    nodes: list[NodeProcess] = []

    def make(**overrides: Any) -> NodeProcess:
        node = NodeProcess(tmp_path, fm, **overrides)
        nodes.append(node)
        return node.start()

    try:
        yield make
    finally:
        for node in nodes:
            node.kill()


def test_register_persists_node_id_and_reuses_it(fm, node_factory):
    node = node_factory()
    first = fm.registers[-1]
    assert first["node_id"] is None
    for key in ("http_host", "http_port", "action_slots", "heartbeat_interval", "heartbeat_timeout",
                "data_path", "app_path", "python3", "version", "running"):
        assert key in first, key
    wait_for(lambda: fm.heartbeats, 5, "a heartbeat")
    node_id = fm.heartbeats[-1]["node_id"]
    assert node_id
    with open(os.path.join(node.data_path, "configuration.json")) as fp:
        assert json.load(fp) == {"node_id": node_id}
    assert requests.get(node.url + "/").json() == {"message": "LitePipeline node service"}
    assert node.terminate() == 0
    node.start()
    assert fm.registers[-1]["node_id"] == node_id


def test_action_runs_and_is_reported(fm, node_factory):
    node = node_factory()
    attempt_id = node.run("ok", input_data={"n": 41}, attempt=2)
    report = wait_for(lambda: fm.finished(attempt_id), 10, "finished report")[0]
    assert (report["status"], report["returncode"], report["message"]) == ("success", 0, "")
    assert report["result"]["data"]["n"] == 42 and report["result"]["actions"] == []
    seen = report["result"]["data"]["seen"]
    assert seen == {"n": 41, "task_id": "task-1", "workspace": node.workspace("ok")}
    assert report["node_id"] == fm.registers[-1]["node_id"] or report["node_id"]
    assert report["attempt"] == 2 and report["name"] == "ok" and report["task_id"] == "task-1"
    assert report["start_at"] and report["end_at"]
    with open(os.path.join(node.workspace("ok"), "stdout.data")) as fp:
        assert "hello from ok.py" in fp.read()
    # the same attempt again is not run again
    node.run("ok", attempt_id=attempt_id)
    time.sleep(0.3)
    assert len(fm.finished(attempt_id)) == 1
    assert fm.downloads == 1
    assert not os.listdir(os.path.join(node.data_path, "reports"))
    assert peak_rss_mb(node.proc.pid) <= 60


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fp:
        for line in fp:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("signum", [-15, -9])
def test_stop_kills_the_process_group(fm, node_factory, signum):
    node = node_factory()
    attempt_id = node.run("sleeper")
    child = node.wait_child_pid("sleeper")
    running = wait_for(lambda: fm.running(attempt_id), 5, "running report")[0]
    assert running["status"] is None
    pgid = os.getpgid(child)
    answer = requests.put(f"{node.url}/action/stop", json={"task_id": "task-1", "name": "sleeper",
                                                           "signal": signum}, timeout=5)
    assert answer.status_code == 200, answer.text
    report = wait_for(lambda: fm.finished(attempt_id), 5, "finished report")[0]
    assert report["status"] == "kill"
    wait_for(lambda: not live_group_members(pgid), 2, "the process group to be gone")
    unknown = requests.put(f"{node.url}/action/stop", json={"task_id": "task-1", "name": "nope", "signal": -9})
    assert unknown.status_code == 404 and unknown.json()["result"] == "ActionNotExists"


def test_node_killed_takes_its_actions_along(fm, node_factory):
    node = node_factory()
    node.run("sleeper")
    child = node.wait_child_pid("sleeper")
    pgid = os.getpgid(child)
    running_dir = os.path.join(node.data_path, "running")
    # the pgid is on record (written as the launch returns: the action may be quicker)
    wait_for(lambda: os.listdir(running_dir), 5, "the group's start record")
    node.proc.kill()
    node.proc.wait(5)
    wait_for(lambda: not live_group_members(pgid), 1.0, "the action's processes to die with the node")
    node.start()
    wait_for(lambda: not os.listdir(running_dir), 5, "the orphan record to be cleared")


def test_orphans_of_a_crashed_node_are_reaped_at_start(fm, node_factory, tmp_path):
    # a group the death signal could not reach, recorded by "an earlier run"
    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        node = NodeProcess(tmp_path, fm)
        running_dir = os.path.join(node.data_path, "running")
        os.makedirs(running_dir)
        with open(f"/proc/{orphan.pid}/stat", "rb") as fp:
            stat = fp.read()
        start_time = int(stat[stat.rindex(b")") + 2:].split()[19])
        with open("/proc/sys/kernel/random/boot_id") as fp:
            boot_id = fp.read().strip()
        with open(os.path.join(running_dir, "journal"), "w") as fp:
            json.dump({"attempt_id": "a1", "pgid": orphan.pid, "start_time": start_time, "boot_id": boot_id}, fp)
            fp.write("\n")   # and a wrong start time: not ours
            json.dump({"attempt_id": "a2", "pgid": os.getpid(), "start_time": 1, "boot_id": boot_id}, fp)
            fp.write("\n")
        node.start()
        assert orphan.wait(5) == -signal.SIGKILL
        assert not os.listdir(running_dir)
        node.kill()
    finally:
        orphan.kill()
        orphan.wait()


def test_stale_finished_report_is_dropped(fm, node_factory):
    fm.update_mode = lambda r: ((409, {"result": "StaleAttempt", "message": "attempt superseded"})
                                if r["stage"] == "finished" else (200, {"result": "ok"}))
    node = node_factory()
    attempt_id = node.run("ok")
    wait_for(lambda: fm.finished(attempt_id), 10, "finished report")
    time.sleep(0.6)
    assert len(fm.finished(attempt_id)) == 1
    assert not os.listdir(os.path.join(node.data_path, "reports"))
    assert "StaleAttempt" in node.log()


def test_stale_running_report_kills_the_action(fm, node_factory):
    def stale(report: dict) -> tuple[int, dict]:
        if report["stage"] == "running":
            time.sleep(0.5)  # blocks the fake manager a moment: the action gets to write child.pid
        return 409, {"result": "StaleAttempt", "message": "attempt superseded"}

    fm.update_mode = stale
    node = node_factory()
    attempt_id = node.run("sleeper")
    child = node.wait_child_pid("sleeper")
    wait_for(lambda: not is_alive(child), 5, "the disowned action to be killed")
    time.sleep(0.3)
    assert fm.finished(attempt_id) == []


def test_manager_stop_list_kills_and_drops(fm, node_factory):
    node = node_factory()
    attempt_id = node.run("sleeper")
    child = node.wait_child_pid("sleeper")
    wait_for(lambda: any(e["attempt_id"] == attempt_id for e in fm.held() or []), 5,
             "the attempt in a heartbeat's running list")
    with fm.lock:
        fm.stop_next = [{"task_id": "task-1", "name": "sleeper", "attempt_id": attempt_id}]
    wait_for(lambda: not is_alive(child), 5, "the action to be killed")
    wait_for(lambda: fm.held() == [], 5, "an empty running list")
    assert fm.finished(attempt_id) == []


def test_timeout_fails_the_action(fm, node_factory):
    node = node_factory()
    started = time.monotonic()
    attempt_id = node.run("sleeper", timeout=0.5)
    report = wait_for(lambda: fm.finished(attempt_id), 10, "finished report")[0]
    assert time.monotonic() - started < 5
    assert report["status"] == "fail"
    assert report["message"].startswith("action timed out after 0.5 s")


def test_reports_survive_a_manager_outage_and_a_node_restart(fm, node_factory):
    fm.update_mode = lambda r: (503, {"result": "ServiceUnavailable", "message": "busy"})
    node = node_factory()
    attempt_id = node.run("ok")
    wait_for(lambda: len(fm.finished(attempt_id)) >= 2, 10, "retries while the manager answers 503")
    reports_dir = os.path.join(node.data_path, "reports")
    # not acknowledged: written to disk (at the first refusal, or PERSIST_AFTER at the latest)
    wait_for(lambda: os.listdir(reports_dir) == [f"{attempt_id}.json"], 5, "the report on disk")
    wait_for(lambda: any(e["attempt_id"] == attempt_id for e in fm.held() or []), 5,
             "the unacknowledged attempt listed as held")
    # the manager becomes unreachable, the node dies and comes back
    fm.http_down()
    node.proc.kill()
    node.proc.wait(5)
    fm.update_mode = lambda r: (200, {"result": "ok"})
    node.start()
    time.sleep(0.3)
    fm.http_up()
    wait_for(lambda: not os.listdir(reports_dir), 10, "the report to be delivered")
    assert fm.finished(attempt_id)[-1]["status"] == "success"


def test_sigterm_drains_running_actions(fm, node_factory):
    node = node_factory()
    quick = node.run("quick", main="sleep 0.5 && true", task_id="t-drain")
    assert node.terminate() == 0
    report = fm.finished(quick)[0]
    assert report["status"] == "success"


def test_sigterm_kills_actions_past_drain_timeout(fm, node_factory):
    node = node_factory(drain_timeout=0.3)
    attempt_id = node.run("sleeper")
    child = node.wait_child_pid("sleeper")
    started = time.monotonic()
    assert node.terminate() == 0
    assert time.monotonic() - started < 5
    report = fm.finished(attempt_id)[0]
    assert report["status"] == "kill" and report["message"] == "node shut down"
    assert not is_alive(child)


def test_second_sigterm_cuts_the_drain_short(fm, node_factory):
    node = node_factory(drain_timeout=30)
    attempt_id = node.run("sleeper")
    child = node.wait_child_pid("sleeper")
    started = time.monotonic()
    node.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert node.proc.poll() is None  # draining
    assert node.terminate() == 0
    assert time.monotonic() - started < 5
    assert fm.finished(attempt_id)[0]["status"] == "kill"
    assert not is_alive(child)


def test_wrong_token_is_refused_and_retried(fm, node_factory):
    fm.register_status = "FAILURE"
    node = node_factory(auth_token="s3cret")
    wait_for(lambda: len(fm.registers) >= 3, 5, "REGISTER retries")
    assert fm.registers[-1]["token"] == "s3cret"
    assert "wrong token" in node.log()
    assert requests.get(node.url + "/status/full").status_code == 401
    answer = requests.get(node.url + "/status/full", headers={"Authorization": "Bearer s3cret"}).json()
    assert answer == {"result": "ok", "full": False, "action_slots": 2, "running": 0, "draining": False}
    fm.register_status = "SUCCESS"
    wait_for(lambda: fm.heartbeats, 5, "a heartbeat after the manager accepted the node")
