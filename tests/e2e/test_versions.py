"""Application versions and venvs deployed on their own (SPEC §8, §9), on real processes."""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import textwrap

import requests

from tests.e2e.harness import wait_for
from tests.e2e.test_manager_api import db_rows, table
from tests.fixtures import make_app

# Writes which version of the application ran and which venv (VENV_MARK, set by the
# venv's bin/activate) it ran in; with "hold" in its input, first waits until that file exists;
# with "fail_unless", fails unless that file exists.
REPORT = textwrap.dedent('''
    import json, os, sys, time
    ws = sys.argv[1]
    data = json.load(open(os.path.join(ws, "input.data")))
    deadline = time.monotonic() + 60
    while data.get("hold") and not os.path.exists(data["hold"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    with open(os.path.join(ws, "output.data"), "w") as fp:
        json.dump({"data": {"version": VERSION, "venv": os.environ.get("VENV_MARK")}}, fp)
    if data.get("fail_unless") and not os.path.exists(data["fail_unless"]):
        sys.exit(3)
''')


def sha1_of(path: str) -> str:
    with open(path, "rb") as fp:
        return hashlib.sha1(fp.read()).hexdigest()


def versioned_app(directory: str, version: int, env: str | None = None, actions: tuple = ("a",),
                  name: str | None = None) -> str:
    config = {"actions": [{"name": n, "condition": [], "main": "python3 report.py", **({"env": env} if env else {})}
                          for n in actions]}
    return make_app(directory, config, files={"report.py": REPORT.replace("VERSION", str(version))},
                    name=name or f"app-v{version}.tar.gz")


def fake_venv(directory: str, mark: str, name: str | None = None) -> str:
    """A tarball shaped as venv-pack writes one (no top directory); its activate sets VENV_MARK."""
    path = os.path.join(directory, name or f"venv-{mark}.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        for dirname in ("bin", "lib"):
            info = tarfile.TarInfo(dirname)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for rel, data in (("bin/activate", f"export VENV_MARK={mark}\n"), ("lib/marker.txt", mark)):
            info = tarfile.TarInfo(rel)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data.encode()))
    return path


def outputs(info: dict) -> dict:
    return {name: r["result"]["data"] for name, r in info["task_info"]["result"].items()}


def histories(cluster, kind: str, owner_id: str) -> list:
    reply = cluster.api.history_list(kind, owner_id)
    assert reply.ok, reply
    return reply[f"{kind}_histories"]


def manager_files(cluster, folder: str) -> list:
    root = os.path.join(cluster.manager.config["data_path"], folder)
    found = []
    for base, _dirs, files in os.walk(root):
        found += [os.path.relpath(os.path.join(base, f), root) for f in files]
    tmp = os.path.join(cluster.manager.config["data_path"], "tmp")
    return sorted(found + [os.path.join("tmp", f) for f in os.listdir(tmp)])


def test_rollback_while_a_task_of_the_newer_version_runs(cluster, tmp_path):
    cluster.add_node(slots=2)
    v1, v2 = versioned_app(str(tmp_path), 1), versioned_app(str(tmp_path), 2)
    app_id = cluster.upload(v1)
    assert cluster.api.app_update(app_id, v2)["result"] == "ok"
    rows = histories(cluster, "app", app_id)   # newest first
    assert [r["sha1"] for r in rows] == [sha1_of(v2), sha1_of(v1)]
    assert rows[0]["application_id"] == app_id and rows[0]["history_id"] > rows[1]["history_id"]
    h2, h1 = rows[0]["history_id"], rows[1]["history_id"]

    hold = os.path.join(str(tmp_path), "release-newer")
    newer = cluster.api.task_create(app_id, "newer", {"hold": hold})["task_id"]
    cluster.wait_task(newer, stage="running")
    # rollback: the running task keeps v2, new tasks run v1
    out = cluster.cli("app_history", "activate", "-a", app_id, "-H", str(h1), check=True)
    assert table(out.stdout)[1][1] == "ok"
    assert cluster.api.app_info(app_id)["app_info"]["sha1"] == sha1_of(v1)
    older = cluster.api.task_create(app_id, "older", {})["task_id"]

    # v2 is run by an unfinished task, v1 is active: neither can be deleted, and the answer says why
    busy = cluster.api.history_delete("app", app_id, str(h2))
    assert busy.http_status == 409 and "unfinished task" in busy["message"], busy
    active = cluster.cli("app_history", "delete", "-a", app_id, "-H", str(h1))
    assert active.returncode == 1 and "active version" in active.stdout

    older_info = cluster.wait_task(older)
    assert cluster.api.task_info(newer)["task_info"]["stage"] == "running"
    open(hold, "w").close()
    newer_info = cluster.wait_task(newer)
    assert older_info["task_info"]["status"] == newer_info["task_info"]["status"] == "success"
    assert outputs(older_info)["a"]["version"] == 1 and older_info["task_info"]["app_sha1"] == sha1_of(v1)
    assert outputs(newer_info)["a"]["version"] == 2 and newer_info["task_info"]["app_sha1"] == sha1_of(v2)

    # finished: v2 can go now; its file goes with it
    assert manager_files(cluster, "applications") == sorted(
        [f"{app_id}/{sha1_of(v1)}.tar.gz", f"{app_id}/{sha1_of(v2)}.tar.gz"])
    assert cluster.api.history_delete("app", app_id, str(h2))["result"] == "ok"
    assert [r["history_id"] for r in histories(cluster, "app", app_id)] == [h1]
    assert manager_files(cluster, "applications") == [f"{app_id}/{sha1_of(v1)}.tar.gz"]
    # recover keeps working for a task whose version is still in the history: v1
    assert cluster.api.task_info(older)["task_info"]["status"] == "success"


