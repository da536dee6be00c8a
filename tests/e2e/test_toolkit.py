"""The operator's toolkit on real processes: logs, workspaces, rerun/recover, retries, event actions."""
from __future__ import annotations

import os
import subprocess
import tarfile
import threading
import time

from tests.e2e.harness import BIN, wait_for
from tests.fixtures import make_app

# Prints "tick 0" ... every `every` seconds, `lines` times.
TICKER = """
import json, os, sys, time
ws = sys.argv[1]
data = json.load(open(os.path.join(ws, "input.data")))
for i in range(int(data.get("lines", 8))):
    print("tick", i, flush=True)
    time.sleep(float(data.get("every", 0.2)))
"""

# Fails on its first run (leaving a marker whose path comes in input_data), succeeds after.
FLAKY = """
import json, os, sys, time
ws = sys.argv[1]
data = json.load(open(os.path.join(ws, "input.data")))
marker = data["marker"]
if not os.path.exists(marker):
    open(marker, "w").close()
    time.sleep(float(data.get("sleep", 0)))
    print("first run: failing", flush=True)
    sys.exit(4)
print("second run: ok", flush=True)
with open(os.path.join(ws, "output.data"), "w") as fp:
    json.dump({"data": {"recovered": True}}, fp)
"""


def workspace(node, task_id: str, name: str = "") -> str:
    return os.path.join(node.config["data_path"], "workspaces", task_id, name)


