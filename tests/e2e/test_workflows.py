"""Workflows and works end to end: real manager and node processes, driven by the CLI and HTTP.

Every entry's application appends its label to a log file, so the tests see exactly which
entries ran and how often; entries that must wait are held by a gate file the test creates.
"""
from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from typing import Optional

import pytest
import requests

from tests.e2e.harness import LiteCluster, wait_for
from tests.fixtures import make_app

STEP = textwrap.dedent('''
    import json, os, sys, time
    label, ws = sys.argv[1], sys.argv[2]
    data = json.load(open(os.path.join(ws, "input.data")))
    gate = (data.get("gates") or {}).get(label)
    if gate:
        deadline = time.time() + 120
        while not os.path.exists(gate) and time.time() < deadline:
            time.sleep(0.05)
    with open(data["log"], "a") as fp:
        fp.write(label + "\\n")
    upstream = {k: v for k, v in data.items() if k not in ("task_id", "workspace", "log", "gates", "x", "fail_if")}
    value = data.get("x", 0) if not upstream else 0
    for result in upstream.values():
        value += result["value"] if "value" in result else result["main"]["value"]
    value = value * 10 + len(label)
    with open(os.path.join(ws, "output.data"), "w") as fp:
        json.dump({"data": {"label": label, "value": value}}, fp)
    fail_if = (data.get("fail_if") or {}).get(label)
    sys.exit(1 if fail_if and os.path.exists(fail_if) else 0)
''')

EVENT = textwrap.dedent('''
    import json, os, sys
    ws = sys.argv[1]
    data = json.load(open(os.path.join(ws, "input.data")))
    with open(data["log"] + ".event.json", "w") as fp:
        json.dump(data, fp)
    with open(data["log"], "a") as fp:
        fp.write("event:" + data["work_status"] + "\\n")
''')


def app(cluster: LiteCluster, tmp: str, label: str, output_action: bool = False) -> str:
    conf = {"actions": [{"name": "main", "main": f"python3 step.py {label}"}]}
    if output_action:
        conf["output_action"] = "main"
    path = make_app(tmp, conf, files={"step.py": STEP}, name=f"{label}.tar.gz")
    return cluster.upload(path, label)


@pytest.fixture
def env(tmp_path):
    with LiteCluster(str(tmp_path)) as cluster:
        cluster.start_manager()
        cluster.add_node(slots=4)
        apps = {label: app(cluster, str(tmp_path), label, output_action=(label == "a")) for label in "abcd"}
        event = make_app(str(tmp_path), {"actions": [{"name": "notify", "main": "python3 event.py"}]},
                         files={"event.py": EVENT}, name="event.tar.gz")
        apps["event"] = cluster.upload(event, "event")
        log = str(tmp_path / "entries.log")
        yield cluster, apps, log, tmp_path


def diamond(apps: dict) -> dict:
    return {"applications": [
        {"name": "a", "app_id": apps["a"], "condition": []},
        {"name": "b", "app_id": apps["b"], "condition": ["a"]},
        {"name": "c", "app_id": apps["c"], "condition": ["a"]},
        {"name": "d", "app_id": apps["d"], "condition": ["b", "c"]}],
        "event_applications": {"success": {"app_id": apps["event"]}, "fail": {"app_id": apps["event"]}}}


def create_workflow(cluster: LiteCluster, tmp, config: dict, *extra: str) -> str:
    path = tmp / "workflow.json"
    path.write_text(json.dumps(config))
    reply = cluster.cli_json("workflow", "create", "-n", "etl", "-c", str(path), *extra)
    assert reply["result"] == "ok", reply
    return reply["workflow_id"]


def create_work(cluster: LiteCluster, workflow_id: str, input_data: dict) -> str:
    reply = cluster.cli_json("work", "create", "-w", workflow_id, "-n", "nightly", "-i", json.dumps(input_data))
    assert reply["result"] == "ok", reply
    return reply["work_id"]


def work_info(cluster: LiteCluster, work_id: str) -> dict:
    return cluster.api.call("GET", "/work/info", {"work_id": work_id})["work_info"]


def wait_work(cluster: LiteCluster, work_id: str, timeout: float = 90) -> dict:
    def finished() -> Optional[dict]:
        info = work_info(cluster, work_id)
        return info if info["stage"] == "finished" else None

    return wait_for(finished, timeout, 0.1, f"work {work_id} to finish")


