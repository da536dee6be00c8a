"""Every JSON route of a live cluster answers as ``/openapi.json`` says (the harness checks
each answer against the document's response schema for its method, path and status)."""
from __future__ import annotations

import requests
from openapi_spec_validator import validate

from tests.e2e.harness import LiteCluster, wait_for
from tests.e2e.test_versions import fake_venv
from tests.fixtures import dag, make_app

TOKEN = "openapi-test-token"
# answers the walk must have checked against a schema: (method, path) with a 2xx
MUST_CHECK = {
    "/cluster/info", "/app/list", "/app/info", "/task/list", "/task/info", "/app/history/list",
    "/app/history/info", "/venv/list", "/venv/info", "/venv/history/list", "/venv/history/info",
    "/workflow/list", "/workflow/info", "/work/list", "/work/info", "/schedule/list", "/schedule/info",
    "/schedule/fires", "/service/list", "/service/info", "/ui/api/session", "/ui/api/cluster", "/ui/api/tasks",
    "/ui/api/task", "/ui/api/workflow", "/ui/api/work", "/ui/api/schedules", "/openapi.json",
}


def ok(reply: dict) -> dict:
    assert reply.get("result") == "ok", reply
    return reply


def test_every_json_route_matches_the_document(tmp_path):
    with LiteCluster(str(tmp_path), token=TOKEN, check_schema=True) as cluster:
        cluster.start_manager()
        cluster.add_node()
        api = cluster.api
        # the document itself: public, valid
        raw = requests.get(f"http://{cluster.address}/openapi.json", timeout=10)
        assert raw.status_code == 200 and raw.headers["Content-Type"].startswith("application/json")
        validate(raw.json())
        assert api.call("GET", "/openapi.json")["openapi"].startswith("3.1")
        assert api.call("GET", "/")["message"] == "LitePipeline manager service"
        ok(api.cluster_info())

        # applications, versions, venvs
        app_id = ok(api.app_create(make_app(str(tmp_path)), "app", "walk"))["app_id"]
        ok(api.app_update(app_id, make_app(str(tmp_path), dag(("a", [])), name="v2.tar.gz")))
        ok(api.app_list())
        ok(api.app_info(app_id, config=True))
        history = ok(api.history_list("app", app_id))["app_histories"]
        ok(api.history_info("app", app_id, str(history[-1]["history_id"]), config=True))
        ok(api.history_activate("app", app_id, str(history[-1]["history_id"])))
        ok(api.history_delete("app", app_id, str(history[0]["history_id"])))
        venv_id = ok(api.venv_create(fake_venv(str(tmp_path), "one"), "venv"))["venv_id"]
        ok(api.venv_update(venv_id, fake_venv(str(tmp_path), "two")))
        ok(api.venv_list())
        ok(api.venv_info(venv_id))
        venv_history = ok(api.history_list("venv", venv_id))["venv_histories"]
        ok(api.history_info("venv", venv_id, str(venv_history[0]["history_id"])))
        ok(api.history_activate("venv", venv_id, str(venv_history[-1]["history_id"])))

        # tasks: one finished, one running (task_running_info), the toolkit's routes
        done = ok(api.task_create(app_id, "done", {"k": 1}))["task_id"]
        cluster.wait_task(done)
        ok(api.task_create(app_id, "waited", {}, wait=30))
        held = ok(api.task_create(app_id, "held", {"_all": {"sleep": 60}}))["task_id"]
        cluster.wait_task(held, stage="running")
        wait_for(lambda: api.task_info(held).get("task_running_info"), what="a running action")
        ok(api.task_list(limit=10))
        ok(api.task_list(stage="finished"))
        ok(api.task_info(done))
        ok(api.task_stop(held, -9))
        cluster.wait_task(held)
        ok(api.task_rerun(done))
        ok(api.call("PUT", "/task/recover", json={"task_id": held}))
        ok(api.task_stop(held, -9))
        ok(api.call("PUT", "/workspace/pack", json={"task_id": done, "name": "first"}))
        ok(api.task_workspace_delete(done))
        ok(api.call("PUT", "/workspace/delete", json={"task_ids": [done]}))

        # workflows and works
        config = {"applications": [{"name": "one", "app_id": app_id, "condition": []},
                                   {"name": "two", "app_id": app_id, "condition": ["one"]}]}
        workflow_id = ok(api.call("POST", "/workflow/create", json={"name": "wf", "configuration": config,
                                                                   "description": "d", "enable": True}))["workflow_id"]
        ok(api.call("PUT", "/workflow/update", params={"workflow_id": workflow_id}, json={"description": "e"}))
        ok(api.call("GET", "/workflow/list"))
        ok(api.call("GET", "/workflow/info", params={"workflow_id": workflow_id}))
        work_id = ok(api.call("POST", "/work/create", json={"workflow_id": workflow_id, "name": "w",
                                                            "input_data": {}}))["work_id"]
        ok(api.call("GET", "/work/list"))
        wait_for(lambda: api.call("GET", "/work/info", params={"work_id": work_id})["work_info"]["stage"]
                 == "finished", 60, what="work to finish")
        ok(api.call("GET", "/work/info", params={"work_id": work_id}))
        rerun = ok(api.call("PUT", "/work/rerun", json={"work_id": work_id}))["work_id"]
        ok(api.call("PUT", "/work/stop", json={"work_id": rerun, "signal": -9}))

        # schedules and services
        schedule_id = ok(api.call("POST", "/schedule/create", json={
            "schedule_name": "s", "source": "application", "source_id": app_id, "cron": "0 3 * * *",
            "input_data": {}, "enable": True}))["schedule_id"]
        ok(api.call("PUT", "/schedule/update", json={"schedule_id": schedule_id, "enable": "false"}))
        ok(api.call("GET", "/schedule/list"))
        ok(api.call("GET", "/schedule/info", params={"schedule_id": schedule_id}))
        ok(api.call("GET", "/schedule/fires", params={"schedule_id": schedule_id}))
        service_id = ok(api.call("POST", "/service/create", json={
            "name": "svc", "app_id": app_id, "input_data": {"_all": {"sleep": 60}}, "enable": True}))["service_id"]
        wait_for(lambda: api.call("GET", "/service/info", params={"service_id": service_id})["service_info"]
                 ["task_id"], what="the service's task")
        ok(api.call("GET", "/service/list"))
        ok(api.call("PUT", "/service/update", json={"service_id": service_id, "enable": False}))

        # the web interface's JSON reads
        ok(api.call("GET", "/ui/api/session"))
        ok(api.call("GET", "/ui/api/cluster"))
        ok(api.call("GET", "/ui/api/tasks", params={"limit": 2}))
        ok(api.call("GET", "/ui/api/task", params={"task_id": done, "direction": "down"}))
        ok(api.call("GET", "/ui/api/workflow", params={"workflow_id": workflow_id}))
        ok(api.call("GET", "/ui/api/work", params={"work_id": work_id}))
        ok(api.call("GET", "/ui/api/schedules"))

        # error answers: the envelope, with the statuses the document names
        for method, path, params, body, status in (
                ("GET", "/app/info", {"app_id": "nope"}, None, 404),
                ("GET", "/task/info", {}, None, 400),
                ("GET", "/task/list", {"offset": "-1"}, None, 400),
                ("POST", "/task/create", None, {"app_id": 1}, 400),
                ("DELETE", "/app/history/delete", {"app_id": app_id, "history_id": history[-1]["history_id"]},
                 None, 409),
                ("GET", "/work/info", {"work_id": "nope"}, None, 404),
                ("GET", "/schedule/info", {"schedule_id": "nope"}, None, 404),
                ("GET", "/ui/api/task", {"task_id": done, "direction": "up"}, None, 400)):
            reply = api.call(method, path, params=params, json=body)
            assert reply.http_status == status and reply["result"] != "ok", (path, reply)
        anonymous = cluster.client()
        assert anonymous.cluster_info().http_status == 401
        assert anonymous.call("GET", "/openapi.json").http_status == 200   # public
        anonymous.close()

        ok(api.call("DELETE", "/service/delete", params={"service_id": service_id}))
        ok(api.call("DELETE", "/schedule/delete", params={"schedule_id": schedule_id}))
        checked = {path for _method, path, status in cluster.schema_check.checked if status < 300}
        assert cluster.schema_check.problems == []
        assert MUST_CHECK - checked == set()
