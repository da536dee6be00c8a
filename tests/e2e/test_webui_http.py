"""The web interface over plain HTTP: sessions, CSRF, no secret in any page, the event stream."""
from __future__ import annotations

import json
import os
import re
import time

import pytest
import requests

from litepipeline.manager.ui import app as ui_app
from tests.e2e.harness import LiteCluster
from tests.fixtures import dag, make_app

TOKEN = "ui-test-token-8f1c2e"


@pytest.fixture(scope="module")
def sec(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("webui_sec"))
    with LiteCluster(root, token=TOKEN) as c:
        c.start_manager()
        c.add_node(slots=2)
        c.tarball = make_app(root, dag(("first", []), ("second", ["first"])))
        c.app_id = c.upload(c.tarball, "secure app")
        yield c


@pytest.fixture
def open_cluster(tmp_path):
    with LiteCluster(str(tmp_path)) as c:
        c.start_manager()
        yield c


def base(c: LiteCluster) -> str:
    return f"http://{c.address}"


def login(c: LiteCluster) -> tuple[requests.Session, str]:
    """A logged-in requests session and its CSRF value."""
    http = requests.Session()
    answer = http.post(f"{base(c)}/ui/login", data={"token": TOKEN}, allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and answer.headers["Location"] == "/ui/"
    csrf = http.get(f"{base(c)}/ui/api/session", timeout=10).json()["csrf"]
    return http, csrf


def static_paths() -> list[str]:
    out = []
    for folder, _, files in os.walk(ui_app.STATIC):
        for name in files:
            out.append(os.path.relpath(os.path.join(folder, name), ui_app.STATIC))
    return sorted(out)


def test_without_a_token_the_interface_just_works(open_cluster):
    answer = requests.get(f"{base(open_cluster)}/ui", timeout=10)
    assert answer.status_code == 200 and "<title>LitePipeline</title>" in answer.text
    assert "Log out" not in answer.text
    assert requests.get(f"{base(open_cluster)}/ui/api/session", timeout=10).json() == {
        "result": "ok", "auth": False, "csrf": None, "version": requests.get(
            f"{base(open_cluster)}/cluster/info", timeout=10).json()["version"]}
    login_page = requests.get(f"{base(open_cluster)}/ui/login", allow_redirects=False, timeout=10)
    assert login_page.status_code == 302 and login_page.headers["Location"] == "/ui/"


def test_pages_need_a_login_and_the_login_needs_the_token(sec):
    answer = requests.get(f"{base(sec)}/ui/", allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"] == "/ui/login"
    page = requests.get(f"{base(sec)}/ui/login", timeout=10)
    assert page.status_code == 200 and 'name="token"' in page.text
    wrong = requests.post(f"{base(sec)}/ui/login", data={"token": "nope"}, allow_redirects=False, timeout=10)
    assert wrong.status_code == 401 and "not the manager" in wrong.text and "Set-Cookie" not in wrong.headers
    for path in ("/ui/api/session", "/ui/api/cluster", "/ui/api/tasks", "/ui/api/task?task_id=x",
                 "/ui/events?topic=tasks"):
        answer = requests.get(f"{base(sec)}{path}", timeout=10)
        assert answer.status_code == 401 and answer.json()["result"] == "Unauthorized", path
    logout = requests.post(f"{base(sec)}/ui/logout", timeout=10)
    assert logout.status_code == 401


def test_the_session_cookie_is_httponly_strict_and_not_the_token(sec):
    answer = requests.post(f"{base(sec)}/ui/login", data={"token": TOKEN}, allow_redirects=False, timeout=10)
    cookie = answer.headers["Set-Cookie"]
    name, value = cookie.split(";")[0].split("=", 1)
    assert name == "litepipeline_session" and TOKEN not in value and len(value) >= 40
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert not any(f.startswith(("expires", "max-age")) for f in flags)   # gone with the browser session


def test_the_session_reads_and_changes_only_with_its_csrf_value(sec):
    http, csrf = login(sec)
    assert csrf and TOKEN not in csrf
    assert http.get(f"{base(sec)}/cluster/info", timeout=10).json()["result"] == "ok"
    assert http.get(f"{base(sec)}/ui/api/cluster", timeout=10).json()["nodes"]
    body = {"app_id": sec.app_id, "task_name": "from the ui", "input_data": {}}
    forged = http.post(f"{base(sec)}/task/create", json=body, timeout=10)   # a cross-site form can't add headers
    assert forged.status_code == 401 and forged.json()["result"] == "Unauthorized"
    wrong = http.post(f"{base(sec)}/task/create", json=body, headers={"X-CSRF-Token": "x" * 43}, timeout=10)
    assert wrong.status_code == 401
    assert sec.api.task_list(0, 0)["total"] == 0   # nothing was created by the refused requests
    ok = http.post(f"{base(sec)}/task/create", json=body, headers={"X-CSRF-Token": csrf}, timeout=10)
    assert ok.status_code == 200, ok.text
    task_id = ok.json()["task_id"]
    sec.wait_task(task_id)
    # the multipart upload (a streamed handler) takes the session too
    with open(sec.tarball, "rb") as fp:
        up = http.post(f"{base(sec)}/app/create", data={"name": "ui upload", "description": ""},
                       files={"up_file": ("app.tar.gz", fp.read())}, headers={"X-CSRF-Token": csrf}, timeout=30)
    assert up.status_code == 200 and up.json()["result"] == "ok"
    page = http.get(f"{base(sec)}/ui/api/task", params={"task_id": task_id}, timeout=10).json()
    assert [a["state"] for a in page["actions"]] == ["success", "success"]
    assert {(e["from"], e["to"]) for e in page["layout"]["edges"]} == {("first", "second")}


def test_a_wrong_bearer_header_is_not_rescued_by_the_cookie(sec):
    http, _ = login(sec)
    answer = http.get(f"{base(sec)}/cluster/info", headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert answer.status_code == 401
    # and the token alone still works for the interface's routes, as for the API
    answer = requests.get(f"{base(sec)}/ui/api/tasks", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert answer.status_code == 200 and answer.json()["result"] == "ok"


def test_logout_ends_the_session(sec):
    http, csrf = login(sec)
    assert http.post(f"{base(sec)}/ui/logout", timeout=10).status_code == 401   # CSRF needed here too
    answer = http.post(f"{base(sec)}/ui/logout", headers={"X-CSRF-Token": csrf}, timeout=10)
    assert answer.status_code == 200
    assert "litepipeline_session=;" in answer.headers["Set-Cookie"] or 'litepipeline_session="";' in \
        answer.headers["Set-Cookie"]
    stale = requests.get(f"{base(sec)}/ui/api/session", cookies={"litepipeline_session": http.cookies.get(
        "litepipeline_session") or ""}, timeout=10)
    assert stale.status_code == 401


def test_no_page_or_asset_holds_a_secret(sec):
    http, csrf = login(sec)
    session_id = http.cookies.get("litepipeline_session")
    paths = ["/ui/", "/ui/login"] + [f"/ui/static/{p}" for p in static_paths()]
    assert "/ui/static/app.js" in paths and "/ui/static/pages/task.js" in paths
    for path in paths:
        for client in (http, requests):
            answer = client.get(f"{base(sec)}{path}", timeout=10)
            assert answer.status_code == 200, path
            for secret in (TOKEN, session_id, csrf):
                assert secret not in answer.text, (path, secret)
    index = http.get(f"{base(sec)}/ui/", timeout=10)
    assert "script-src 'self'" in index.headers["Content-Security-Policy"]
    assert index.headers["Cache-Control"] == "no-store"


def test_interface_reads_refuse_bad_input(sec):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for params, message in [({"stage": "bogus"}, "parameter 'stage' must be one of"),
                            ({"status": "meh"}, "parameter 'status' must be one of"),
                            ({"limit": "0"}, "parameter 'limit' must be >= 1"),
                            ({"limit": "201"}, "parameter 'limit' must be <= 200"),
                            ({"before": "x"}, "parameter 'before' must be an integer"),
                            ({"name": "n" * 300}, "longer than 255")]:
        answer = requests.get(f"{base(sec)}/ui/api/tasks", params=params, headers=headers, timeout=10)
        assert answer.status_code == 400 and answer.json()["result"] == "InvalidParameters"
        assert message in answer.json()["message"], answer.json()
    answer = requests.get(f"{base(sec)}/ui/api/task", params={"task_id": "nope"}, headers=headers, timeout=10)
    assert (answer.status_code, answer.json()["result"]) == (404, "TaskNotExists")
    answer = requests.get(f"{base(sec)}/ui/api/task", params={"task_id": "x", "direction": "up"},
                          headers=headers, timeout=10)
    assert answer.status_code == 400
    answer = requests.get(f"{base(sec)}/ui/events", params={"topic": "secrets"}, headers=headers, timeout=10)
    assert answer.status_code == 400 and "topic" in answer.json()["message"]
    answer = requests.get(f"{base(sec)}/ui/events", params={"topic": "task"}, headers=headers, timeout=10)
    assert answer.status_code == 400 and "task_id" in answer.json()["message"]


class Events:
    """Reads SSE events (name, data) from one streaming response."""

    def __init__(self, stream: requests.Response) -> None:
        self.chunks = stream.iter_content(chunk_size=None, decode_unicode=True)
        self.buffer = ""
        self.seen: list = []

    def until(self, done, timeout: float = 30) -> list:
        """Reads until ``done(events so far)`` holds (keep-alives come every 15 s at most)."""
        deadline = time.monotonic() + timeout
        while not done(self.seen):
            assert time.monotonic() < deadline, f"no such event in time: {self.seen}"
            self.buffer += next(self.chunks)
            while "\n\n" in self.buffer:
                frame, self.buffer = self.buffer.split("\n\n", 1)
                name = re.search(r"^event: (.*)$", frame, re.M)
                data = re.search(r"^data: (.*)$", frame, re.M)
                if data:
                    self.seen.append((name.group(1) if name else "message", json.loads(data.group(1))))
        return self.seen


def test_committed_rounds_are_pushed_to_the_event_stream(sec):
    http, _ = login(sec)
    with http.get(f"{base(sec)}/ui/events", params={"topic": "tasks"}, stream=True, timeout=30) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        reader = Events(stream)
        reader.until(lambda ev: ev and ev[0][0] == "ready")
        task_id = sec.api.task_create(sec.app_id, "pushed", {})["task_id"]
        events = reader.until(lambda ev: any(
            e[0] == "message" and any(t["task_id"] == task_id and t["state"] == "success" for t in e[1]["tasks"])
            for e in ev))
    created = [e for e in events if e[0] == "message" and task_id in e[1]["created"]]
    assert created, events
    # one task's stream: each action's states and attempts as its rounds commit
    task_id = sec.api.task_create(sec.app_id, "watched", {"_first": {"sleep": 1.5}})["task_id"]
    with http.get(f"{base(sec)}/ui/events", params={"topic": "task", "task_id": task_id}, stream=True,
                  timeout=30) as stream:
        reader = Events(stream)
        reader.until(lambda ev: ev and ev[0][0] == "ready")
        events = reader.until(lambda ev: any(e[1].get("task", {}).get("state") == "success" for e in ev))
    assert all(e[1]["task_id"] == task_id for e in events[1:])
    states = [(a["name"], a["state"]) for e in events[1:] for a in e[1]["actions"]]
    assert states.index(("first", "success")) < states.index(("second", "running")) < \
        states.index(("second", "success"))
    attempts = [(a["name"], a["status"]) for e in events[1:] for a in e[1]["attempts"]]
    assert ("second", None) in attempts and ("second", "success") in attempts


def test_the_manager_stops_cleanly_with_event_streams_open(tmp_path):
    with LiteCluster(str(tmp_path)) as c:
        c.start_manager()
        streams = [requests.get(f"{base(c)}/ui/events", params=params, stream=True, timeout=30)
                   for params in ({"topic": "cluster"}, {"topic": "tasks"}, {"topic": "task", "task_id": "t"})]
        for stream in streams:
            Events(stream).until(lambda ev: ev and ev[0][0] == "ready")
        assert c.manager.stop() == 0   # SIGTERM was enough: no stream held the manager open
        for stream in streams:
            list(stream.iter_content(chunk_size=None))   # and each stream has ended
            stream.close()


def test_nodes_joining_and_leaving_are_pushed_to_the_cluster_page(open_cluster):
    with requests.get(f"{base(open_cluster)}/ui/events", params={"topic": "cluster"}, stream=True,
                      timeout=30) as stream:
        reader = Events(stream)
        reader.until(lambda ev: ev and ev[0][0] == "ready")
        node = open_cluster.add_node()
        reader.until(lambda ev: len([e for e in ev if e[1] == {"nodes": True}]) == 1)
        node.stop()
        reader.until(lambda ev: len([e for e in ev if e[1] == {"nodes": True}]) == 2)
    assert requests.get(f"{base(open_cluster)}/ui/api/cluster", timeout=10).json()["nodes"] == []


def test_work_reads_and_the_work_event_stream(sec):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    apps = [{"name": "one", "app_id": sec.app_id}, {"name": "two", "app_id": sec.app_id, "condition": ["one"]}]
    workflow_id = sec.api.call("POST", "/workflow/create", json={"name": "pair", "configuration": {
        "applications": apps}})["workflow_id"]
    answer = requests.get(f"{base(sec)}/ui/api/workflow", params={"workflow_id": workflow_id}, headers=headers,
                          timeout=10).json()
    assert [e["name"] for e in answer["entries"]] == ["one", "two"]
    assert [(e["from"], e["to"]) for e in answer["layout"]["edges"]] == [("one", "two")]
    http, _ = login(sec)
    with http.get(f"{base(sec)}/ui/events", params={"topic": "work"}, stream=True, timeout=30) as stream:
        reader = Events(stream)   # every work: the works list's stream
        reader.until(lambda ev: ev and ev[0][0] == "ready")
        work_id = sec.api.call("POST", "/work/create", json={"workflow_id": workflow_id, "name": "w",
                                                             "input_data": {}})["work_id"]
        events = reader.until(lambda ev: any(e[1].get("work", {}).get("state") == "success" for e in ev))
    works = [e[1] for e in events[1:]]
    assert all(w["work_id"] == work_id for w in works)
    entries = [(x["name"], x["stage"]) for w in works if "work" in w for x in w["work"]["entries"]]
    assert entries.index(("one", "running")) < entries.index(("two", "running")) < entries.index(("two", "finished"))
    moved = {(t["task_name"], t["state"]) for w in works for t in w["tasks"]}
    assert ("w/one", "running") in moved and ("w/two", "success") in moved   # its tasks' moves too
    page = requests.get(f"{base(sec)}/ui/api/work", params={"work_id": work_id, "direction": "down"},
                        headers=headers, timeout=10).json()
    assert [(e["name"], e["state"]) for e in page["entries"]] == [("one", "success"), ("two", "success")]
    assert page["work"]["state"] == "success" and len(page["tasks"]) == 2
    tasks = requests.get(f"{base(sec)}/ui/api/tasks", params={"work_id": work_id}, headers=headers,
                         timeout=10).json()
    assert sorted(t["task_name"] for t in tasks["tasks"]) == ["w/one", "w/two"] and tasks["total"] == 2
    for path, params, status, result in [
            ("/ui/api/work", {"work_id": "nope"}, 404, "WorkNotExists"),
            ("/ui/api/workflow", {"workflow_id": "nope"}, 404, "WorkflowNotExists"),
            ("/ui/api/work", {"work_id": work_id, "direction": "up"}, 400, "InvalidParameters"),
            ("/ui/api/schedules", {"limit": "0"}, 400, "InvalidParameters")]:
        answer = requests.get(f"{base(sec)}{path}", params=params, headers=headers, timeout=10)
        assert (answer.status_code, answer.json()["result"]) == (status, result), (path, answer.json())
    schedule_id = sec.api.call("POST", "/schedule/create", json={
        "schedule_name": "s", "source": "workflow", "source_id": workflow_id, "cron": "0 4 * * *",
        "timezone": "UTC", "enable": True})["schedule_id"]
    listed = requests.get(f"{base(sec)}/ui/api/schedules", headers=headers, timeout=10).json()
    (mine,) = [s for s in listed["schedules"] if s["schedule_id"] == schedule_id]
    assert len(mine["next_fire_at"]) == 5 and all(t[11:19] == "04:00:00" for t in mine["next_fire_at"])