def wait_entry(cluster: LiteCluster, work_id: str, entry: str, stage: str) -> dict:
    def reached() -> Optional[dict]:
        info = work_info(cluster, work_id)
        return info if info["result"][entry]["stage"] == stage else None

    return wait_for(reached, 60, 0.05, f"entry {entry} of {work_id} to be {stage}")


def lines(log: str) -> list:
    if not os.path.exists(log):
        return []
    with open(log) as fp:
        return fp.read().split()


def tasks_of(cluster: LiteCluster, work_id: str) -> dict:
    reply = cluster.cli_json("task", "list", "--work", work_id)
    assert reply["total"] == len(reply["tasks"])
    return {t["task_name"]: t for t in reply["tasks"]}


def test_diamond_passes_results_pins_versions_and_succeeds(env):
    cluster, apps, log, tmp = env
    workflow_id = create_workflow(cluster, tmp, diamond(apps))
    gate = str(tmp / "gate-a")
    work_id = create_work(cluster, workflow_id, {"x": 1, "log": log, "gates": {"a": gate}})
    info = work_info(cluster, work_id)
    assert info["stage"] == "running" and info["result"]["b"]["stage"] == "pending"
    old_b = cluster.api.app_info(apps["b"])["app_info"]["sha1"]
    assert info["app_sha1"][apps["b"]] == old_b
    # a new version of b uploaded while the work runs: the work keeps the version it pinned
    new_b = make_app(str(tmp), {"actions": [{"name": "main", "main": "python3 step.py B2"}]},
                     files={"step.py": STEP}, name="b2.tar.gz")
    assert cluster.api.app_update(apps["b"], new_b)["result"] == "ok"
    assert cluster.api.app_info(apps["b"])["app_info"]["sha1"] != old_b
    open(gate, "w").close()
    info = wait_work(cluster, work_id)
    assert (info["stage"], info["status"]) == ("finished", "success"), info
    # a: 1*10+1 = 11 (its output_action's data); b: 11*10+1; c: 11*10+1; d: (111+111)*10+1
    results = info["result"]
    assert results["a"]["result"] == {"label": "a", "value": 11}
    assert results["b"]["result"] == {"main": {"label": "b", "value": 111}}
    assert results["d"]["result"] == {"main": {"label": "d", "value": 2221}}
    wait_for(lambda: "event:success" in lines(log), what="the success event application")
    assert sorted(lines(log)) == ["a", "b", "c", "d", "event:success"]
    tasks = tasks_of(cluster, work_id)
    assert set(tasks) == {"nightly/a", "nightly/b", "nightly/c", "nightly/d", "nightly/event_success"}
    d_info = cluster.api.task_info(results["d"]["task_id"])["task_info"]
    assert d_info["work_id"] == work_id
    assert d_info["input_data"]["b"] == {"main": {"label": "b", "value": 111}}
    assert d_info["input_data"]["c"] == {"main": {"label": "c", "value": 111}} and d_info["input_data"]["x"] == 1
    assert cluster.api.task_info(results["b"]["task_id"])["task_info"]["app_sha1"] == old_b
    with open(log + ".event.json") as fp:
        event = json.load(fp)
    assert event["work_id"] == work_id and event["work_status"] == "success" and event["x"] == 1
    assert event["results"]["d"] == {"main": {"label": "d", "value": 2221}}
    # the CLI's tables
    out = cluster.cli("work", "info", "-w", work_id, check=True).stdout
    assert [c.strip() for c in out.splitlines()[0].split(" | ")[1:]] == ["work_id", "workflow_id", "name", "create_at", "start_at",
                                                    "end_at", "stage", "status"]
    assert work_id in out and "success" in out
    listed = cluster.cli_json("work", "list", "-W", workflow_id, "-S", "success")
    assert [w["work_id"] for w in listed["works"]] == [work_id]


