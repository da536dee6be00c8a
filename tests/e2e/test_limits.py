"""Resource limits on real processes: action timeouts (configured and generated) kill the
whole process group, output.data past the node's ``max_output_size`` fails the action,
and ``workspace_retention`` removes a finished task's workspaces (0 keeps them).
"""
from __future__ import annotations

import json
import os
import time
from typing import Optional

import pytest

from tests.e2e.harness import LiteCluster, wait_for
from tests.e2e.test_execution import SLEEPER, pid_alive, read_pids
from tests.fixtures import make_app

OUTPUT_LIMIT = 10_000
BIG_PY = ("import json, sys\n"
          "json.dump({'data': {'b': 'x' * int(sys.argv[1])}}, open(sys.argv[2] + '/output.data', 'w'))\n")
DEEP_PY = "import sys\nopen(sys.argv[1] + '/output.data', 'w').write('[' * 4000 + ']' * 4000)\n"


def _action(name: str, main: str = "python3 echo.py", **extra) -> dict:
    return {"name": name, "condition": [], "main": main, **extra}


APPS = {
    "echo": [_action("first")],
    "slow": [_action("slow", "python3 sleeper.py", timeout=1)],
    "big": [_action("big", f"python3 big.py {OUTPUT_LIMIT * 5}")],
    "deep": [_action("deep", "python3 deep.py")],
    "wide": [_action(f"w{i}") for i in range(4)],
}


@pytest.fixture(scope="module")
def lc(tmp_path_factory):
    """Two nodes with a small max_output_size: node0 keeps workspaces 1 s, node1 forever."""
    root = str(tmp_path_factory.mktemp("limits"))
    with LiteCluster(root) as cluster:
        cluster.start_manager()
        cluster.add_node(slots=2, max_output_size=OUTPUT_LIMIT, workspace_retention=1, executor_interval=0.2)
        cluster.add_node(slots=2, max_output_size=OUTPUT_LIMIT, workspace_retention=0, executor_interval=0.2)
        ids = {n["http_port"]: n["node_id"] for n in cluster.api.cluster_info()["info"]["nodes"]}
        cluster.node_ids = [ids[n.config["http_port"]] for n in cluster.nodes]
        files = {"sleeper.py": SLEEPER, "big.py": BIG_PY, "deep.py": DEEP_PY}
        cluster.apps = {}
        for name, actions in APPS.items():
            directory = os.path.join(root, f"app-{name}")
            os.makedirs(directory)
            cluster.apps[name] = cluster.upload(make_app(directory, {"actions": actions}, files=files), name)
        yield cluster


def workspaces(node) -> str:
    return os.path.join(node.config["data_path"], "workspaces")


def find_pids(cluster: LiteCluster, task_id: str, name: str) -> Optional[dict]:
    for node in cluster.nodes:
        pids = read_pids(os.path.join(workspaces(node), task_id, name))
        if pids:
            return pids
    return None


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fp:
                fields = fp.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def assert_group_gone(pids: dict) -> None:
    def gone() -> bool:
        return not pid_alive(pids["pid"]) and not pid_alive(pids["child"]) and not group_members(pids["pgid"])

    wait_for(gone, timeout=5, what="the action's process group to be gone")


def test_action_timeout_kills_the_process_group(lc):
    started = time.monotonic()
    task_id = lc.api.task_create(lc.apps["slow"], "timeout", {"sleep": 30})["task_id"]
    pids = wait_for(lambda: find_pids(lc, task_id, "slow"), timeout=20, what="the sleeper's pids")
    assert pid_alive(pids["child"]) and pids["pgid"] != os.getpgid(0)
    info = lc.wait_task(task_id, timeout=15)["task_info"]
    elapsed = time.monotonic() - started
    assert (info["status"], info["result"]["slow"]["status"]) == ("fail", "fail")
    assert info["result"]["slow"]["message"].startswith("action timed out after 1 s")
    assert elapsed < 8, f"the task took {elapsed:.1f} s"
    assert_group_gone(pids)


