"""Access control with real processes: a cluster whose manager has an ``auth_token``.

The CLI works with ``--token`` and with ``$LITEPIPELINE_TOKEN``; every manager and node
route but ``GET /`` refuses a request without the token (or with a wrong one), and
nothing happens because of it; a node without the token is refused at REGISTER;
``liteconfig --token-gen`` makes a token that works; no answer and no log line ever shows
the token or the password of a ``database_url``.
"""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import types
import uuid
from typing import Any, Optional

import pytest
import requests
import tornado.web
import yaml

from litepipeline.client.api import ManagerClient
from litepipeline.manager.handlers.apps import UploadHandler
from tests.e2e.harness import BIN, LiteCluster, free_port, wait_for
from tests.e2e.test_manager_api import db_rows, table
from tests.fixtures import dag, make_app
from tests.pgdb import temporary_database

TOKEN = "tok-" + uuid.uuid4().hex + uuid.uuid4().hex
WRONG = {"none": None, "wrong": "Bearer not-the-token", "prefix": f"Bearer {TOKEN[:-1]}",
         "longer": f"Bearer {TOKEN}x", "no_scheme": TOKEN, "basic": f"Basic {TOKEN}", "empty": "Bearer "}
UNAUTHORIZED = {"result": "Unauthorized",
                "message": "missing or wrong 'Authorization: Bearer <token>' header"}
PG_PASSWORD = "s3cr3t-pw"
TABLES = ("applications", "tasks", "actions", "attempts")


@pytest.fixture(scope="module")
def sec(tmp_path_factory):
    """A token-protected manager with one node, an application and one finished task."""
    root = str(tmp_path_factory.mktemp("secure"))
    with LiteCluster(root, token=TOKEN) as cluster:
        cluster.start_manager()
        cluster.add_node(slots=2)
        cluster.tarball = make_app(root, dag(("first", []), ("second", ["first"])))
        cluster.app_id = cluster.upload(cluster.tarball, "secure app")
        info = cluster.run_task(cluster.app_id, {"k": "v"})["task_info"]
        assert info["status"] == "success", info
        cluster.task_id = info["task_id"]
        yield cluster


def snapshot(cluster: LiteCluster) -> tuple:
    rows = {t: db_rows(cluster, f"select * from {t} order by 1") for t in TABLES}
    files = []
    for base, _dirs, names in os.walk(cluster.root):
        if "logs" in base.split(os.sep):
            continue
        files += [os.path.join(base, n) for n in names
                  if n != "stderr.log" and not n.startswith("litepipeline.db")]
    return rows, sorted(files)


# -- the CLI with the token -------------------------------------------------------------------

@pytest.mark.parametrize("how", ["flag", "env"])
def test_seed_flow_through_the_cli_with_a_token(sec, how):
    def cli(*args: str, raw: bool = False) -> subprocess.CompletedProcess:
        if how == "flag":
            result = sec.cli(*args, raw=raw, token=TOKEN)
        else:
            result = sec.cli(*args, raw=raw, env={"LITEPIPELINE_TOKEN": TOKEN})
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    rows = table(cli("app", "create", "-f", sec.tarball, "-n", f"via {how}", "-d", "token").stdout)
    assert rows[0] == ["#", "app_id", "result", "message"] and rows[1][2] == "ok"
    app_id = rows[1][1]
    listing = table(cli("app", "list").stdout)
    assert app_id in [row[1] for row in listing[1:]]
    rows = table(cli("task", "create", "-a", app_id, "-n", f"task via {how}", "-i", '{"x": 1}').stdout)
    assert rows[1][2] == "ok"
    task_id = rows[1][1]

    def finished() -> Optional[dict]:
        info = json.loads(cli("task", "info", "-t", task_id, raw=True).stdout)["task_info"]
        return info if info["stage"] == "finished" else None

    info = wait_for(finished, timeout=30, interval=0.1, what="the task to finish")
    assert info["status"] == "success" and set(info["result"]) == {"first", "second"}
    nodes = table(cli("cluster", "info").stdout)
    assert nodes[0][1:] == ["node_id", "http_host", "http_port", "action_slots", "app_path", "data_path"]
    assert len(nodes) == 2 and nodes[1][3] == str(sec.nodes[0].config["http_port"])


@pytest.mark.parametrize("token", [None, "not-the-token"], ids=["no_token", "wrong_token"])
def test_cli_without_the_right_token_is_refused(sec, token):
    env = {"LITEPIPELINE_TOKEN": token} if token else None
    result = sec.cli("cluster", "info", env=env)
    assert result.returncode == 1
    assert table(result.stdout)[1][1:] == ["Unauthorized", UNAUTHORIZED["message"]]
    assert TOKEN not in result.stdout and TOKEN not in result.stderr
    # one line on stderr says where the CLI takes the token from
    assert result.stderr.count("\n") == 1 and "--token" in result.stderr and "LITEPIPELINE_TOKEN" in result.stderr