def test_failure_lets_siblings_finish_starts_nothing_then_recover_keeps_successes(env):
    cluster, apps, log, tmp = env
    workflow_id = create_workflow(cluster, tmp, diamond(apps))
    gate_b, fail_c = str(tmp / "gate-b"), str(tmp / "fail-c")
    open(fail_c, "w").close()
    work_id = create_work(cluster, workflow_id, {"x": 1, "log": log, "gates": {"b": gate_b},
                                                 "fail_if": {"c": fail_c}})
    wait_entry(cluster, work_id, "c", "finished")
    info = work_info(cluster, work_id)
    assert info["stage"] == "running" and info["result"]["b"]["stage"] == "running"   # b still finishes
    open(gate_b, "w").close()
    info = wait_work(cluster, work_id)
    assert info["status"] == "fail"
    assert info["result"]["b"]["status"] == "success" and info["result"]["c"]["status"] == "fail"
    assert info["result"]["d"]["stage"] == "pending" and info["result"]["d"]["task_id"] is None
    wait_for(lambda: "event:fail" in lines(log), what="the fail event application")
    time.sleep(1)   # anything wrongly started after the failure would have run by now
    assert sorted(lines(log)) == ["a", "b", "c", "event:fail"]
    assert set(tasks_of(cluster, work_id)) == {"nightly/a", "nightly/b", "nightly/c", "nightly/event_fail"}
    # recover: c runs again (it succeeds now), then d; a and b keep their results
    os.remove(fail_c)
    kept = {e: info["result"][e]["task_id"] for e in ("a", "b")}
    reply = cluster.cli_json("work", "recover", "-w", work_id)
    assert reply["result"] == "ok", reply
    info = wait_work(cluster, work_id)
    assert info["status"] == "success", info
    assert {e: info["result"][e]["task_id"] for e in ("a", "b")} == kept
    wait_for(lambda: "event:success" in lines(log), what="the success event application")
    assert sorted(lines(log)) == ["a", "b", "c", "c", "d", "event:fail", "event:success"]


def test_stop_kills_unfinished_tasks_then_recover_and_rerun(env):
    cluster, apps, log, tmp = env
    workflow_id = create_workflow(cluster, tmp, diamond(apps))
    gate_b = str(tmp / "gate-b")
    work_id = create_work(cluster, workflow_id, {"x": 1, "log": log, "gates": {"b": gate_b}})
    wait_entry(cluster, work_id, "c", "finished")
    b_task = work_info(cluster, work_id)["result"]["b"]["task_id"]
    cluster.wait_task(b_task, stage="running")
    reply = cluster.cli_json("work", "stop", "-w", work_id, "-g", "-9")
    assert reply["result"] == "ok", reply
    info = wait_work(cluster, work_id)
    assert info["status"] == "kill" and info["result"]["b"]["status"] == "kill"
    assert info["result"]["d"]["task_id"] is None
    assert cluster.api.task_info(b_task)["task_info"]["status"] == "kill"
    assert cluster.cli_json("work", "stop", "-w", work_id)["result"] == "TaskAlreadyFinished"
    time.sleep(1)
    assert sorted(lines(log)) == ["a", "c"]   # b was killed at its gate; no event for a kill
    # recover: b runs again; a and c are kept
    open(gate_b, "w").close()
    assert cluster.cli_json("work", "recover", "-w", work_id)["result"] == "ok"
    assert wait_work(cluster, work_id)["status"] == "success"
    wait_for(lambda: "event:success" in lines(log), what="the success event application")
    assert sorted(lines(log)) == ["a", "b", "c", "d", "event:success"]
    # rerun: a new work of the same workflow and input
    reply = cluster.cli_json("work", "rerun", "-w", work_id)
    assert reply["result"] == "ok" and reply["work_id"] != work_id
    rerun = wait_work(cluster, reply["work_id"])
    assert rerun["status"] == "success" and rerun["input_data"] == info["input_data"]
    assert rerun["workflow_id"] == workflow_id and rerun["name"] == "nightly"
    assert len(tasks_of(cluster, reply["work_id"])) == 5
    listed = cluster.cli_json("work", "list", "-W", workflow_id)
    assert listed["total"] == 2 and {w["work_id"] for w in listed["works"]} == {work_id, reply["work_id"]}
    # finished works can be deleted; their workflow then too
    assert cluster.cli_json("work", "delete", "-w", work_id)["result"] == "ok"
    assert cluster.cli_json("work", "info", "-w", work_id)["result"] == "WorkNotExists"
    assert cluster.cli_json("workflow", "delete", "-w", workflow_id)["result"] == "ok"
    assert cluster.cli_json("workflow", "info", "-w", workflow_id)["result"] == "WorkflowNotExists"