def test_generated_action_timeout(lc):
    generated = [{"name": "gen_slow", "main": "python3 sleeper.py", "condition": [], "timeout": 1,
                  "input_data": {"sleep": 30}}]
    # the echo app's 'first' writes what its input asks for; sleeper.py comes with every app here
    started = time.monotonic()
    reply = lc.api.task_create(lc.apps["echo"], "generated timeout", {"_first": {"actions": generated}})
    task_id = reply["task_id"]
    pids = wait_for(lambda: find_pids(lc, task_id, "gen_slow"), timeout=20,
                    what="the generated action's pids")
    info = lc.wait_task(task_id, timeout=15)["task_info"]
    assert time.monotonic() - started < 8
    assert info["status"] == "fail"
    assert info["result"]["first"]["status"] == "success"
    assert info["result"]["gen_slow"]["status"] == "fail"
    assert info["result"]["gen_slow"]["message"].startswith("action timed out after 1 s")
    assert_group_gone(pids)


def test_output_over_the_nodes_max_output_size_fails_the_action(lc):
    info = lc.run_task(lc.apps["big"], {}, timeout=30)["task_info"]
    size = len(json.dumps({"data": {"b": "x" * OUTPUT_LIMIT * 5}}))
    assert (info["stage"], info["status"]) == ("finished", "fail")
    big = info["result"]["big"]
    assert (big["status"], big["returncode"]) == ("fail", 0)
    assert big["message"] == f"output.data is {size} bytes, larger than the limit of {OUTPUT_LIMIT} bytes"
    assert big["result"] == {}


def test_workspace_retention(lc):
    """node0 (workspace_retention 1, executor_interval 0.2) removes a finished task's workspaces
    after about a second; node1 (workspace_retention 0) keeps them."""
    info = lc.run_task(lc.apps["wide"], {}, timeout=30)["task_info"]
    finished = time.monotonic()
    assert info["status"] == "success"
    ran_on = {name: r["node_id"] for name, r in info["result"].items()}
    assert set(ran_on.values()) == set(lc.node_ids), f"expected both nodes to run some of {ran_on}"
    task_id = info["task_id"]
    kept, swept = (os.path.join(workspaces(lc.nodes[i]), task_id) for i in (1, 0))
    assert os.path.isdir(swept)   # not removed before its time
    wait_for(lambda: not os.path.exists(swept), timeout=10, interval=0.05,
             what="node0 to remove the workspaces")
    gone_after = time.monotonic() - finished
    assert gone_after < 5, f"removed only after {gone_after:.1f} s"
    time.sleep(1.5)   # past node0's retention: node1 must still keep its own
    on_node1 = sorted(name for name, node_id in ran_on.items() if node_id == lc.node_ids[1])
    assert sorted(os.listdir(kept)) == on_node1
    for name in on_node1:
        assert sorted(os.listdir(os.path.join(kept, name))) == ["input.data", "output.data", "stdout.data"]
    assert not os.listdir(os.path.join(lc.nodes[0].config["data_path"], "trash"))


def test_output_nested_too_deep_fails_the_action(lc):
    task_id = lc.api.task_create(lc.apps["deep"], "deep output", {})["task_id"]
    try:
        def settled() -> Optional[dict]:
            info = lc.task(task_id)["task_info"]
            return info if info["stage"] == "finished" or len(info["attempts"]) >= 2 else None

        info = wait_for(settled, timeout=15, what="the action to end or run again")
        assert [a["attempt"] for a in info["attempts"]] == [1], "the action ran again"
        assert info["status"] == "fail"
        assert info["result"]["deep"]["message"].startswith("output.data is not valid JSON: ")
    finally:
        if lc.task(task_id)["task_info"]["stage"] != "finished":
            lc.api.task_stop(task_id, -9)


def test_output_over_the_managers_max_output_size_fails_once(tmp_path):
    """A manager stricter than its node: the report is accepted as a failure, never refused
    (a refused report would look lost and the action would run again and again)."""
    with LiteCluster(str(tmp_path), max_output_size=OUTPUT_LIMIT) as cluster:
        cluster.start_manager()
        cluster.add_node(slots=1)            # the node's own limit is the default 16 MiB
        app_id = cluster.upload(make_app(str(tmp_path), {"actions": APPS["big"]}, files={"big.py": BIG_PY}))
        info = cluster.run_task(app_id, timeout=30)["task_info"]
        size = len(json.dumps({"data": {"b": "x" * OUTPUT_LIMIT * 5}, "actions": []}))
        assert info["status"] == "fail"
        assert [a["attempt"] for a in info["attempts"]] == [1]
        big = info["result"]["big"]
        assert big["message"] == f"output.data is {size} bytes, larger than the manager's limit of {OUTPUT_LIMIT} bytes"
        assert big["result"] == {}