def test_history_info_config_and_bad_ids(cluster, tmp_path):
    v1 = versioned_app(str(tmp_path), 1)
    app_id = cluster.upload(v1)
    other = cluster.upload(versioned_app(str(tmp_path), 2, actions=("b",)))
    (h1,) = [r["history_id"] for r in histories(cluster, "app", app_id)]

    info = cluster.api.history_info("app", app_id, str(h1), config=True)
    assert info["history_info"]["sha1"] == sha1_of(v1)
    assert info["history_config"]["actions"][0]["name"] == "a"
    assert cluster.api.app_info(app_id, config=True)["app_config"]["actions"][0]["main"] == "python3 report.py"
    out = cluster.cli("app", "info", "-a", app_id, "--config", check=True).stdout
    assert table(out.split("\n\n")[0])[1][1] == app_id
    assert json.loads(out.split("\n\n", 1)[1])["actions"][0]["name"] == "a"
    out = cluster.cli("app_history", "info", "-a", app_id, "-H", str(h1), "--config", check=True).stdout
    head, config = out.split("\n\n", 1)
    assert table(head)[1][1:5] == [str(h1), app_id, info["history_info"]["create_at"], sha1_of(v1)]
    assert json.loads(config)["actions"][0]["main"] == "python3 report.py"
    out = cluster.cli("app_history", "list", "-a", app_id, check=True).stdout
    assert table(out)[0][:3] == ["#", "history_id", "application_id"] and table(out)[1][1:3] == [str(h1), app_id]
    # -q prints the ids of what each operation shows; --json the whole answer on one line
    assert cluster.cli("app", "info", "-a", app_id, "--config", "-q", check=True).stdout == app_id + "\n"
    assert cluster.cli("app_history", "list", "-a", app_id, "-q", check=True).stdout == f"{h1}\n"
    assert cluster.cli("app_history", "info", "-a", app_id, "-H", str(h1), "-q", check=True).stdout == f"{h1}\n"
    out = cluster.cli("app", "info", "-a", app_id, "--config", "--json", check=True).stdout
    assert out.count("\n") == 1 and json.loads(out)["app_config"]["actions"][0]["name"] == "a"

    # a history id of another application is not found, nor an unknown one; unknown ids are named
    (other_h,) = [r["history_id"] for r in histories(cluster, "app", other)]
    for reply in (cluster.api.history_info("app", app_id, str(other_h)),
                  cluster.api.history_activate("app", app_id, str(other_h)),
                  cluster.api.history_delete("app", app_id, str(other_h))):
        assert (reply.http_status, reply["result"]) == (404, "HistoryNotExists"), reply
        assert str(other_h) in reply["message"]
    missing = "0d50caed-760b-40a5-bcc7-dcdb46960675"
    reply = cluster.api.history_list("app", missing)
    assert (reply.http_status, reply["result"]) == (404, "AppNotExists") and missing in reply["message"]
    reply = cluster.api.history_info("app", app_id, "x1")
    assert (reply.http_status, reply["result"]) == (400, "InvalidParameters")
    assert cluster.api.app_info(app_id)["app_info"]["sha1"] == sha1_of(v1)   # nothing changed

    # deleting an application deletes its history
    assert cluster.api.app_delete(other)["result"] == "ok"
    assert cluster.api.history_list("app", other).http_status == 404
    assert db_rows(cluster, "select application_id from app_histories") == [(app_id,)]