def test_every_validation_error_is_refused_and_nothing_is_stored(env):
    cluster, apps, _, tmp = env
    a, b = apps["a"], apps["b"]
    bad = [
        ({"applications": []}, "'applications' is empty"),
        ({"applications": [{"name": "x", "app_id": a}], "other": 1}, "unknown key(s) 'other'"),
        ({"applications": [{"name": "x", "app_id": a, "conditions": []}]}, "unknown key(s) 'conditions'"),
        ({"applications": [{"name": "x", "app_id": a}, {"name": "x", "app_id": b}]},
         "duplicate application name 'x'"),
        ({"applications": [{"name": "x", "app_id": a, "condition": ["y"]}]},
         "'x' condition names unknown application entry 'y'"),
        ({"applications": [{"name": "x", "app_id": a, "condition": ["z"]}, {"name": "y", "app_id": b,
                                                                              "condition": ["x"]},
                           {"name": "z", "app_id": b, "condition": ["y"]}]},
         "applications form a cycle: x -> z -> y -> x"),
        ({"applications": [{"name": "x", "app_id": "0d50caed-760b-40a5-bcc7-dcdb46960675"}]},
         "application 0d50caed-760b-40a5-bcc7-dcdb46960675 does not exist"),
        ({"applications": [{"name": "x", "app_id": a}], "event_applications": {"fail": {"app_id": "nope"}}},
         "application nope does not exist"),
        ({"applications": [{"name": "x", "app_id": a}], "event_applications": {"always": {"app_id": a}}},
         "unknown key(s) 'always'"),
        ("not an object", "configuration must be a JSON object"),
    ]
    for config, message in bad:
        reply = cluster.api.call("POST", "/workflow/create", json={"name": "w", "configuration": config})
        assert reply.http_status == 400 and reply["result"] == "InvalidParameters", (config, reply)
        assert message in reply["message"], (message, reply["message"])
    path = tmp / "cycle.json"
    path.write_text(json.dumps(bad[5][0]))
    result = cluster.cli("workflow", "create", "-n", "w", "-c", str(path))
    assert result.returncode == 1 and "x -> z -> y -> x" in result.stdout
    result = cluster.cli("workflow", "create", "-n", "w", "-c", str(tmp / "missing.json"))
    assert result.returncode == 2 and "cannot read" in result.stderr
    assert cluster.api.call("GET", "/workflow/list")["total"] == 0
    # an update is validated the same way and leaves the workflow as it was
    good = {"applications": [{"name": "x", "app_id": a}]}
    workflow_id = create_workflow(cluster, tmp, good)
    reply = cluster.api.call("PUT", "/workflow/update", json={"workflow_id": workflow_id,
                                                              "configuration": bad[3][0]})
    assert reply.http_status == 400 and "duplicate" in reply["message"]
    info = cluster.api.call("GET", "/workflow/info", {"workflow_id": workflow_id})["workflow_info"]
    assert info["configuration"]["applications"] == [{"name": "x", "app_id": a, "condition": []}]
    # requests that name nothing, or a disabled workflow
    assert cluster.api.call("POST", "/work/create", json={"workflow_id": "nope", "name": "n"}).http_status == 404
    assert cluster.api.call("POST", "/work/create", json={"workflow_id": workflow_id}).http_status == 400
    reply = cluster.api.call("POST", "/work/create", json={"workflow_id": workflow_id, "name": "n",
                                                           "input_data": [1]})
    assert reply.http_status == 400 and "input_data" in reply["message"]
    assert cluster.cli_json("workflow", "update", "-w", workflow_id, "-e", "false")["result"] == "ok"
    reply = cluster.api.call("POST", "/work/create", json={"workflow_id": workflow_id, "name": "n"})
    assert (reply.http_status, reply["result"]) == (409, "WorkflowDisabled")
    assert cluster.api.call("GET", "/work/list")["total"] == 0
    assert cluster.api.call("GET", "/work/info", {"work_id": "nope"}).http_status == 404
    assert cluster.api.call("PUT", "/work/stop", json={"work_id": "nope", "signal": 3}).http_status == 400


