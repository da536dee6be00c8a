"""The manager's application and task API, driven through the real CLI and HTTP."""
from __future__ import annotations

import json
import os
import re
import sqlite3
import time

import requests

from tests.e2e.harness import wait_for

from tests.fixtures import dag, make_app


def table(stdout: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")] for line in stdout.rstrip("\n").split("\n")]


def db_rows(cluster, sql: str) -> list:
    path = os.path.join(cluster.manager.config["data_path"], "litepipeline.db")
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def app_files(cluster) -> list:
    root = os.path.join(cluster.manager.config["data_path"], "applications")
    found = []
    for base, _dirs, files in os.walk(root):
        found += [os.path.join(base, f) for f in files]
    tmp = os.path.join(cluster.manager.config["data_path"], "tmp")
    found += [os.path.join(tmp, f) for f in os.listdir(tmp)]
    return found


def test_seed_flow_through_cli(cluster, tmp_path):
    tarball = make_app(str(tmp_path))
    out = cluster.cli("app", "create", "-f", tarball, "-n", "multiple actions demo", "-d", "demo", check=True)
    rows = table(out.stdout)
    assert rows[0] == ["#", "app_id", "result", "message"]
    assert rows[1][2] == "ok"
    app_id = rows[1][1]
    assert re.fullmatch(r"[0-9a-f-]{36}", app_id)
    # exact shape of the seed's first table: trailing empty message, no trailing space
    assert out.stdout.splitlines()[1] == f"1 | {app_id} | ok     |"

    listing = cluster.cli("app", "list", check=True).stdout.splitlines()
    assert listing[0].split(" | ") == ["#", "application_id".ljust(36), "name".ljust(21), "create_at".ljust(26),
                                       "update_at"]
    assert listing[1].startswith(f"1 | {app_id} | multiple actions demo | ")

    info = cluster.cli_json("app", "info", "-a", app_id)
    assert info["result"] == "ok"
    assert info["app_info"]["sha1"] == _sha1(tarball)
    assert info["app_info"]["description"] == "demo"

    created = cluster.cli("task", "create", "-a", app_id, "-n", "task demo", "-i", '{"k": 1}', check=True)
    task_id = table(created.stdout)[1][1]
    tasks = table(cluster.cli("task", "list", check=True).stdout)
    assert tasks[0] == ["#", "task_id", "application_id", "task_name", "create_at", "start_at", "end_at", "stage",
                        "status"]
    assert tasks[1][1:4] == [task_id, app_id, "task demo"]
    assert tasks[1][5:] == ["None", "None", "pending", "None"]
    raw = cluster.cli_json("task", "info", "-t", task_id)
    assert raw["task_info"]["input_data"] == {"k": 1}
    assert raw["task_info"]["stage"] == "pending" and raw["task_info"]["result"] == {}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", raw["task_info"]["create_at"])
    # raw output is the server's JSON, indent 4, keys sorted
    text = cluster.cli("task", "info", "-t", task_id, raw=True).stdout
    assert text.strip() == json.dumps(json.loads(text), indent=4, sort_keys=True)


def _sha1(path: str) -> str:
    import hashlib

    with open(path, "rb") as fp:
        return hashlib.sha1(fp.read()).hexdigest()


def test_app_update_download_delete(cluster, tmp_path):
    first = make_app(str(tmp_path), name="one.tar.gz")
    app_id = cluster.upload(first)
    second = make_app(str(tmp_path), dag(("only", [])), name="two.tar.gz")
    out = cluster.cli("app", "update", "-a", app_id, "-f", second, "-n", "renamed", check=True)
    assert table(out.stdout)[1][1:3] == [app_id, "ok"]
    info = cluster.api.app_info(app_id)["app_info"]
    assert info["name"] == "renamed" and info["sha1"] == _sha1(second)
    assert info["update_at"] > info["create_at"]
    # every upload is a version kept in the application's history (app_history delete removes one)
    assert sorted(os.path.basename(p) for p in app_files(cluster)) == sorted(
        [f"{_sha1(first)}.tar.gz", f"{_sha1(second)}.tar.gz"])

    cluster.cli("app", "download", "-a", app_id, check=True)
    with open(os.path.join(cluster.root, f"{app_id}.tar.gz"), "rb") as fp, open(second, "rb") as orig:
        assert fp.read() == orig.read()

    out = cluster.cli("app", "delete", "-a", app_id, check=True)
    assert table(out.stdout)[1][1] == "ok"
    assert app_files(cluster) == []
    gone = cluster.cli("app", "info", "-a", app_id)
    assert gone.returncode == 1
    assert table(gone.stdout)[1][1:] == ["AppNotExists", f"application {app_id} does not exist"]


def test_app_delete_refused_with_unfinished_task(cluster, tmp_path):
    app_id = cluster.upload(make_app(str(tmp_path)))
    task_id = cluster.api.task_create(app_id, "t", {})["task_id"]
    reply = cluster.api.app_delete(app_id)
    assert reply.http_status == 409
    assert reply["result"] == "OperationFailed"
    assert "1 unfinished task" in reply["message"]
    assert cluster.api.app_info(app_id)["result"] == "ok"
    # a pending task may be deleted; then the app may be too
    assert cluster.api.task_delete(task_id)["result"] == "ok"
    assert cluster.api.task_info(task_id).http_status == 404
    assert cluster.api.app_delete(app_id)["result"] == "ok"


def test_list_paging_and_filters(cluster, tmp_path):
    app_id = cluster.upload(make_app(str(tmp_path)))
    ids = [cluster.api.task_create(app_id, f"t{i}", {})["task_id"] for i in range(5)]
    page = cluster.api.task_list(offset=1, limit=2)
    assert [t["task_id"] for t in page["tasks"]] == [ids[3], ids[2]]
    assert page["total"] == 5
    assert len(cluster.api.task_list(stage="pending")["tasks"]) == 5
    assert cluster.api.task_list(stage="finished")["tasks"] == []
    assert len(cluster.api.task_list(app_id=app_id)["tasks"]) == 5
    assert cluster.api.task_list(app_id="nope")["tasks"] == []


def test_bad_requests_get_envelopes(cluster, tmp_path):
    base = f"http://{cluster.address}"
    cases = [
        ("get", "/task/list?offset=-1", 400, "InvalidParameters", "parameter 'offset' must be >= 0, got -1"),
        ("get", "/task/list?limit=abc", 400, "InvalidParameters", "parameter 'limit' must be an integer, got 'abc'"),
        ("get", "/task/list?stage=done", 400, "InvalidParameters",
         "parameter 'stage' must be one of pending, running, stopping, finished, got 'done'"),
        ("get", "/task/info", 400, "InvalidParameters", "missing parameter 'task_id'"),
        ("get", "/task/info?task_id=nope", 404, "TaskNotExists", "task nope does not exist"),
        ("get", "/app/info?app_id=nope", 404, "AppNotExists", "application nope does not exist"),
        ("delete", "/task/delete?task_id=nope", 404, "TaskNotExists", "task nope does not exist"),
        ("get", "/app/download?app_id=nope", 404, "AppNotExists", "application nope does not exist"),
    ]
    for method, path, status, name, message in cases:
        response = getattr(requests, method)(base + path, timeout=10)
        assert (response.status_code, response.json()) == (status, {"result": name, "message": message}), path

    def post(body, path="/task/create", method="post"):
        return getattr(requests, method)(base + path, data=body, timeout=10)

    r = post("{not json")
    assert r.status_code == 400 and r.json()["message"].startswith("request body is not valid JSON")
    r = post(json.dumps([1, 2]))
    assert r.json() == {"result": "InvalidParameters", "message": "request body must be a JSON object"}
    r = post(json.dumps({"app_id": "x", "task_name": "t", "input_data": [1]}))
    assert r.json() == {"result": "InvalidParameters", "message": "field 'input_data' must be a JSON object, got list"}
    r = post(json.dumps({"app_id": "x", "task_name": "t", "input_data": "s"}))
    assert r.json()["message"] == "field 'input_data' must be a JSON object, got str"
    r = post(json.dumps({"task_name": "t"}))
    assert r.json() == {"result": "InvalidParameters", "message": "missing field 'app_id'"}
    r = post(json.dumps({"app_id": "nope", "task_name": "t"}))
    assert (r.status_code, r.json()["result"]) == (404, "AppNotExists")
    r = post(json.dumps({"task_id": "nope", "signal": -3}), "/task/stop", "put")
    assert r.json() == {"result": "InvalidParameters", "message": "field 'signal' must be -9 or -15, got -3"}
    r = requests.post(base + "/app/create", files={"name": (None, "x")}, timeout=10)
    assert r.json() == {"result": "InvalidParameters", "message": "missing file field 'up_file'"}
    r = requests.post(base + "/app/create", data=b"plain", timeout=10)
    assert r.status_code == 400 and "multipart/form-data" in r.json()["message"]
    r = requests.post(base + "/app/create", files={"up_file": ("a.tar.gz", b"x" * 10)}, timeout=10)
    assert r.json() == {"result": "InvalidParameters", "message": "missing field 'name'"}
    assert db_rows(cluster, "select count(*) from applications") == [(0,)]
    assert db_rows(cluster, "select count(*) from tasks") == [(0,)]
    # a refused upload's temp file is removed as the request ends, just after the answer
    wait_for(lambda: app_files(cluster) == [], 5, what="no application files")
    # still serving
    assert requests.get(base + "/", timeout=10).json() == {"message": "LitePipeline manager service", "role": "single", "leader": None}


def test_cli_errors(cluster, tmp_path):
    out = cluster.cli("task", "info", "-t", "nope")
    assert out.returncode == 1
    assert out.stdout.splitlines() == ["# | result        | message", "1 | TaskNotExists | task nope does not exist"]
    out = cluster.cli("task", "create", "-a", "x", "-n", "t", "-i", "[1]")
    assert out.returncode == 2 and "JSON object" in out.stderr
    out = cluster.cli("app", "create", "-f", str(tmp_path / "missing.tar.gz"), "-n", "x")
    assert out.returncode != 0 and "missing.tar.gz" in out.stderr and "Traceback" not in out.stderr
    down = cluster.cli("cluster", "info")
    assert down.returncode == 0
    cluster.manager.stop()
    gone = cluster.cli("app", "list")
    assert gone.returncode == 1
    assert gone.stderr.strip().count("\n") == 0 and "cannot reach manager" in gone.stderr


def test_cluster_info_counts_the_schedulers_store_writes(cluster, tmp_path):
    before = cluster.api.cluster_info()["scheduler"]
    app_id = cluster.upload(make_app(str(tmp_path)))
    cluster.api.task_create(app_id, "t", {})
    after = cluster.api.cluster_info()["scheduler"]
    assert after["commits"] == before["commits"] + 1          # the new task, in one transaction
    assert after["rounds"] >= before["rounds"] + 1 and after["commit_ms"] >= before["commit_ms"]
    assert after["unfinished_tasks"] == 1


# -- waiting for a task without polling (GET /task/info?wait=, task run) -------------------------

def test_task_info_wait_answers_when_the_task_finishes(cluster, tmp_path):
    cluster.add_node()
    app_id = cluster.upload(make_app(str(tmp_path), dag(("a", []), ("b", ["a"]))))
    task_id = cluster.api.task_create(app_id, "waited", {"_a": {"sleep": 0.5}})["task_id"]
    started = time.monotonic()
    reply = cluster.api.task_info(task_id, wait=60)
    waited = time.monotonic() - started
    assert reply["task_info"]["stage"] == "finished" and reply["task_info"]["status"] == "success"
    assert set(reply["task_info"]["result"]) == {"a", "b"}
    assert 0.4 < waited < 30
    # a finished task is answered at once, whatever the wait
    started = time.monotonic()
    assert cluster.api.task_info(task_id, wait=60)["task_info"]["stage"] == "finished"
    assert time.monotonic() - started < 5


def test_task_info_wait_gives_up_after_wait_seconds(cluster, tmp_path):
    cluster.add_node()
    app_id = cluster.upload(make_app(str(tmp_path), dag(("a", []))))
    task_id = cluster.api.task_create(app_id, "slow", {"_a": {"sleep": 30}})["task_id"]
    started = time.monotonic()
    reply = cluster.api.task_info(task_id, wait=0.5)
    assert time.monotonic() - started >= 0.5
    assert reply.ok and reply["task_info"]["stage"] in ("pending", "running")
    cluster.api.task_stop(task_id, -9)
    assert cluster.api.task_wait(task_id, 30)["task_info"]["status"] == "kill"


def test_task_create_with_wait_answers_with_the_finished_task(cluster, tmp_path):
    cluster.add_node()
    app_id = cluster.upload(make_app(str(tmp_path), dag(("a", []), ("b", ["a"]))))
    reply = cluster.api.task_create(app_id, "one trip", {"_a": {"sleep": 0.3}}, wait=60)
    assert reply.ok and reply["task_info"]["task_id"] == reply["task_id"]
    assert reply["task_info"]["stage"] == "finished" and set(reply["task_info"]["result"]) == {"a", "b"}
    slow = cluster.api.task_create(app_id, "slow", {"_a": {"sleep": 30}}, wait=0.3)
    assert slow.ok and slow["task_info"]["stage"] in ("pending", "running")
    cluster.api.task_stop(slow["task_id"], -9)
    base = f"http://127.0.0.1:{cluster.manager.config['http_port']}"
    for bad in ("5", -1, 601, True, [1]):
        answer = requests.post(f"{base}/task/create", json={"app_id": app_id, "task_name": "x", "wait": bad},
                               timeout=10)
        assert answer.status_code == 400 and "'wait'" in answer.json()["message"], bad
    assert cluster.api.task_list(app_id=app_id)["total"] == 2     # the refused ones created nothing


def test_task_info_wait_is_validated(cluster):
    base = f"http://127.0.0.1:{cluster.manager.config['http_port']}"
    for bad in ("abc", "-1", "601", "nan", "inf"):
        answer = requests.get(f"{base}/task/info", params={"task_id": "x", "wait": bad}, timeout=10)
        assert answer.status_code == 400, bad
        assert answer.json()["result"] == "InvalidParameters" and "'wait'" in answer.json()["message"]
    answer = requests.get(f"{base}/task/info", params={"task_id": "nope", "wait": "5"}, timeout=10)
    assert answer.status_code == 404 and answer.json()["result"] == "TaskNotExists"


def test_cli_task_run_waits_and_exits_with_the_task_status(cluster, tmp_path):
    cluster.add_node()
    app_id = cluster.upload(make_app(str(tmp_path), dag(("a", []))))
    ok = cluster.cli("task", "run", "-a", app_id, "-n", "good", "-i", '{"_a": {"sleep": 0.3}}')
    assert ok.returncode == 0, ok.stderr
    rows = table(ok.stdout)
    assert rows[0][:2] == ["#", "task_id"] and rows[1][rows[0].index("status")] == "success"
    bad = cluster.cli("task", "run", "-a", app_id, "-n", "bad", "-i", '{"_a": {"exit": 3}}')
    assert bad.returncode == 1
    assert table(bad.stdout)[1][rows[0].index("status")] == "fail"
    # --wait bounds the wait: the task is shown still running, and that is not a success
    slow = cluster.cli("task", "run", "-a", app_id, "-n", "slow", "-i", '{"_a": {"sleep": 30}}', "--wait", "0.5")
    assert slow.returncode == 1
    task_id, stage = table(slow.stdout)[1][1], table(slow.stdout)[1][rows[0].index("stage")]
    assert stage in ("pending", "running")
    cluster.api.task_stop(task_id, -9)
    shown = cluster.cli("task", "info", "-t", task_id, "--wait", "30")
    assert shown.returncode == 0 and table(shown.stdout)[1][rows[0].index("status")] == "kill"
    assert cluster.cli("task", "run", "-a", "no-such-app", "-n", "x").returncode == 1