def test_recover_runs_the_versions_the_task_pinned(cluster, tmp_path):
    cluster.add_node()
    venv_id = cluster.api.venv_create(fake_venv(str(tmp_path), "one"), "v")["venv_id"]
    app_id = cluster.upload(versioned_app(str(tmp_path), 1, venv_id))
    flag = os.path.join(str(tmp_path), "may-succeed")
    failed = cluster.run_task(app_id, {"fail_unless": flag})
    assert failed["task_info"]["status"] == "fail"
    task_id = failed["task_info"]["task_id"]
    # newer versions of both meanwhile; the old ones stay in the histories
    assert cluster.api.app_update(app_id, versioned_app(str(tmp_path), 2, venv_id))["result"] == "ok"
    assert cluster.api.venv_update(venv_id, fake_venv(str(tmp_path), "two"))["result"] == "ok"
    open(flag, "w").close()
    assert cluster.api.task_recover(task_id)["result"] == "ok"
    recovered = cluster.wait_task(task_id)
    assert recovered["task_info"]["status"] == "success"
    assert outputs(recovered)["a"] == {"version": 1, "venv": "one"}

    # a failed task whose venv version was deleted since cannot run again in place
    os.remove(flag)
    second = cluster.run_task(app_id, {"fail_unless": flag})["task_info"]
    assert second["status"] == "fail" and outputs({"task_info": second})["a"] == {"version": 2, "venv": "two"}
    rows = histories(cluster, "venv", venv_id)
    assert cluster.api.history_activate("venv", venv_id, str(rows[1]["history_id"]))["result"] == "ok"
    assert cluster.api.history_delete("venv", venv_id, str(rows[0]["history_id"]))["result"] == "ok"
    refused = cluster.api.task_recover(second["task_id"])
    assert refused.http_status == 409 and "no longer stored" in refused["message"], refused
    assert "'a'" in refused["message"] and venv_id in refused["message"]