def test_busy_workflow_and_work_cannot_be_deleted_and_entry_tasks_stay_with_their_work(env):
    cluster, apps, log, tmp = env
    workflow_id = create_workflow(cluster, tmp, diamond(apps))
    gate = str(tmp / "gate-a")
    work_id = create_work(cluster, workflow_id, {"x": 1, "log": log, "gates": {"a": gate}})
    reply = cluster.api.call("DELETE", "/workflow/delete", {"workflow_id": workflow_id})
    assert (reply.http_status, reply["result"]) == (409, "OperationFailed")
    assert cluster.api.call("DELETE", "/work/delete", {"work_id": work_id}).http_status == 409
    reply = cluster.api.app_delete(apps["d"])   # d has not started, but the work pinned it
    assert reply.http_status == 409 and "unfinished work" in reply["message"]
    # nor can the version of d it pinned be deleted from d's history once a newer one is active
    newer = make_app(str(tmp), {"actions": [{"name": "main", "main": "python3 step.py d2"}]},
                     files={"step.py": STEP}, name="d2.tar.gz")
    assert cluster.api.app_update(apps["d"], newer)["result"] == "ok"
    pinned = cluster.api.history_list("app", apps["d"])["app_histories"][-1]   # the oldest: the first upload
    reply = cluster.api.history_delete("app", apps["d"], str(pinned["history_id"]))
    assert (reply.http_status, reply["result"]) == (409, "OperationFailed") and "unfinished work" in reply["message"]
    a_task = work_info(cluster, work_id)["result"]["a"]["task_id"]
    reply = cluster.api.call("PUT", "/task/stop", json={"task_id": a_task, "signal": -9})
    assert reply["result"] == "ok"   # a task of a work may be stopped: the work then ends kill
    info = wait_work(cluster, work_id)
    assert info["status"] == "kill" and info["result"]["b"]["task_id"] is None


def test_manager_killed_in_the_middle_of_a_work_resumes_it(env):
    cluster, apps, log, tmp = env
    workflow_id = create_workflow(cluster, tmp, diamond(apps))
    gate_b, gate_c = str(tmp / "gate-b"), str(tmp / "gate-c")
    work_id = create_work(cluster, workflow_id, {"x": 1, "log": log, "gates": {"b": gate_b, "c": gate_c}})
    info = wait_entry(cluster, work_id, "b", "running")
    cluster.wait_task(info["result"]["b"]["task_id"], stage="running")
    cluster.manager.kill()
    open(gate_c, "w").close()   # c finishes while the manager is down: its report waits on the node
    wait_for(lambda: "c" in lines(log), what="c to run")
    cluster.start_manager()
    wait_entry(cluster, work_id, "c", "finished")
    cluster.manager.kill()      # and once more, after c's end was recorded
    cluster.start_manager()
    open(gate_b, "w").close()
    info = wait_work(cluster, work_id)
    assert info["status"] == "success", info
    assert info["result"]["d"]["result"] == {"main": {"label": "d", "value": 2221}}
    wait_for(lambda: "event:success" in lines(log), what="the success event application")
    time.sleep(1)
    assert sorted(lines(log)) == ["a", "b", "c", "d", "event:success"]   # no entry ran twice
    assert len(tasks_of(cluster, work_id)) == 5