def test_token_flag_wins_over_the_environment(sec):
    result = sec.cli("cluster", "info", token=TOKEN, env={"LITEPIPELINE_TOKEN": "stale"})
    assert result.returncode == 0, result.stdout


# -- every manager route ----------------------------------------------------------------------

def _routes(table_: list) -> list[tuple[str, type]]:
    out = []
    for path, handler, *_ in table_:
        path = path.rstrip("$")
        assert re.fullmatch(r"[/A-Za-z0-9_.-]+", path), f"route {path!r} needs a sample path in this test"
        out.append((path, handler))
    return out


def _methods(handler: type) -> list[str]:
    return [m.upper() for m in ("get", "post", "put", "delete", "patch")
            if getattr(handler, m) is not getattr(tornado.web.RequestHandler, m)]


def manager_routes() -> list[tuple[str, str, type]]:
    from litepipeline.manager.handlers import routes

    return [(method, path, handler)
            for path, handler in _routes(routes(None)) for method in _methods(handler)]


def node_routes() -> list[tuple[str, str, type]]:
    from litepipeline.node.handlers import make_app as node_app

    app = node_app(types.SimpleNamespace())
    rules = [(rule.matcher.regex.pattern, rule.target) for rule in app.wildcard_router.rules]
    return [(method, path, handler) for path, handler in _routes(rules) for method in _methods(handler)]


MANAGER_ROUTES = manager_routes()
NODE_ROUTES = node_routes()


def test_route_tables_are_what_the_test_iterates():
    """A sanity check that the enumeration sees the SPEC routes (new ones are included by themselves)."""
    seen = {(m, p) for m, p, _ in MANAGER_ROUTES}
    assert {("GET", "/"), ("GET", "/cluster/info"), ("POST", "/app/create"), ("GET", "/app/list"),
            ("GET", "/app/info"), ("PUT", "/app/update"), ("DELETE", "/app/delete"), ("GET", "/app/download"),
            ("POST", "/task/create"), ("GET", "/task/list"), ("GET", "/task/info"),
            ("DELETE", "/task/delete"), ("PUT", "/task/stop"), ("PUT", "/action/update")} <= seen
    assert {("GET", "/"), ("POST", "/action/run"), ("PUT", "/action/stop"), ("GET", "/status/full")} <= \
        {(m, p) for m, p, _ in NODE_ROUTES}


def _request(cluster: LiteCluster, base: str, method: str, path: str, handler: type,
             authorization: Optional[str]) -> requests.Response:
    """A plausible request for the route (real ids, a real upload), so that only auth can stop it."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    params = {"app_id": cluster.app_id, "task_id": cluster.task_id, "name": "first", "offset": "0",
              "limit": "5"}
    kwargs: dict[str, Any] = {"params": params, "headers": headers, "timeout": 10}
    if issubclass(handler, UploadHandler):   # multipart uploads
        kwargs["data"] = {"app_id": cluster.app_id, "name": "replaced", "description": "replaced"}
        with open(cluster.tarball, "rb") as fp:
            kwargs["files"] = {"up_file": ("app.tar.gz", fp.read())}
    elif method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {"app_id": cluster.app_id, "task_id": cluster.task_id, "task_name": "injected",
                          "input_data": {}, "signal": -9, "name": "first", "attempt_id": str(uuid.uuid4()),
                          "stage": "finished", "status": "fail", "node_id": str(uuid.uuid4()), "result": {},
                          "main": "touch /tmp/pwned", "app_sha1": "0" * 40, "condition": []}
    return requests.request(method, f"{base}{path}", **kwargs)


def _route_id(route: tuple) -> str:
    return f"{route[0]} {route[1]}"


# public: GET / and GET /openapi.json (the API's description holds no secret)
@pytest.mark.parametrize("route", [r for r in MANAGER_ROUTES if not r[2].public], ids=_route_id)
def test_manager_route_refuses_without_the_token(sec, route):
    method, path, handler = route
    before = snapshot(sec)
    for kind, authorization in WRONG.items():
        answer = _request(sec, f"http://{sec.address}", method, path, handler, authorization)
        assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED), (kind, answer.text)
        assert TOKEN not in answer.text
    assert snapshot(sec) == before
    assert not os.path.exists("/tmp/pwned")


def test_manager_index_and_unknown_paths_need_no_token(sec):
    answer = requests.get(f"http://{sec.address}/", timeout=5)
    assert (answer.status_code, answer.json()) == (200, {"message": "LitePipeline manager service", "role": "single", "leader": None})
    answer = requests.get(f"http://{sec.address}/openapi.json", timeout=5)
    assert answer.status_code == 200 and answer.json()["openapi"].startswith("3.1")
    assert TOKEN not in answer.text
    assert {(m, p) for m, p, h in MANAGER_ROUTES if h.public} == {("GET", "/"), ("GET", "/openapi.json")}
    answer = requests.get(f"http://{sec.address}/no/such/route", timeout=5)
    assert (answer.status_code, answer.json()) == (
        404, {"result": "NotFound", "message": "no such endpoint: GET /no/such/route"})


def test_manager_routes_work_with_the_token(sec):
    """The 401s above are the token's doing: the same routes answer with it."""
    with ManagerClient(sec.address, token=TOKEN) as client:
        assert client.cluster_info()["result"] == "ok"
        assert client.app_info(sec.app_id)["app_info"]["name"] == "secure app"
        assert client.task_info(sec.task_id)["task_info"]["status"] == "success"