def test_venv_shared_by_two_apps_is_downloaded_once_per_node(cluster, tmp_path):
    node = cluster.add_node(slots=4)
    venv1 = fake_venv(str(tmp_path), "one")
    out = cluster.cli("venv", "create", "-f", venv1, "-n", "shared", "-d", "tools", check=True)
    venv_id = table(out.stdout)[1][1]
    other = cluster.cli("venv", "create", "-f", venv1, "-n", "other", "-q", check=True).stdout   # -q: the new id
    assert other.strip() != venv_id and cluster.api.venv_delete(other.strip())["result"] == "ok"
    info = cluster.cli_json("venv", "info", "-v", venv_id)["venv_info"]
    assert (info["name"], info["sha1"], info["description"]) == ("shared", sha1_of(venv1), "tools")

    # two applications, two actions each, all wanting the venv at the same moment
    app_a = cluster.upload(versioned_app(str(tmp_path), 1, venv_id, ("a1", "a2"), "a.tar.gz"))
    app_b = cluster.upload(versioned_app(str(tmp_path), 2, venv_id, ("b1", "b2"), "b.tar.gz"))
    tasks = [cluster.api.task_create(app, "t", {})["task_id"] for app in (app_a, app_b)]
    for task_id in tasks:
        done = cluster.wait_task(task_id)
        assert done["task_info"]["status"] == "success", done
        assert {d["venv"] for d in outputs(done).values()} == {"one"}
    assert node.output().count(f"downloading venv {venv_id}") == 1
    venv_dir = os.path.join(node.config["data_path"], "venvs", venv_id, sha1_of(venv1), "venv")
    assert os.path.isfile(os.path.join(venv_dir, "bin", "activate"))

    # a new version: new tasks use it (one more download), while the task pinned to the
    # old one keeps it
    venv2 = fake_venv(str(tmp_path), "two")
    hold = os.path.join(str(tmp_path), "release-slow")
    slow = cluster.api.task_create(app_a, "slow", {"hold": hold})["task_id"]
    cluster.wait_task(slow, stage="running")
    assert cluster.cli("venv", "update", "-v", venv_id, "-f", venv2, check=True).returncode == 0
    fresh = cluster.wait_task(cluster.api.task_create(app_b, "t", {})["task_id"])
    assert {d["venv"] for d in outputs(fresh).values()} == {"two"}
    vh = histories(cluster, "venv", venv_id)
    assert [r["sha1"] for r in vh] == [sha1_of(venv2), sha1_of(venv1)]
    rows = table(cluster.cli("venv_history", "list", "-v", venv_id, check=True).stdout)
    assert rows[0][1:5] == ["history_id", "venv_id", "create_at", "sha1"]
    assert [r[4] for r in rows[1:]] == [sha1_of(venv2), sha1_of(venv1)]
    # the old version is used by the running task: refused, saying why; so is the venv itself
    busy = cluster.api.history_delete("venv", venv_id, str(vh[1]["history_id"]))
    assert busy.http_status == 409 and "unfinished task" in busy["message"], busy
    busy = cluster.cli("venv", "delete", "-v", venv_id)
    assert busy.returncode == 1 and "unfinished task" in busy.stdout
    open(hold, "w").close()
    slow_info = cluster.wait_task(slow)
    assert {d["venv"] for d in outputs(slow_info).values()} == {"one"}

    assert node.output().count(f"downloading venv {venv_id}") == 2
    # retention, as for applications: once no action uses it, the node removes the old copy
    wait_for(lambda: not os.path.exists(venv_dir), 10, what="old venv copy removed")
    assert os.path.isdir(os.path.join(node.config["data_path"], "venvs", venv_id, sha1_of(venv2), "venv"))

    # rollback of the venv: new tasks run the old version again (fetched again, once)
    cluster.cli("venv_history", "activate", "-v", venv_id, "-H", str(vh[1]["history_id"]), check=True)
    back = cluster.wait_task(cluster.api.task_create(app_a, "t", {})["task_id"])
    assert {d["venv"] for d in outputs(back).values()} == {"one"}
    assert node.output().count(f"downloading venv {venv_id}") == 3
    active = cluster.api.history_delete("venv", venv_id, str(vh[1]["history_id"]))
    assert active.http_status == 409 and "active version" in active["message"]

    dest = os.path.join(str(tmp_path), "got.tar.gz")
    reply = cluster.api.venv_download(venv_id, dest, sha1=sha1_of(venv2))
    assert reply.ok and sha1_of(dest) == sha1_of(venv2)
    assert cluster.api.history_delete("venv", venv_id, str(vh[0]["history_id"]))["result"] == "ok"
    assert cluster.api.venv_download(venv_id, dest, sha1=sha1_of(venv2)).http_status == 404
    listing = cluster.cli("venv", "list", check=True).stdout
    assert table(listing)[1][1:3] == [venv_id, "shared"]
    assert cluster.cli("venv", "list", "-q", check=True).stdout == venv_id + "\n"
    assert cluster.cli("venv", "info", "-v", venv_id, "-q", check=True).stdout == venv_id + "\n"
    assert cluster.cli("venv_history", "list", "-v", venv_id, "-q", check=True).stdout == f"{vh[1]['history_id']}\n"

    # nothing runs it any more: the venv can go, and applications naming it can no longer start
    assert cluster.api.venv_delete(venv_id)["result"] == "ok"
    assert manager_files(cluster, "venvs") == []
    refused = cluster.api.task_create(app_a, "t", {})
    assert (refused.http_status, refused["result"]) == (404, "VenvNotExists")
    assert "'a1'" in refused["message"] and venv_id in refused["message"]


