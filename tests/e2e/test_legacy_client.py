"""The original 0.1.5 client (PyPI's ``litepipeline==0.1.5``: its CLI and its client
library ``litepipeline_helper``) against a real manager (SPEC Part II preamble).

That package has our name, so ``scripts/test.sh`` installs it into a venv of its own,
``.venv-legacy``; these tests skip, saying why, when it could not be made. Its CLI prints
a Python exception's text instead of failing, so each answer is checked by its table.
"""
from __future__ import annotations

import json
import os
import subprocess
import tarfile

import pytest

from tests.e2e.harness import wait_for
from tests.e2e.test_versions import fake_venv, histories, sha1_of, versioned_app

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
