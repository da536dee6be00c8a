"""Manager fail-over on PostgreSQL: two managers on one database, nodes listing both.

Each test has a database of its own (created, then dropped); without a PostgreSQL server
the tests are skipped with the reason printed.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import textwrap
import time

import pytest
from sqlalchemy import create_engine, text

from litepipeline.client.api import ClientError
from litepipeline.common import protocol
from tests.e2e.harness import FailoverCluster, wait_for
from tests.fixtures import make_app
from tests.pgdb import temporary_database

# the action's side effect: one line with its task's tag, appended to a file shared by the nodes
MARK = textwrap.dedent('''
    import json, os, sys, time
    ws = sys.argv[1]
    data = json.load(open(os.path.join(ws, "input.data")))
    time.sleep(data.get("sleep", 0))
    with open(data["marks"], "a") as fp:
        fp.write(data["tag"] + "\\n")
    with open(os.path.join(ws, "output.data"), "w") as fp:
        json.dump({"data": {"tag": data["tag"]}}, fp)
''')
APP = {"actions": [{"name": "mark", "condition": [], "main": "python3 mark.py"}]}


@pytest.fixture
def database_url():
    with temporary_database("lp_failover") as url:
        yield url


def _start_pair(cluster: FailoverCluster, nodes: int = 0, slots: int = 2):
    """The first manager leads; the second (a standby) and ``nodes`` nodes start together."""
    first, second = cluster.managers
    cluster.start_manager(first)
    led = cluster.wait_leader(first)
    second.start()
    for _ in range(nodes):
        cluster.add_node([first, second], slots=slots)
    wait_for(lambda: (cluster.role(second) or {}).get("leader"), what="the standby to name the leader")
    assert cluster.role(second)["role"] == "standby"
    wait_for(lambda: len(cluster.node_ports(first)) == nodes, what="the nodes registered with the leader")
    return first, second, led


def _create(cluster, leader, app_id: str, count: int, marks: str, sleep: float) -> list:
    ids = []
    for index in range(count):
        reply = cluster.api(leader).task_create(app_id, f"t{index}", {"tag": f"tag-{index}", "marks": marks,
                                                                    "sleep": sleep})
        assert reply.ok, reply
        ids.append(reply["task_id"])
    return ids


def _share_apps(source, target) -> None:
    """The application files, copied as shared storage would hold them (the new leader
    serves downloads to nodes that do not have the version yet)."""
    shutil.copytree(source.config["data_path"], target.config["data_path"], dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".lock", "*.db*"))


def _marks(path: str) -> list:
    with open(path) as fp:
        return fp.read().split()


def _finished(cluster, manager, ids: list) -> bool:
    try:
        reply = cluster.api(manager).task_list(limit=len(ids) + 10, stage="finished")
    except ClientError:   # the new leader still starting, on a busy machine
        return False
    return reply.ok and reply.get("total", 0) >= len(ids)


@pytest.mark.slow
def test_kill_9_of_the_leader_the_standby_leads_and_every_task_runs_once(database_url, tmp_path):
    marks = str(tmp_path / "marks.txt")
    with FailoverCluster(str(tmp_path), database_url) as cluster:
        first, second, _ = _start_pair(cluster, nodes=2, slots=8)
        app_id = cluster.api(first).app_create(make_app(str(tmp_path), APP, {"mark.py": MARK}), "mark", "")["app_id"]
        ids = _create(cluster, first, app_id, 200, marks, 0.3)
        _share_apps(first, second)
        wait_for(lambda: os.path.exists(marks) and len(_marks(marks)) >= 20, what="tasks under way")
        first.kill()
        killed = time.monotonic()
        led = cluster.wait_leader(second, timeout=30)
        print(f"take-over: the standby led {time.monotonic() - killed:.2f} s after kill -9 (epoch {led['leader']['epoch']})")
        assert led["leader"]["epoch"] == 2 and led["leader"]["http_port"] == second.config["http_port"]
        wait_for(lambda: _finished(cluster, second, ids), timeout=60, interval=0.2, what="200 tasks finished")
        reply = cluster.api(second).task_list(limit=300)
        assert sorted(t["status"] for t in reply["tasks"]) == ["success"] * 200
        assert sorted(_marks(marks)) == sorted(f"tag-{i}" for i in range(200))   # each once
        assert "stepping down" not in second.output()


@pytest.mark.slow
def test_a_leader_stopped_past_its_lease_writes_and_sends_nothing_and_returns_as_standby(database_url, tmp_path):
    marks = str(tmp_path / "marks.txt")
    with FailoverCluster(str(tmp_path), database_url) as cluster:
        first, second, _ = _start_pair(cluster, nodes=1, slots=4)
        app_id = cluster.api(first).app_create(make_app(str(tmp_path), APP, {"mark.py": MARK}), "mark", "")["app_id"]
        ids = _create(cluster, first, app_id, 24, marks, 0.5)
        _share_apps(first, second)
        wait_for(lambda: os.path.exists(marks) and len(_marks(marks)) >= 4, what="tasks under way")
        first.signal(signal.SIGSTOP)
        led = cluster.wait_leader(second, timeout=30)
        wait_for(lambda: _finished(cluster, second, ids), timeout=60, interval=0.2, what="24 tasks finished")
        before = _snapshot(database_url), sorted(_marks(marks))
        node_log = len(cluster.nodes[0].output())
        first.signal(signal.SIGCONT)
        came_back = wait_for(lambda: _standby_naming(cluster, first), timeout=20,
                             what="the old leader back as a standby naming the leader")
        assert came_back["leader"]["manager_id"] == led["leader"]["manager_id"]
        assert came_back["leader"]["epoch"] == 2
        time.sleep(1)   # anything it might still send or write would land by now
        assert (_snapshot(database_url), sorted(_marks(marks))) == before   # no row written, no action run
        assert before[1] == sorted(f"tag-{i}" for i in range(24))
        assert "action accepted" not in cluster.nodes[0].output()[node_log:]   # no dispatch reached the node
        assert "stepping down as leader" in first.output()
        reply = cluster.api(second).task_list(limit=100)
        assert sorted(t["status"] for t in reply["tasks"]) == ["success"] * 24


def test_a_node_listing_the_standby_first_registers_with_the_leader(database_url, tmp_path):
    with FailoverCluster(str(tmp_path), database_url) as cluster:
        first, second, led = _start_pair(cluster)
        answer = cluster.role(second)
        assert answer["role"] == "standby" and answer["leader"] == led["leader"]
        status, info = cluster.get(second, "/cluster/info")
        assert (status, info["role"], info["leader"]["address"]) == (
            200, "standby", f"127.0.0.1:{first.config['http_port']}")
        status, refused = cluster.get(second, "/task/list")
        assert status == 503 and refused["result"] == "NotLeader"
        assert refused["leader"] == led["leader"] and f"http://127.0.0.1:{first.config['http_port']}" in refused["message"]
        assert _register_answer(second)["leader"]["manager_id"] == led["leader"]["manager_id"]
        node = cluster.add_node([second, first])
        wait_for(lambda: node.config["http_port"] in cluster.node_ports(first), what="node registered with the leader")
        assert "following the leader" in node.output()
        assert cluster.role(first)["role"] == "leader"


def _standby_naming(cluster, manager):
    answer = cluster.role(manager) or {}
    return answer if answer.get("role") == "standby" and answer.get("leader") else None


def _register_answer(manager) -> dict:
    """A REGISTER sent to a standby's TCP port: refused, naming the leader."""
    with socket.create_connection(("127.0.0.1", manager.config["tcp_port"]), timeout=5) as sock:
        sock.sendall(protocol.encode(protocol.REGISTER, {"http_port": 1, "action_slots": 1}))
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data.split(protocol.JSON_END)[0])["data"]
    assert answer["status"] == protocol.FAILURE and "standby" in answer["message"], answer
    return answer


def _snapshot(url: str) -> tuple:
    """Every task, action and attempt row, as text: equal snapshots mean nothing was written."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(text(f"SELECT md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) "
                                           f"FROM {table} r")).scalar_one()
                         for table in ("tasks", "actions", "attempts"))
    finally:
        engine.dispose()