def test_bad_venv_input_leaves_nothing_behind(cluster, tmp_path):
    missing = "0d50caed-760b-40a5-bcc7-dcdb46960675"
    # an application whose env names a venv that does not exist: refused, naming the action
    reply = cluster.api.app_create(versioned_app(str(tmp_path), 1, missing, ("first",)), "x")
    assert (reply.http_status, reply["result"]) == (404, "VenvNotExists")
    assert "action 'first'" in reply["message"] and missing in reply["message"]
    first_version = versioned_app(str(tmp_path), 1)
    app_id = cluster.upload(first_version)
    reply = cluster.api.app_update(app_id, versioned_app(str(tmp_path), 2, missing, ("second",)))
    assert reply.http_status == 404 and "action 'second'" in reply["message"]
    assert len(histories(cluster, "app", app_id)) == 1
    wait_for(lambda: manager_files(cluster, "applications") == [f"{app_id}/{sha1_of(first_version)}.tar.gz"], 5,
             what="only the accepted application's file")

    # a tarball that is no venv, and one with a member escaping it
    not_venv = make_app(str(tmp_path), name="notvenv.tar.gz")
    reply = cluster.api.venv_create(not_venv, "bad")
    assert (reply.http_status, reply["result"]) == (400, "InvalidParameters") and "bin/activate" in reply["message"]
    escaping = os.path.join(str(tmp_path), "escape.tar.gz")
    with tarfile.open(escaping, "w:gz") as tar:
        info = tarfile.TarInfo("../evil")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    reply = cluster.api.venv_create(escaping, "bad")
    assert reply.http_status == 400 and "'../evil' escapes the env directory" in reply["message"]   # the env rules' words
    reply = cluster.api.venv_create(fake_venv(str(tmp_path), "x"), "")
    assert reply.http_status == 400

    # unknown ids are 404 naming them; a history id of another venv is not found
    for reply in (cluster.api.venv_info(missing), cluster.api.venv_delete(missing),
                  cluster.api.history_list("venv", missing),
                  cluster.api.venv_update(missing, fake_venv(str(tmp_path), "y"))):
        assert (reply.http_status, reply["result"]) == (404, "VenvNotExists") and missing in reply["message"]
    one = cluster.api.venv_create(fake_venv(str(tmp_path), "one"), "one")["venv_id"]
    two = cluster.api.venv_create(fake_venv(str(tmp_path), "two"), "two")["venv_id"]
    (two_h,) = [r["history_id"] for r in histories(cluster, "venv", two)]
    reply = cluster.api.history_activate("venv", one, str(two_h))
    assert (reply.http_status, reply["result"]) == (404, "HistoryNotExists")

    assert db_rows(cluster, "select count(*) from applications") == [(1,)]
    assert db_rows(cluster, "select count(*) from venvs") == [(2,)]
    assert db_rows(cluster, "select count(*) from venv_histories") == [(2,)]
    wait_for(lambda: not any(f.startswith("tmp") for f in manager_files(cluster, "venvs")), 5,
             what="no upload left in tmp")
    assert len(manager_files(cluster, "venvs")) == 2


def test_original_client_routes(cluster, tmp_path):
    """The 0.1.5 client's request shapes, sent by hand (its own CLI: test_legacy_client.py)."""
    base = f"http://{cluster.address}"
    legacy = {"user": "admin", "token": "whatever"}   # ignored: no auth_token is set
    node = cluster.add_node()
    info = requests.get(base + "/cluster/info?include=manager,nodes,actions", headers=legacy, timeout=10).json()
    manager = info["info"]["manager"]
    assert manager["http_port"] == cluster.http_port and manager["tcp_port"] == cluster.tcp_port
    assert "auth_token" not in json.dumps(info) and info["info"]["nodes"][0]["version"]
    app_id = cluster.upload(versioned_app(str(tmp_path), 1))
    # POST /app/update, fields only as multipart without a file
    r = requests.post(base + "/app/update", files={"app_id": (None, app_id), "name": (None, "renamed")},
                      headers=legacy, timeout=10)
    assert r.json() == {"result": "ok", "app_id": app_id}
    task_id = cluster.run_task(app_id)["task_info"]["task_id"]
    r = requests.put(base + "/task/rerun", json={"task_id": task_id}, headers=legacy, timeout=10)
    assert r.json()["result"] == "ok" and r.json()["task_id"] != task_id
    cluster.wait_task(r.json()["task_id"])
    # history routes with the history id as a string in the JSON body
    h = histories(cluster, "app", app_id)[0]["history_id"]
    r = requests.put(base + "/app/history/activate", json={"app_id": app_id, "history_id": str(h)}, timeout=10)
    assert r.json()["result"] == "ok"
    r = requests.get(base + f"/app/history/info?app_id={app_id}&history_id={h}&config=False", timeout=10)
    assert r.json()["app_history"]["id"] == h and "history_config" not in r.json()
    # workspace routes
    r = requests.put(base + "/workspace/pack", json={"task_id": task_id, "name": "a", "force": True}, timeout=10)
    assert r.json()["result"] == "ok", r.json()
    r = requests.get(base + f"/workspace/download?task_id={task_id}&name=a", timeout=30)
    assert r.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
        assert f"{task_id}/a/output.data" in tar.getnames()
    r = requests.put(base + "/workspace/delete", json={"task_ids": task_id}, timeout=10)
    assert r.json() == {"result": "ok", "failed_task_ids": []}
    r = requests.put(base + "/workspace/delete", json={"task_ids": ["nope"]}, timeout=10)
    assert r.json() == {"result": "ok", "failed_task_ids": ["nope"]}
    assert node.alive()