def table(stdout: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")] for line in stdout.splitlines()]


def test_log_followed_live_then_whole_then_errors(cluster, tmp_path):
    node = cluster.add_node(slots=1)
    app_id = cluster.upload(make_app(str(tmp_path), {"actions": [{"name": "tick", "main": "python3 ticker.py"}]},
                                     {"ticker.py": TICKER}))
    task_id = cluster.api.task_create(app_id, "t", {"lines": 8, "every": 0.2})["task_id"]
    stdout = os.path.join(workspace(node, task_id, "tick"), "stdout.data")

    def printed() -> bool:
        if not os.path.exists(stdout):
            return False
        with open(stdout, "rb") as fp:
            return b"tick 0" in fp.read()

    wait_for(printed, what="first tick")
    argv = [os.path.join(BIN, "litepipeline"), cluster.address, "task", "log", "-t", task_id, "-a", "tick", "-f"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[tuple[float, bytes]] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append((time.monotonic(), line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_for(lambda: lines, 10, what="first bytes of the followed log")
    # bytes arrived while the action was still printing
    assert cluster.api.task_info(task_id)["task_info"]["stage"] == "running"
    assert lines[0][1] == b"tick 0\n"
    assert proc.wait(15) == 0, proc.stderr.read()
    ended = time.monotonic()
    reader.join(5)
    assert b"".join(line for _, line in lines) == b"".join(b"tick %d\n" % i for i in range(8))
    assert len({round(t, 1) for t, _ in lines}) > 2          # several lines came one by one
    info = cluster.wait_task(task_id)["task_info"]
    assert info["status"] == "success"
    assert ended - lines[0][0] < 10

    whole = cluster.cli("task", "log", "-t", task_id, "-a", "tick", check=True)
    assert whole.stdout == "".join(f"tick {i}\n" for i in range(8))
    unknown = cluster.cli("task", "log", "-t", task_id, "-a", "nope")
    assert unknown.returncode == 1 and "ActionNotExists" in unknown.stdout
    missing = cluster.cli("task", "log", "-t", "0d50caed-760b-40a5-bcc7-dcdb46960675", "-a", "tick")
    assert missing.returncode == 1 and "TaskNotExists" in missing.stdout


def test_workspaces_across_nodes_download_delete_and_task_delete(cluster, tmp_path):
    nodes = [cluster.add_node(slots=1), cluster.add_node(slots=1)]
    config = {"actions": [{"name": "p0", "main": "python3 echo.py"}, {"name": "p1", "main": "python3 echo.py"},
                          {"name": "join", "condition": ["p0", "p1"], "main": "python3 echo.py"},
                          {"name": "tick", "main": "python3 ticker.py"}]}
    app = make_app(str(tmp_path), config, {"ticker.py": TICKER})
    app_id = cluster.upload(app)
    info = cluster.run_task(app_id, {"_p0": {"sleep": 0.5}, "_p1": {"sleep": 0.5}, "lines": 1, "every": 0})
    task_id = info["task_info"]["task_id"]
    result = info["task_info"]["result"]
    assert info["task_info"]["status"] == "success"
    assert result["p0"]["node_id"] != result["p1"]["node_id"]          # the task spans both nodes

    out = cluster.cli("task", "workspace", "-t", task_id, check=True)
    assert table(out.stdout)[1][1:] == [task_id, f"./{task_id}.tar.gz", "ok", ""]
    with tarfile.open(os.path.join(cluster.root, f"{task_id}.tar.gz"), "r:gz") as tar:
        names = set(tar.getnames())
        for action in ("p0", "p1", "join", "tick"):
            assert {f"{task_id}/{action}/stdout.data", f"{task_id}/{action}/input.data"} <= names, names
        assert tar.extractfile(f"{task_id}/p1/stdout.data").read() == b"running p1\n"
        assert tar.extractfile(f"{task_id}/tick/stdout.data").read() == b"tick 0\n"
    one = cluster.cli("task", "workspace", "-t", task_id, "-a", "p1", "-o", "one.tgz", check=True)
    assert "one.tgz" in one.stdout
    with tarfile.open(os.path.join(cluster.root, "one.tgz"), "r:gz") as tar:
        assert {n.split("/")[1] for n in tar.getnames()} == {"p1"}

    deleted = cluster.cli("task", "workspace-delete", "-t", task_id, check=True)
    assert table(deleted.stdout)[1][1] == "ok"
    for node in nodes:
        assert not os.path.exists(workspace(node, task_id))
    gone = cluster.cli("task", "log", "-t", task_id, "-a", "p0")
    assert gone.returncode == 1
    assert table(gone.stdout)[1][1:] == ["WorkspaceNotExists", f"workspace of action 'p0' of task {task_id} is gone"]
    again = cluster.cli("task", "workspace", "-t", task_id)
    assert again.returncode == 1 and "WorkspaceNotExists" in again.stdout
    assert not os.path.exists(os.path.join(cluster.root, f"{task_id}.tar.gz.part"))

    # refused while running; task delete (after a stop) removes the workspaces on the node
    long_id = cluster.api.task_create(app_id, "long", {"lines": 100, "every": 0.1, "_p0": {"sleep": 30}})["task_id"]
    wait_for(lambda: any(os.path.exists(workspace(n, long_id, "tick")) for n in nodes), what="tick to start")
    refused = cluster.cli("task", "workspace-delete", "-t", long_id)
    assert refused.returncode == 1 and "OperationFailed" in refused.stdout
    cluster.cli("task", "stop", "-t", long_id, "-g", "-9", check=True)
    assert cluster.wait_task(long_id)["task_info"]["status"] == "kill"
    assert any(os.path.exists(workspace(n, long_id)) for n in nodes)
    cluster.cli("task", "delete", "-t", long_id, check=True)
    for node in nodes:
        assert not os.path.exists(workspace(node, long_id))

    # a node that is gone: said so, by name
    info = cluster.run_task(app_id, {"lines": 1, "every": 0})["task_info"]
    victim = next(n for n in nodes if os.path.exists(workspace(n, info["task_id"], "p0")))
    victim_id = info["result"]["p0"]["node_id"]
    victim.kill()
    wait_for(lambda: victim_id not in cluster.node_ids(), what="node to be dropped")
    lost = cluster.cli("task", "workspace", "-t", info["task_id"])
    assert lost.returncode == 1 and "NodeNotExists" in lost.stdout and victim_id in lost.stdout
    log = cluster.cli("task", "log", "-t", info["task_id"], "-a", "p0")
    assert log.returncode == 1 and "NodeNotExists" in log.stdout and victim_id in log.stdout


def test_recover_in_place_and_rerun(cluster, tmp_path):
    cluster.add_node(slots=2)
    config = {"actions": [{"name": "a", "main": "python3 echo.py"}, {"name": "b", "main": "python3 flaky.py"},
                          {"name": "c", "condition": ["a", "b"], "main": "python3 echo.py"}]}
    app_id = cluster.upload(make_app(str(tmp_path), config, {"flaky.py": FLAKY}))
    marker = str(tmp_path / "b.marker")
    info = cluster.run_task(app_id, {"marker": marker, "sleep": 0.5})["task_info"]
    task_id = info["task_id"]
    assert (info["status"], info["result"]["a"]["status"], info["result"]["b"]["status"]) == \
        ("fail", "success", "fail")
    rerun_refused = cluster.cli("task", "recover", "-t", "0d50caed-760b-40a5-bcc7-dcdb46960675")
    assert rerun_refused.returncode == 1 and "TaskNotExists" in rerun_refused.stdout

    out = cluster.cli("task", "recover", "-t", task_id, check=True)
    assert table(out.stdout)[1][1:] == [task_id, "ok", ""]
    info = cluster.wait_task(task_id)["task_info"]
    assert (info["status"], info["message"], info["end_at"] is not None) == ("success", None, True)
    attempts = {n: r["attempt"] for n, r in info["result"].items()}
    assert attempts == {"a": 1, "b": 2, "c": 1}                        # a was not run again
    assert info["result"]["b"]["result"]["data"] == {"recovered": True}
    assert [(x["name"], x["attempt"], x["status"]) for x in info["attempts"]] == \
        [("a", 1, "success"), ("b", 1, "fail"), ("b", 2, "success"), ("c", 1, "success")]
    refused = cluster.cli("task", "recover", "-t", task_id)
    assert refused.returncode == 1 and "OperationFailed" in refused.stdout

    out = cluster.cli("task", "rerun", "-t", task_id, check=True)
    new_id = table(out.stdout)[1][1]
    assert new_id != task_id
    again = cluster.wait_task(new_id)["task_info"]
    assert again["status"] == "success" and again["input_data"] == {"marker": marker, "sleep": 0.5}
    assert again["application_id"] == app_id
    running = cluster.api.task_create(app_id, "slow", {"marker": marker, "_a": {"sleep": 30}})["task_id"]
    refused = cluster.cli("task", "rerun", "-t", running)
    assert refused.returncode == 1 and "OperationFailed" in refused.stdout
    cluster.api.task_stop(running, -9)


def test_retry_succeeds_on_second_attempt_and_stop_cancels_pending_retry(cluster, tmp_path):
    cluster.add_node(slots=1)
    cluster.add_node(slots=1)
    config = {"actions": [{"name": "r", "main": "python3 flaky.py", "retries": 2},
                          {"name": "s", "main": "python3 echo.py", "retries": 3, "retry_delay": 1.5}]}
    app_id = cluster.upload(make_app(str(tmp_path), config, {"flaky.py": FLAKY}))
    info = cluster.run_task(app_id, {"marker": str(tmp_path / "r.marker")})["task_info"]
    assert info["status"] == "success" and info["result"]["r"]["attempt"] == 2
    history = [(a["name"], a["attempt"], a["status"]) for a in info["attempts"] if a["name"] == "r"]
    assert history == [("r", 1, "fail"), ("r", 2, "success")]
    rows = table(cluster.cli("task", "attempts", "-t", info["task_id"], check=True).stdout)
    assert rows[0] == ["#", "name", "attempt", "node_id", "start_at", "end_at", "duration", "status",
                       "returncode", "message"]
    r_rows = [row for row in rows[1:] if row[1] == "r"]
    assert [(row[2], row[7], row[8]) for row in r_rows] == [("1", "fail", "4"), ("2", "success", "0")]
    assert r_rows[0][9].startswith("action exited with code 4") and r_rows[0][6].endswith("s")

    # a failing action waiting for its retry: stop ends the task, no further attempt
    task_id = cluster.api.task_create(app_id, "t", {"marker": str(tmp_path / "r2.marker"),
                                                    "_s": {"exit": 2}})["task_id"]
    wait_for(lambda: [a for a in cluster.task(task_id)["task_info"]["attempts"]
                      if a["name"] == "s" and a["status"] == "fail"], what="first failure of s")
    cluster.cli("task", "stop", "-t", task_id, check=True)
    final = cluster.wait_task(task_id)["task_info"]
    assert final["status"] == "kill"
    time.sleep(2.0)   # past the retry delay
    tries = [a for a in cluster.task(task_id)["task_info"]["attempts"] if a["name"] == "s"]
    assert len(tries) == 1


def test_event_actions_on_fail_and_on_success(cluster, tmp_path):
    cluster.add_node(slots=2)
    config = {"actions": [{"name": "ok", "main": "python3 echo.py"}, {"name": "bad", "main": "python3 echo.py"},
                          {"name": "alarm", "main": "python3 echo.py"},
                          {"name": "done", "main": "python3 echo.py", "input_data": {"_done": {"exit": 1}}}],
              "on_fail": "alarm", "on_success": "done"}
    app_id = cluster.upload(make_app(str(tmp_path), config))

    def with_event(task_id: str, name: str):
        info = cluster.task(task_id)["task_info"]
        return info if name in info["result"] else None

    task_id = cluster.api.task_create(app_id, "failing", {"_bad": {"exit": 3, "sleep": 0.5}})["task_id"]
    cluster.wait_task(task_id)
    info = wait_for(lambda: with_event(task_id, "alarm"), what="on_fail to run")
    assert info["status"] == "fail" and "done" not in info["result"]
    alarm = info["result"]["alarm"]
    assert alarm["status"] == "success"
    seen = alarm["result"]["data"]["input"]
    assert (seen["task_id"], seen["task_status"]) == (task_id, "fail")
    assert seen["task_message"] == "action 'bad' failed: action exited with code 3; last output:\nrunning bad"
    assert set(seen["results"]) == {"ok"} and seen["results"]["ok"]["name"] == "ok"
    assert seen["_bad"] == {"exit": 3, "sleep": 0.5}      # the task's own input_data (SPEC §13a)

    task_id = cluster.api.task_create(app_id, "fine", {})["task_id"]
    cluster.wait_task(task_id)
    info = wait_for(lambda: with_event(task_id, "done"), what="on_success to run")
    assert info["status"] == "success" and "alarm" not in info["result"]
    assert info["result"]["done"]["status"] == "fail"                  # its failure changes nothing
    assert info["result"]["done"]["result"]["data"]["input"]["task_status"] == "success"
    assert cluster.task(task_id)["task_info"]["status"] == "success"


def test_event_actions_block_of_0_1_5_gets_the_task_input(cluster, tmp_path):
    cluster.add_node(slots=1)
    config = {"actions": [{"name": "work", "condition": [], "main": "python3 echo.py"}],
              "event_actions": {"success": {"name": "success", "condition": [], "main": "python3 echo.py"},
                                "fail": {"name": "fail", "condition": [], "main": "python3 echo.py"}}}
    app_id = cluster.upload(make_app(str(tmp_path), config))
    task_id = cluster.api.task_create(app_id, "notify", {"notify": "ops@example.org"})["task_id"]
    cluster.wait_task(task_id)
    info = wait_for(lambda: (lambda i: i if "success" in i["result"] else None)(cluster.task(task_id)["task_info"]),
                    what="the success event action to run")
    assert info["status"] == "success" and "fail" not in info["result"]
    seen = info["result"]["success"]["result"]["data"]["input"]
    assert seen["notify"] == "ops@example.org"
    assert (seen["task_id"], seen["task_status"]) == (task_id, "success")
    assert seen["results"]["work"]["name"] == "work"


def test_manager_authenticates_to_nodes_with_the_token(tmp_path):
    from tests.e2e.harness import LiteCluster

    with LiteCluster(str(tmp_path), token="s3cret") as secured:
        secured.start_manager()
        secured.add_node()
        app_id = secured.upload(make_app(str(tmp_path), {"actions": [{"name": "first", "main": "python3 echo.py"}]}))
        task_id = secured.run_task(app_id)["task_info"]["task_id"]
        log = secured.cli("task", "log", "-t", task_id, "-a", "first", token="s3cret", check=True)
        assert log.stdout == "running first\n"
        secured.cli("task", "workspace", "-t", task_id, token="s3cret", check=True)
        assert os.path.getsize(os.path.join(str(tmp_path), f"{task_id}.tar.gz")) > 0
        refused = secured.cli("task", "log", "-t", task_id, "-a", "first")
        assert refused.returncode == 1 and "Unauthorized" in refused.stdout
