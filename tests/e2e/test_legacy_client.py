"""The original 0.1.5 client (PyPI's ``litepipeline==0.1.5``: its CLI and its client
library ``litepipeline_helper``) against a real manager (SPEC Part II preamble).

That package has our name, so ``scripts/test.sh`` installs it into a venv of its own,
``.venv-legacy``; these tests skip, saying why, when it could not be made. Its CLI prints
a Python exception's text instead of failing, so each answer is checked by its table.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import tarfile

import pytest

from tests.e2e.harness import wait_for
from tests.e2e.test_versions import fake_venv, histories, sha1_of, versioned_app
from tests.fixtures import dag, make_app

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEGACY = os.path.join(REPO, ".venv-legacy")
LEGACY_CLI = os.path.join(LEGACY, "bin", "litepipeline")

pytestmark = pytest.mark.skipif(not os.access(LEGACY_CLI, os.X_OK),
                                reason=f"the 0.1.5 client is not installed in {LEGACY} (scripts/test.sh makes it)")


def legacy(cluster, *args: str, cwd: str | None = None) -> list[list[str]]:
    """Run the 0.1.5 CLI (with its -u/-p, whose headers are ignored without auth_token);
    the rows of the table(s) it printed."""
    argv = [LEGACY_CLI, cluster.address, "-u", "admin", "-p", "secret", *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd or cluster.root)
    assert result.returncode == 0, result.stderr
    return [[cell.strip() for cell in line.split("|")] for line in result.stdout.splitlines() if " | " in line]


def column(rows: list, name: str) -> list:
    index = rows[0].index(name)
    return [row[index] for row in rows[1:] if row[0] != "#"]


def test_legacy_cli_applications_history_tasks_and_workspaces(cluster, tmp_path):
    node = cluster.add_node()
    v1, v2 = versioned_app(str(tmp_path), 1), versioned_app(str(tmp_path), 2)
    rows = legacy(cluster, "app", "create", "-f", v1, "-n", "legacy", "-d", "old client")
    assert rows[0] == ["#", "app_id", "result", "message"] and rows[1][2] == "ok", rows
    app_id = rows[1][1]
    rows = legacy(cluster, "app", "update", "-a", app_id, "-f", v2)   # POST /app/update
    assert rows[1][1:3] == [app_id, "ok"], rows
    rows = legacy(cluster, "app_history", "list", "-a", app_id)
    assert column(rows, "sha1") == [sha1_of(v2), sha1_of(v1)] and column(rows, "application_id") == [app_id] * 2
    h1 = column(rows, "id")[1]
    rows = legacy(cluster, "app_history", "info", "-a", app_id, "-H", h1)
    assert column(rows, "sha1") == [sha1_of(v1)]
    rows = legacy(cluster, "app_history", "activate", "-a", app_id, "-H", h1)
    assert rows[1][1] == "ok", rows
    assert cluster.api.app_info(app_id)["app_info"]["sha1"] == sha1_of(v1)

    rows = legacy(cluster, "task", "create", "-a", app_id, "-n", "from 0.1.5", "-i", '{"k": 1}')
    task_id = rows[1][1]
    info = cluster.wait_task(task_id)
    assert info["task_info"]["status"] == "success"
    assert info["task_info"]["result"]["a"]["result"]["data"]["version"] == 1
    rows = legacy(cluster, "task", "rerun", "-t", task_id)   # PUT /task/rerun
    assert rows[1][1] == "ok", rows
    (rerun,) = [t["task_id"] for t in cluster.api.task_list()["tasks"] if t["task_id"] != task_id]
    assert cluster.wait_task(rerun)["task_info"]["status"] == "success"
    rows = legacy(cluster, "task", "info", "-t", task_id)
    assert column(rows, "task_id") == [task_id]

    # workspace download: PUT /workspace/pack until ok, then GET /workspace/download
    legacy(cluster, "workspace", "download", "-t", task_id, "-n", "a", cwd=str(tmp_path))
    archive = os.path.join(str(tmp_path), f"{task_id}.a.tar.gz")
    with tarfile.open(archive, "r:gz") as tar:
        assert f"{task_id}/a/output.data" in tar.getnames()
    rows = legacy(cluster, "workspace", "delete", "-t", task_id)   # PUT /workspace/delete
    assert rows[1][1] == "ok", rows
    assert cluster.api.task_workspace(task_id, os.path.join(str(tmp_path), "x.tar.gz"))["result"] != "ok"

    # cluster info: its manager table (no secret in it) and its nodes table
    rows = legacy(cluster, "cluster", "info")
    managers, nodes = rows[:2], rows[2:]
    assert column(managers, "http_port") == [str(cluster.http_port)]
    assert column(managers, "tcp_port") == [str(cluster.tcp_port)]
    assert column(nodes, "node_id") == list(cluster.node_ids()) and column(nodes, "version")[0]
    assert node.alive()


def test_legacy_cli_venvs(cluster, tmp_path):
    venv1, venv2 = fake_venv(str(tmp_path), "one"), fake_venv(str(tmp_path), "two")
    rows = legacy(cluster, "venv", "create", "-f", venv1, "-n", "shared")
    assert rows[1][2] == "ok", rows
    venv_id = rows[1][1]
    rows = legacy(cluster, "venv", "update", "-v", venv_id, "-f", venv2, "-n", "shared2")   # POST /venv/update
    assert rows[1][1:3] == [venv_id, "ok"], rows
    rows = legacy(cluster, "venv", "info", "-v", venv_id)
    assert column(rows, "name") == ["shared2"] and column(rows, "sha1") == [sha1_of(venv2)]
    assert column(legacy(cluster, "venv", "list"), "venv_id") == [venv_id]
    rows = legacy(cluster, "venv_history", "list", "-v", venv_id)
    assert column(rows, "sha1") == [sha1_of(venv2), sha1_of(venv1)]
    first = column(rows, "id")[1]
    assert column(legacy(cluster, "venv_history", "info", "-v", venv_id, "-H", first), "sha1") == [sha1_of(venv1)]
    assert legacy(cluster, "venv_history", "activate", "-v", venv_id, "-H", first)[1][1] == "ok"
    assert cluster.api.venv_info(venv_id)["venv_info"]["sha1"] == sha1_of(venv1)
    legacy(cluster, "venv", "download", "-v", venv_id, cwd=str(tmp_path))
    assert sha1_of(os.path.join(str(tmp_path), f"{venv_id}.tar.gz")) == sha1_of(venv1)
    second = str(histories(cluster, "venv", venv_id)[0]["history_id"])
    assert legacy(cluster, "venv_history", "delete", "-v", venv_id, "-H", second)[1][1] == "ok"
    assert legacy(cluster, "venv", "delete", "-v", venv_id)[1][1] == "ok"
    wait_for(lambda: cluster.api.venv_info(venv_id).http_status == 404, 5, what="venv gone")


def test_legacy_client_library(cluster, tmp_path):
    """Its client library, run with the legacy venv's interpreter."""
    script = (
        "import json, sys\n"
        "from litepipeline_helper.models.client import LitePipelineClient\n"
        "host, port, app = sys.argv[1:4]\n"
        "c = LitePipelineClient(host, port, user='admin', password='secret')\n"
        "out = {'info': c.application_info(app, config=True)['app_config'],\n"
        "       'histories': c.application_history_list(app)['app_histories'],\n"
        "       'manager': c.cluster_info()['info']['manager']}\n"
        "print(json.dumps(out))\n")
    app_id = cluster.upload(versioned_app(str(tmp_path), 1))
    host, port = cluster.address.split(":")
    result = subprocess.run([os.path.join(LEGACY, "bin", "python"), "-c", script, host, port, app_id],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["info"]["actions"][0]["name"] == "a"
    assert [h["application_id"] for h in out["histories"]] == [app_id]
    assert out["manager"]["http_port"] == cluster.http_port


HOLD = (
    "import json, os, sys, time\n"
    "ws = sys.argv[1]\n"
    "data = json.load(open(os.path.join(ws, 'input.data')))\n"
    "while data.get('hold') and os.path.exists(data['hold']):\n"
    "    time.sleep(0.05)\n"
    "with open(os.path.join(ws, 'output.data'), 'w') as fp:\n"
    "    json.dump({'data': {'k': data.get('k')}}, fp)\n")


def test_legacy_cli_workflows_and_works(cluster, tmp_path):
    """workflow create/update/list/info/delete and work create/list/info/stop/rerun/recover/delete,
    each with the 0.1.5 CLI's own flags; an entry is held while a file exists so stop is seen."""
    cluster.add_node(slots=4)
    app_id = cluster.upload(make_app(str(tmp_path), {"actions": [{"name": "main", "main": "python3 hold.py"}]},
                                     files={"hold.py": HOLD}, name="hold.tar.gz"))
    config = tmp_path / "workflow.json"
    config.write_text(json.dumps({"applications": [{"name": "one", "app_id": app_id, "condition": []},
                                                   {"name": "two", "app_id": app_id, "condition": ["one"]}]}))
    rows = legacy(cluster, "workflow", "create", "-n", "etl", "-c", str(config), "-d", "old", "-e", "true")
    assert rows[0] == ["#", "workflow_id", "result", "message"] and rows[1][2] == "ok", rows
    workflow_id = rows[1][1]
    # PUT /workflow/update?workflow_id=… with a body; its -e defaults to "false", so say true
    rows = legacy(cluster, "workflow", "update", "-w", workflow_id, "-n", "etl2", "-d", "new", "-e", "true")
    assert rows[1][2] == "ok", rows
    rows = legacy(cluster, "workflow", "info", "-w", workflow_id)
    assert column(rows, "workflow_id") == [workflow_id] and column(rows, "name") == ["etl2"]
    assert column(rows, "description") == ["new"] and column(rows, "enable") == ["True"]
    info = cluster.api.call("GET", "/workflow/info", {"workflow_id": workflow_id})["workflow_info"]
    assert [a["name"] for a in info["configuration"]["applications"]] == ["one", "two"]
    assert column(legacy(cluster, "workflow", "list"), "workflow_id") == [workflow_id]
    assert column(legacy(cluster, "workflow", "list", "-n", "etl2"), "workflow_id") == [workflow_id]

    def wait_work(work_id: str) -> list:
        def finished():
            rows = legacy(cluster, "work", "info", "-w", work_id)
            return rows if column(rows, "stage") == ["finished"] else None
        return wait_for(finished, 60, 0.2, f"work {work_id} to finish")

    rows = legacy(cluster, "work", "create", "-w", workflow_id, "-n", "nightly", "-i", '{"k": 5}')
    assert rows[0] == ["#", "work_id", "result", "message"] and rows[1][2] == "ok", rows
    quick = rows[1][1]
    rows = wait_work(quick)
    assert column(rows, "status") == ["success"] and column(rows, "workflow_id") == [workflow_id]
    result = cluster.api.call("GET", "/work/info", {"work_id": quick})["work_info"]["result"]
    assert result["two"]["result"] == {"main": {"k": 5}} and result["two"]["status"] == "success"

    hold = tmp_path / "hold"
    hold.write_text("")
    rows = legacy(cluster, "work", "create", "-w", workflow_id, "-n", "held", "-i", json.dumps({"hold": str(hold)}))
    held = rows[1][1]
    wait_for(lambda: column(legacy(cluster, "work", "info", "-w", held), "stage") == ["running"], 30, 0.2,
             "held work running")
    assert legacy(cluster, "work", "stop", "-w", held)[1][1] == "ok"     # PUT /work/stop, signal -9
    assert column(wait_work(held), "status") == ["kill"]
    assert column(legacy(cluster, "work", "list", "-S", "kill"), "work_id") == [held]
    assert column(legacy(cluster, "work", "list", "-W", workflow_id, "-s", "finished"), "work_id") == [held, quick]
    assert column(legacy(cluster, "work", "list", "-w", quick), "work_id") == [quick]
    hold.unlink()
    assert legacy(cluster, "work", "recover", "-w", held)[1][1] == "ok"   # PUT /work/recover
    assert column(wait_work(held), "status") == ["success"]
    assert legacy(cluster, "work", "rerun", "-w", quick)[1][1] == "ok"    # PUT /work/rerun: a new work
    works = column(legacy(cluster, "work", "list", "-W", workflow_id), "work_id")
    (rerun,) = set(works) - {quick, held}
    assert column(wait_work(rerun), "status") == ["success"]

    for work_id in (quick, held, rerun):
        assert legacy(cluster, "work", "delete", "-w", work_id)[1][1] == "ok"
    assert legacy(cluster, "work", "list")[1:] == []
    assert legacy(cluster, "workflow", "delete", "-w", workflow_id)[1][1] == "ok"
    assert legacy(cluster, "workflow", "list")[1:] == []


def test_legacy_cli_schedules_and_services(cluster, tmp_path):
    """schedule create/update/list/info/delete with 0.1.5's minute/hour/day fields, and service
    create/update (without a signal)/list/info/delete, each with the 0.1.5 CLI's flags."""
    app_id = cluster.upload(make_app(str(tmp_path), dag(("only", []))))
    rows = legacy(cluster, "schedule", "create", "-n", "nightly", "-a", app_id, "-i", '{"k": 1}',
                  "-m", "30", "-H", "2", "-D", "0")    # Sunday as its help says: 0
    assert rows[0] == ["#", "schedule_id", "result", "message"] and rows[1][2] == "ok", rows
    schedule_id = rows[1][1]
    rows = legacy(cluster, "schedule", "info", "-s", schedule_id)
    assert column(rows, "schedule_name") == ["nightly"] and column(rows, "source") == ["application"]
    assert column(rows, "source_id") == [app_id] and column(rows, "enable") == ["False"]
    assert [column(rows, f)[0] for f in ("minute", "hour", "day_of_week")] == ["30", "2", "0"]
    info = cluster.api.call("GET", "/schedule/info", {"schedule_id": schedule_id})["schedule_info"]
    nexts = [dt.datetime.fromisoformat(t) for t in info["next_fire_at"]]
    assert all((t.isoweekday(), t.hour, t.minute) == (7, 2, 30) for t in nexts), nexts
    # PUT /schedule/update?schedule_id=… with input_data as a JSON string and enable a boolean
    rows = legacy(cluster, "schedule", "update", "-s", schedule_id, "-n", "weekly", "-i", '{"k": 2}',
                  "-H", "3", "-D", "6", "-e", "true")
    assert rows[1][2] == "ok", rows
    info = cluster.api.call("GET", "/schedule/info", {"schedule_id": schedule_id})["schedule_info"]
    assert (info["schedule_name"], info["input_data"], info["enable"]) == ("weekly", {"k": 2}, True)
    assert (info["minute"], info["hour"], info["day_of_week"]) == (30, 3, 6)
    nexts = [dt.datetime.fromisoformat(t) for t in info["next_fire_at"]]
    assert all((t.isoweekday(), t.hour, t.minute) == (6, 3, 30) for t in nexts), nexts
    assert column(legacy(cluster, "schedule", "list"), "schedule_id") == [schedule_id]
    assert column(legacy(cluster, "schedule", "list", "-a", app_id, "-e", "true"), "schedule_id") == [schedule_id]
    # -w: a schedule of a workflow, created and switched to with its flags
    reply = cluster.api.call("POST", "/workflow/create", json={
        "name": "wf", "description": "", "enable": True,
        "configuration": {"applications": [{"name": "only", "app_id": app_id, "condition": []}]}})
    workflow_id = reply["workflow_id"]
    rows = legacy(cluster, "schedule", "create", "-n", "of-workflow", "-w", workflow_id, "-d", "1", "-D", "7")
    of_workflow = rows[1][1]
    rows = legacy(cluster, "schedule", "info", "-s", of_workflow)
    assert column(rows, "source") == ["workflow"] and column(rows, "source_id") == [workflow_id]
    assert legacy(cluster, "schedule", "update", "-s", schedule_id, "-w", workflow_id)[1][2] == "ok"
    rows = legacy(cluster, "schedule", "list", "-w", workflow_id)
    assert sorted(column(rows, "schedule_id")) == sorted([schedule_id, of_workflow])
    assert set(column(rows, "source")) == {"workflow"}
    for sid in (schedule_id, of_workflow):
        assert legacy(cluster, "schedule", "delete", "-s", sid)[1][1] == "ok"
    assert legacy(cluster, "schedule", "list")[1:] == []

    rows = legacy(cluster, "service", "create", "-n", "svc", "-a", app_id, "-i", '{"k": 1}', "-d", "kept")
    assert rows[0] == ["#", "service_id", "result", "message"] and rows[1][2] == "ok", rows
    service_id = rows[1][1]
    rows = legacy(cluster, "service", "update", "-s", service_id, "-n", "svc2", "-i", '{"k": 2}', "-d", "kept2")
    assert rows[1][2] == "ok", rows    # no signal sent: 0.1.5 required one, its CLI never sent it
    rows = legacy(cluster, "service", "info", "-s", service_id)
    assert column(rows, "service_id") == [service_id] and column(rows, "name") == ["svc2"]
    assert column(rows, "enable") == ["False"] and column(rows, "application_id") == [app_id]
    info = cluster.api.call("GET", "/service/info", {"service_id": service_id})["service_info"]
    assert (info["input_data"], info["description"]) == ({"k": 2}, "kept2")
    assert column(legacy(cluster, "service", "list", "-a", app_id), "service_id") == [service_id]
    assert legacy(cluster, "service", "delete", "-s", service_id)[1][1] == "ok"
    assert legacy(cluster, "service", "list")[1:] == []