# -- the node's API ---------------------------------------------------------------------------

@pytest.mark.parametrize("route", [r for r in NODE_ROUTES if r[1] != "/"], ids=_route_id)
def test_node_route_refuses_without_the_token(sec, route):
    method, path, handler = route
    node = sec.nodes[0]
    before = snapshot(sec)
    for kind, authorization in WRONG.items():
        base = f"http://127.0.0.1:{node.config['http_port']}"
        answer = _request(sec, base, method, path, handler, authorization)
        assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED), (kind, answer.text)
    assert snapshot(sec) == before
    assert not os.path.exists("/tmp/pwned")


def test_node_index_is_public_and_status_needs_the_token(sec):
    base = f"http://127.0.0.1:{sec.nodes[0].config['http_port']}"
    answer = requests.get(f"{base}/", timeout=5)
    assert (answer.status_code, answer.json()) == (200, {"message": "LitePipeline node service"})
    answer = requests.get(f"{base}/status/full", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert answer.status_code == 200 and answer.json()["result"] == "ok"


# -- node registration --------------------------------------------------------------------------

@pytest.mark.parametrize("token", [None, "the-wrong-token"], ids=["without_token", "wrong_token"])
def test_node_without_the_token_is_refused_at_register(sec, token):
    node = sec.add_node(start=False, auth_token=token)
    port = node.config["http_port"]
    refusals = sec.manager.output().count("refused REGISTER from 127.0.0.1: missing or wrong token")
    try:
        sec.start_node(node, wait=False)
        wait_for(lambda: "manager refused registration: missing or wrong token" in node.output(), timeout=10,
                 what="the node to log its refusal")
        wait_for(lambda: sec.manager.output().count("refused REGISTER from 127.0.0.1: missing or wrong token")
                 >= refusals + 2, timeout=10, what="the manager to refuse it again")   # it keeps retrying
        assert node.alive()
        ports = [n["http_port"] for n in sec.api.cluster_info()["info"]["nodes"]]
        assert port not in ports and len(ports) == 1
        assert TOKEN not in node.output()
    finally:
        node.stop()
        sec.nodes.remove(node)


# -- liteconfig --token-gen ---------------------------------------------------------------------

def test_liteconfig_token_gen_writes_a_working_token(tmp_path):
    result = subprocess.run([os.path.join(BIN, "liteconfig"), "-s", "manager", "-o", str(tmp_path),
                             "--token-gen"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "configuration.yml"
    token = yaml.safe_load(path.read_text())["auth_token"]
    assert isinstance(token, str) and len(token) >= 32
    assert token in result.stdout
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600   # the file holds a secret
    # the generated file as is, but for the ports this test may use
    http_port, tcp_port = free_port(), free_port()
    text = re.sub(r"(?m)^http_port:\s*\d+", f"http_port: {http_port}", path.read_text())
    text = re.sub(r"(?m)^tcp_port:\s*\d+", f"tcp_port: {tcp_port}", text)
    text = re.sub(r"(?m)^(http|tcp)_host:\s*\S+", r"\1_host: 127.0.0.1", text)
    path.write_text(text)
    with open(tmp_path / "stderr.log", "wb") as log:
        proc = subprocess.Popen([os.path.join(BIN, "litemanager"), "-c", str(path)], stdout=log,
                                stderr=subprocess.STDOUT, cwd=str(tmp_path))
    try:
        address = f"127.0.0.1:{http_port}"
        wait_for(lambda: _answers(address), timeout=20, what="the manager to answer")
        with ManagerClient(address, token=token) as client:
            assert client.cluster_info()["result"] == "ok"
        with ManagerClient(address) as client:
            reply = client.cluster_info()
            assert (reply.http_status, dict(reply)) == (401, UNAUTHORIZED)
    finally:
        proc.terminate()
        proc.wait(15)
    assert token not in (tmp_path / "stderr.log").read_text()
    assert token not in (tmp_path / "logs" / "manager.log").read_text()


def _answers(address: str) -> bool:
    try:
        return requests.get(f"http://{address}/", timeout=0.5).status_code == 200
    except requests.RequestException:
        return False


# -- no secret in any answer or log ------------------------------------------------------------

def _public_bodies(cluster: LiteCluster, token: Optional[str]) -> dict[str, str]:
    """Every answer a user or a node can get, as text."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    base = f"http://{cluster.address}"
    gets = {"index": "/", "cluster": "/cluster/info", "apps": "/app/list",
            "app": f"/app/info?app_id={cluster.app_id}", "tasks": "/task/list",
            "task": f"/task/info?task_id={cluster.task_id}",
            "missing_app": "/app/info?app_id=nope", "missing_task": "/task/info?task_id=nope",
            "unknown": "/no/such/route", "bad_paging": "/task/list?offset=-1"}
    bodies = {name: requests.get(base + path, headers=headers, timeout=10).text
              for name, path in gets.items()}
    bodies["unauthorized"] = requests.get(base + "/cluster/info", timeout=10).text
    running = cluster.api.task_create(cluster.app_id, "running", {"_first": {"sleep": 30}})["task_id"]
    wait_for(lambda: cluster.task(running).get("task_running_info"), timeout=20, what="a running action")
    bodies["running_task"] = requests.get(f"{base}/task/info?task_id={running}", headers=headers,
                                          timeout=10).text
    cluster.api.task_stop(running, -9)
    cluster.wait_task(running, timeout=20)
    for i, node in enumerate(cluster.nodes):
        node_base = f"http://127.0.0.1:{node.config['http_port']}"
        bodies[f"node{i}_index"] = requests.get(node_base + "/", timeout=5).text
        bodies[f"node{i}_status"] = requests.get(node_base + "/status/full", headers=headers, timeout=5).text
        bodies[f"node{i}_unauthorized"] = requests.get(node_base + "/status/full", timeout=5).text
    for args in (("cluster", "info"), ("task", "info", "-t", cluster.task_id), ("app", "list")):
        bodies[" ".join(args)] = cluster.cli(*args, raw=True, token=token).stdout
    return bodies


def _logs(cluster: LiteCluster) -> dict[str, str]:
    out = {}
    for daemon in [cluster.manager, *cluster.nodes]:
        out[f"{daemon.kind} console"] = daemon.output()
        logs = daemon.config["log_path"]
        for name in os.listdir(logs):
            with open(os.path.join(logs, name), encoding="utf-8", errors="replace") as fp:
                out[f"{daemon.kind} {name}"] = fp.read()
    return out


def test_no_answer_or_log_shows_the_token(sec):
    bodies = _public_bodies(sec, TOKEN)
    assert json.loads(bodies["cluster"])["info"]["number_of_nodes"] == 1
    leaks = [name for name, text in {**bodies, **_logs(sec)}.items() if TOKEN in text]
    assert leaks == []


@pytest.fixture(scope="module")
def pg_database():
    """A database of our own, reached with a password (trust auth accepts any)."""
    with temporary_database("lp_secret") as url:
        yield url.replace("postgresql+psycopg://postgres@", f"postgresql+psycopg://postgres:{PG_PASSWORD}@", 1)


def test_database_password_is_never_shown(pg_database, tmp_path):
    with LiteCluster(str(tmp_path), token=TOKEN, database_url=pg_database) as cluster:
        cluster.start_manager()
        cluster.add_node(slots=2)
        cluster.tarball = make_app(str(tmp_path), dag(("first", [])))
        cluster.app_id = cluster.upload(cluster.tarball)
        info = cluster.run_task(cluster.app_id, {"k": 1})["task_info"]
        assert info["status"] == "success", info
        cluster.task_id = info["task_id"]
        bodies = _public_bodies(cluster, TOKEN)
        assert not os.path.exists(os.path.join(cluster.manager.config["data_path"], "litepipeline.db"))
    logs = _logs(cluster)
    assert "store: postgresql+psycopg://postgres:***@127.0.0.1:5432/" in logs["manager console"]
    leaks = [name for name, text in {**bodies, **logs}.items() if PG_PASSWORD in text or TOKEN in text]
    assert leaks == []
