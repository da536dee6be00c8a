"""Tasks running on real nodes: DAGs, outputs, dynamic actions, failures, stops, node loss."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.e2e.harness import wait_for
from tests.fixtures import dag, make_app

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# An action that records its pid and the pid of a child it starts, then waits; the test
# can then check that the whole process group is gone after a stop or a node crash.
SLEEPER = """
import json, os, subprocess, sys, time
ws = sys.argv[1]
child = subprocess.Popen(["sleep", "300"])
with open(os.path.join(ws, "pids.json"), "w") as fp:
    json.dump({"pid": os.getpid(), "child": child.pid, "pgid": os.getpgid(0)}, fp)
data = json.load(open(os.path.join(ws, "input.data")))
time.sleep(float(data.get("sleep", 300)))
child.kill()
"""


def workspace(node, task_id: str, name: str) -> str:
    return os.path.join(node.config["data_path"], "workspaces", task_id, name)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fp:
            return fp.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def read_pids(path: str):
    try:
        with open(os.path.join(path, "pids.json")) as fp:
            return json.load(fp)
    except (OSError, ValueError):
        return None


def test_dag_outputs_flow_downstream(cluster, tmp_path):
    node = cluster.add_node(slots=2)
    app_id = cluster.upload(make_app(str(tmp_path)))
    info = cluster.run_task(app_id, {"greeting": "hi"})
    task = info["task_info"]
    assert (task["stage"], task["status"]) == ("finished", "success")
    result = task["result"]
    assert set(result) == {"first", "second", "third"}
    first = result["first"]
    assert first["status"] == "success" and first["returncode"] == 0 and first["stage"] == "finished"
    assert first["result"]["data"]["input"]["greeting"] == "hi"          # root gets task input
    third_input = result["third"]["result"]["data"]["input"]
    assert third_input["first"]["name"] == "first" and third_input["second"]["name"] == "second"
    assert "greeting" not in third_input
    # first and second overlapped (2 slots), third started after both ended
    ws = workspace(node, task["task_id"], "third")
    assert sorted(os.listdir(ws)) == ["input.data", "output.data", "stdout.data"]
    with open(os.path.join(ws, "stdout.data")) as fp:
        assert fp.read() == "running third\n"
    with open(os.path.join(ws, "input.data")) as fp:
        assert json.load(fp)["workspace"] == ws
    assert task["start_at"] <= result["first"]["start_at"] and result["third"]["end_at"] <= task["end_at"]
    assert result["third"]["start_at"] >= max(result["first"]["end_at"], result["second"]["end_at"])
    tasks = cluster.cli("task", "info", "-t", task["task_id"], check=True).stdout
    assert tasks.splitlines()[1].rstrip().endswith("| finished | success")


def test_failing_action_fails_task_and_stops_others(cluster, tmp_path):
    node = cluster.add_node(slots=2)
    config = {"actions": [{"name": "bad", "main": "python3 echo.py"},
                          {"name": "slow", "main": "python3 sleeper.py"},
                          {"name": "after", "condition": ["bad", "slow"], "main": "python3 echo.py"}]}
    app_id = cluster.upload(make_app(str(tmp_path), config, {"sleeper.py": SLEEPER}))
    task_id = cluster.api.task_create(app_id, "t", {"_bad": {"exit": 3, "sleep": 0.5}})["task_id"]
    slow = wait_for(lambda: read_pids(workspace(node, task_id, "slow")), what="slow to start")
    info = cluster.wait_task(task_id)["task_info"]
    # the message ends with the last lines of the action's output (echo.py prints "running bad")
    assert (info["status"], info["message"]) == ("fail", "action 'bad' failed: action exited with code 3; "
                                                         "last output:\nrunning bad")
    assert info["result"]["bad"]["returncode"] == 3 and info["result"]["bad"]["status"] == "fail"
    assert info["result"]["slow"]["status"] == "kill"
    assert "after" not in info["result"]
    wait_for(lambda: not pid_alive(slow["pid"]) and not pid_alive(slow["child"]), 10, what="slow's group gone")


@pytest.mark.parametrize("sig", ["-15", "-9"])
def test_stop_signals_whole_process_group(cluster, tmp_path, sig):
    node = cluster.add_node(slots=2)
    config = {"actions": [{"name": "a", "main": "python3 sleeper.py"}, {"name": "b", "main": "python3 sleeper.py"},
                          {"name": "c", "condition": ["a"], "main": "python3 echo.py"}]}
    app_id = cluster.upload(make_app(str(tmp_path), config, {"sleeper.py": SLEEPER}))
    task_id = cluster.api.task_create(app_id, "t", {})["task_id"]
    pids = [wait_for(lambda n=n: read_pids(workspace(node, task_id, n)), what=f"{n} to start") for n in "ab"]
    info = cluster.api.task_info(task_id)
    assert info["task_info"]["stage"] == "running"
    assert sorted(a["name"] for a in info["task_running_info"]) == ["a", "b"]
    assert info["task_running_info"][0]["node"] == f"127.0.0.1:{node.config['http_port']}"
    out = cluster.cli("task", "stop", "-t", task_id, "-g", sig, check=True)
    assert "ok" in out.stdout
    final = cluster.wait_task(task_id)["task_info"]
    assert (final["stage"], final["status"]) == ("finished", "kill")
    assert {final["result"][n]["status"] for n in "ab"} == {"kill"}
    assert "c" not in final["result"]
    for p in pids:
        assert not pid_alive(p["pid"]) and not pid_alive(p["child"])
    again = cluster.cli("task", "stop", "-t", task_id)
    assert again.returncode == 1 and "TaskAlreadyFinished" in again.stdout


def test_two_nodes_share_work(cluster, tmp_path):
    [cluster.add_node(slots=1), cluster.add_node(slots=1)]
    config = {"actions": [{"name": f"a{i}", "main": "python3 echo.py"} for i in range(4)]}
    app_id = cluster.upload(make_app(str(tmp_path), config))
    info = cluster.run_task(app_id, {"_all": {"sleep": 0.3}})["task_info"]
    assert info["status"] == "success"
    used = {r["node_id"] for r in info["result"].values()}
    assert len(used) == 2
    # never more than one action at a time on a one-slot node
    for node_id in used:
        spans = sorted((r["start_at"], r["end_at"]) for r in info["result"].values() if r["node_id"] == node_id)
        for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
            assert s2 >= e1
    assert cluster.api.cluster_info()["info"]["number_of_nodes"] == 2
    table = cluster.cli("cluster", "info", check=True).stdout.splitlines()
    assert [c.strip() for c in table[0].split("|")] == ["#", "node_id", "http_host", "http_port", "action_slots",
                                                       "app_path", "data_path"]
    assert len(table) == 3


def test_dynamic_actions_feed_to_action(cluster, tmp_path):
    cluster.add_node(slots=3)
    generated = [{"name": f"gen_{i}", "main": "python3 echo.py", "condition": [], "input_data": {"i": i},
                  "to_action": "last"} for i in range(3)]
    app_id = cluster.upload(make_app(str(tmp_path), dag(("first", []), ("last", ["first"]))))
    info = cluster.run_task(app_id, {"_first": {"actions": generated}})["task_info"]
    assert info["status"] == "success"
    assert set(info["result"]) == {"first", "gen_0", "gen_1", "gen_2", "last"}
    assert info["result"]["gen_1"]["result"]["data"]["input"]["i"] == 1
    last_input = info["result"]["last"]["result"]["data"]["input"]
    assert {k for k in last_input if k not in ("task_id", "workspace")} == {"first", "gen_0", "gen_1", "gen_2"}
    assert last_input["gen_2"]["input"]["i"] == 2


def test_bad_dynamic_actions_fail_task(cluster, tmp_path):
    cluster.add_node()
    app_id = cluster.upload(make_app(str(tmp_path), dag(("first", []))))
    bad = [{"name": "../escape", "main": "true"}]
    info = cluster.run_task(app_id, {"_first": {"actions": bad}})["task_info"]
    assert info["status"] == "fail"
    assert info["result"]["first"]["message"] == \
        "generated actions rejected: action name '../escape' must be a plain name (no '/', '\\' or '..')"
    assert not os.path.exists(os.path.join(cluster.nodes[0].config["data_path"], "workspaces", "escape"))


def test_node_killed_mid_action_reruns_elsewhere(cluster, tmp_path):
    doomed = cluster.add_node(slots=1)
    config = {"actions": [{"name": "a", "main": "python3 sleeper.py"}]}
    app_id = cluster.upload(make_app(str(tmp_path), config, {"sleeper.py": SLEEPER}))
    task_id = cluster.api.task_create(app_id, "t", {"sleep": 2})["task_id"]
    first = wait_for(lambda: read_pids(workspace(doomed, task_id, "a")), what="a to start")
    doomed.kill()   # at once: a node started first could take longer than the action's 2 s
    # the orphaned group dies with its node
    wait_for(lambda: not pid_alive(first["pid"]) and not pid_alive(first["child"]), 10, what="orphans gone")
    survivor = cluster.add_node(slots=1)
    info = cluster.wait_task(task_id, timeout=60)["task_info"]
    assert info["status"] == "success"
    assert info["result"]["a"]["attempt"] == 2
    assert info["result"]["a"]["node_id"] != info["attempts"][0]["node_id"]
    assert [a["status"] for a in info["attempts"]] == ["lost", "success"]
    assert read_pids(workspace(survivor, task_id, "a")) is not None


def _pack(example: str) -> str:
    env = dict(os.environ)
    result = subprocess.run([os.path.join(REPO, "examples", example, "pack.sh")], capture_output=True, text=True,
                            env=env, timeout=900)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_example_multiple_actions(cluster):
    cluster.add_node(slots=2)
    app_id = cluster.upload(_pack("multiple_actions"))
    info = cluster.run_task(app_id, timeout=120)["task_info"]
    assert info["status"] == "success", info
    assert info["result"]["third"]["result"]["data"]["sum"] == 3


def test_example_without_venv(cluster):
    cluster.add_node(slots=2)
    app_id = cluster.upload(_pack("multiple_actions_without_venv"))
    info = cluster.run_task(app_id)["task_info"]
    assert info["status"] == "success", info
    assert set(info["result"]) == {"first", "second", "third"}


def test_example_generate_actions_dynamically(cluster):
    cluster.add_node(slots=2)
    app_id = cluster.upload(_pack("generate_actions_dynamically"))
    info = cluster.run_task(app_id, {"count": 4})["task_info"]
    assert info["status"] == "success", info
    assert {n for n in info["result"] if n.startswith("second_")} == {f"second_{i:03d}" for i in range(4)}


@pytest.mark.slow
def test_example_pyinstaller(cluster):
    cluster.add_node(slots=2)
    app_id = cluster.upload(_pack("multiple_actions_pyinstaller"))
    info = cluster.run_task(app_id, timeout=120)["task_info"]
    assert info["status"] == "success", info
    assert set(info["result"]) == {"first", "second", "third"}