def test_015_client_request_shapes(env):
    """The requests the original 0.1.5 client library and CLI send, byte for byte in shape."""
    cluster, apps, log, _ = env
    base = f"http://{cluster.address}"
    headers = {"user": "admin", "token": "whatever"}   # sent by 0.1.5; no auth_token is set
    config = {"applications": [{"name": "a", "app_id": apps["a"], "condition": []}]}
    r = requests.post(f"{base}/workflow/create", json={"name": "old", "configuration": config, "description": "",
                                                        "enable": False}, headers=headers).json()
    assert r["result"] == "ok"
    workflow_id = r["workflow_id"]
    r = requests.put(f"{base}/workflow/update?workflow_id={workflow_id}",
                     json={"name": "renamed", "enable": "true"}, headers=headers).json()
    assert r["result"] == "ok" and r["workflow_id"] == workflow_id
    r = requests.get(f"{base}/workflow/list?offset=0&limit=0&id={workflow_id}&name=%2Aname%2A",
                     headers=headers).json()
    assert [w["workflow_id"] for w in r["workflows"]] == [workflow_id] and r["workflows"][0]["enable"] is True
    r = requests.get(f"{base}/workflow/info?workflow_id={workflow_id}", headers=headers).json()
    assert r["info"]["name"] == "renamed" and r["info"]["description"] == ""
    r = requests.post(f"{base}/work/create", json={"name": "run", "workflow_id": workflow_id,
                                                    "input_data": {"x": 2, "log": log}}, headers=headers).json()
    work_id = r["work_id"]
    info = wait_work(cluster, work_id)
    assert info["status"] == "success" and info["result"]["a"]["result"] == {"label": "a", "value": 21}
    r = requests.get(f"{base}/work/list?offset=0&limit=0&work_id={work_id}&workflow_id={workflow_id}&name=run"
                     f"&stage=finished&status=success", headers=headers).json()
    assert [w["work_id"] for w in r["works"]] == [work_id]
    r = requests.get(f"{base}/work/info?work_id={work_id}", headers=headers).json()
    assert r["info"]["work_id"] == work_id and r["info"]["stage"] == "finished"
    r = requests.get(f"{base}/task/list?offset=0&limit=0&work_id={work_id}", headers=headers).json()
    assert [t["task_name"] for t in r["tasks"]] == ["run/a"]
    r = requests.put(f"{base}/work/rerun", json={"work_id": work_id}, headers=headers).json()
    assert r["result"] == "ok" and r["work_id"] != work_id
    wait_work(cluster, r["work_id"])
    r = requests.put(f"{base}/work/recover", json={"work_id": work_id}, headers=headers).json()
    assert r["result"] == "OperationFailed"   # it succeeded: nothing to recover
    r = requests.put(f"{base}/work/stop", json={"work_id": work_id, "signal": -9}, headers=headers).json()
    assert r["result"] == "TaskAlreadyFinished"
    r = requests.put(f"{base}/workflow/update?workflow_id={workflow_id}", json={"enable": "false",
                                                                                "workflow_id": workflow_id},
                     headers=headers).json()
    assert r["result"] == "ok"
    r = requests.post(f"{base}/work/create", json={"name": "run", "workflow_id": workflow_id, "input_data": {}},
                      headers=headers)
    assert r.status_code == 409 and r.json()["result"] == "WorkflowDisabled"
    r = requests.delete(f"{base}/work/delete?work_id={work_id}", headers=headers).json()
    assert r["result"] == "ok"
    r = requests.delete(f"{base}/workflow/delete?workflow_id={workflow_id}", headers=headers).json()
    assert r["result"] == "ok"


def test_the_example_workflow_runs_as_the_readme_walks_through_it(tmp_path):
    """examples/workflow: pack.sh, three uploads, workflow.json with their ids, one work."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    here = os.path.join(repo, "examples", "workflow")
    packed = subprocess.run([os.path.join(here, "pack.sh")], capture_output=True, text=True, check=True)
    tarballs = packed.stdout.split()
    assert [os.path.basename(t) for t in tarballs] == ["workflow_extract.tar.gz", "workflow_transform.tar.gz",
                                                       "workflow_load.tar.gz"]
    with LiteCluster(str(tmp_path)) as cluster:
        cluster.start_manager()
        cluster.add_node(slots=2)
        with open(os.path.join(here, "workflow.json")) as fp:
            text = fp.read()
        for name, path in zip(("EXTRACT", "TRANSFORM", "LOAD"), tarballs):
            reply = cluster.cli_json("app", "create", "-f", path, "-n", name.lower())
            text = text.replace(f"{name}_APP_ID", reply["app_id"])
        (tmp_path / "etl.json").write_text(text)
        workflow_id = create_workflow(cluster, tmp_path, json.loads(text))
        report = str(tmp_path / "report.json")
        work_id = create_work(cluster, workflow_id, {"text": "one two\nthree four five\nsix", "report_path": report})
        info = wait_work(cluster, work_id)
        assert info["status"] == "success", info
        assert info["result"]["extract"]["result"] == {"lines": ["one two", "three four five", "six"], "count": 3}
        assert info["result"]["transform"]["result"]["longest"]["line"] == "three four five"
        with open(report) as fp:
            assert json.load(fp) == {"lines": 3, "total_words": 6, "longest_line": "three four five"}
