"""``GET /openapi.json``: every manager route as an OpenAPI 3.1 document (SPEC §3, Part II).

The document is built once from the Python data below. Adding a route is one ``op(...)``
entry in :data:`OPERATIONS`; ``tests/unit/test_openapi.py`` compares the document with the
routes the tornado application serves and fails on any difference, either way.

Response schemas list what SPEC.md promises (required fields and their types) and leave
other properties open: new response fields are allowed by the contract.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any, Optional

from litepipeline.common.states import Stage, Status
from litepipeline.version import __version__

#: routes described before the code serving them lands (see the drift test); none today
PENDING_ROUTES: set = set()


# -- schema building blocks --------------------------------------------------------------
def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
ANY: dict = {}
OBJ = {"type": "object"}
STR_OR_NULL = {"type": ["string", "null"]}
INT_OR_NULL = {"type": ["integer", "null"]}
OBJ_OR_NULL = {"type": ["object", "null"]}
BINARY = {"type": "string", "format": "binary"}


def array(items: dict) -> dict:
    return {"type": "array", "items": items}


def obj(required: tuple = (), **props: Any) -> dict:
    """An object with these properties (others allowed: new fields are fine by SPEC)."""
    out: dict = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    return out


def ok(*required: str, **props: Any) -> dict:
    """A success envelope: ``result: "ok"`` plus ``props``; ``required`` lists the ones always there."""
    return {"allOf": [ref("Ok"), obj(required, **props)]} if props else ref("Ok")


def listing(plural: str, item: str, extra: Optional[dict] = None) -> dict:
    """A list answer: ``{<plural>: [...], total}`` (SPEC Part II)."""
    return ok(plural, "total", **{plural: array(ref(item)), "total": INT}, **(extra or {}))


# -- components ---------------------------------------------------------------------------
SCHEMAS: dict = {
    "Ok": obj(("result",), result={"const": "ok"}, message=STR),
    "Error": obj(("result", "message"), result={"type": "string", "not": {"const": "ok"},
                                               "examples": ["InvalidParameters", "AppNotExists"]},
                 message=STR, leader={"anyOf": [ref("Leader"), {"type": "null"}],
                                      "description": "a standby's answer (503 NotLeader) names the leader"}),
    "Leader": obj(("manager_id", "http_host", "http_port", "tcp_host", "tcp_port", "address", "epoch"),
                  manager_id=STR, http_host=STR, http_port=INT, tcp_host=STR, tcp_port=INT, address=STR,
                  epoch=INT),
    "Role": {"enum": ["leader", "standby", "single"],
             "description": "single: SQLite, no fail-over; leader/standby: managers sharing PostgreSQL"},
    "Time": {"type": ["string", "null"], "description": "like `2020-01-16 22:47:39.910642`; null: not yet"},
    "Stage": {"enum": [s.value for s in Stage]},
    "Status": {"enum": [s.value for s in Status] + [None], "description": "null until finished"},
    "Signal": {"description": "-9 (SIGKILL) or -15 (SIGTERM; default), as a number or a string",
               "enum": [-9, -15, "-9", "-15", 9, 15, "9", "15"]},
    "Enable": {"description": "a boolean, or the 0.1.5 client's strings", "enum": [True, False, "true", "false"]},
    "InputData": {"description": "an object, or (0.1.5) a JSON string holding one", "type": ["object", "string"]},
    "AppInfo": obj(("application_id", "name", "create_at", "update_at", "sha1", "description"),
                   application_id=STR, name=STR, create_at=ref("Time"), update_at=ref("Time"), sha1=STR,
                   description=STR),
    "VenvInfo": obj(("venv_id", "name", "create_at", "update_at", "sha1", "description"),
                    venv_id=STR, name=STR, create_at=ref("Time"), update_at=ref("Time"), sha1=STR,
                    description=STR),
    "History": obj(("history_id", "sha1", "create_at", "description"), history_id=INT, id=INT,
                   application_id=STR, venv_id=STR, sha1=STR, create_at=ref("Time"), description=STR),
    "ActionReport": obj(("name", "task_id", "stage", "status", "node_id", "start_at", "end_at", "returncode",
                         "result"),
                        name=STR, task_id=STR, stage=STR, status=STR_OR_NULL, node_id=STR_OR_NULL,
                        start_at=ref("Time"), end_at=ref("Time"), returncode=INT_OR_NULL, result=OBJ,
                        message=STR_OR_NULL, attempt=INT),
    "Task": obj(("task_id", "task_name", "application_id", "create_at", "start_at", "update_at", "end_at",
                 "stage", "status"),
                id=INT, task_id=STR, task_name=STR, application_id=STR, app_sha1=STR_OR_NULL,
                create_at=ref("Time"), start_at=ref("Time"), update_at=ref("Time"), end_at=ref("Time"),
                stage=ref("Stage"), status=ref("Status"), input_data=OBJ_OR_NULL, message=STR_OR_NULL,
                work_id=STR_OR_NULL),
    "TaskInfo": {"allOf": [ref("Task"), obj(
        ("input_data", "result"), input_data=OBJ_OR_NULL,
        result={"type": "object", "additionalProperties": ref("ActionReport")},
        waiting_for={"type": "string", "description": "why the next actions wait"},
        attempts=array(obj(("name", "attempt"), name=STR, attempt=INT, node_id=STR_OR_NULL,
                           dispatched_at=ref("Time"), start_at=ref("Time"), end_at=ref("Time"),
                           status=STR_OR_NULL, returncode=INT_OR_NULL, message=STR_OR_NULL)))]},
    "RunningAction": obj(("name", "task_id", "main", "condition", "input_data"),
                         name=STR, task_id=STR, app_id=STR, app_sha1=STR_OR_NULL, main=STR,
                         condition=array(STR), env=STR_OR_NULL, input_data=OBJ, node=STR_OR_NULL,
                         node_id=STR_OR_NULL, attempt=INT, dispatched_at=ref("Time"), start_at=ref("Time")),
    "Node": obj(("node_id", "http_host", "http_port", "action_slots"),
                node_id=STR, http_host=STR_OR_NULL, http_port=INT, action_slots=INT,
                heartbeat_interval={"type": ["number", "null"]}, heartbeat_timeout={"type": ["number", "null"]},
                data_path=STR_OR_NULL, app_path=STR_OR_NULL, python3=STR_OR_NULL, version=STR_OR_NULL),
    "Workflow": obj(("workflow_id", "name", "description", "enable", "configuration", "create_at", "update_at"),
                    workflow_id=STR, name=STR, description=STR_OR_NULL, enable=BOOL,
                    configuration=ref("WorkflowConfiguration"), create_at=ref("Time"), update_at=ref("Time")),
    "WorkflowConfiguration": obj(
        ("applications",),
        applications=array(obj(("name", "app_id"), name=STR, app_id=STR, condition=array(STR))),
        event_applications=obj(success=obj(("app_id",), app_id=STR), fail=obj(("app_id",), app_id=STR))),
    "Work": obj(("work_id", "name", "workflow_id", "create_at", "start_at", "end_at", "stage", "status",
                 "input_data", "result"),
                work_id=STR, name=STR, workflow_id=STR, create_at=ref("Time"), start_at=ref("Time"),
                update_at=ref("Time"), end_at=ref("Time"), stage=ref("Stage"), status=ref("Status"),
                message=STR_OR_NULL, input_data=OBJ_OR_NULL,
                result={"type": ["object", "null"], "additionalProperties": obj(
                    ("name",), name=STR, app_id=STR, task_id=STR_OR_NULL, stage=STR_OR_NULL,
                    status=STR_OR_NULL, result=ANY)},
                event_task_id=STR_OR_NULL, app_sha1={"type": "object", "additionalProperties": STR}),
    "Schedule": obj(("schedule_id", "schedule_name", "source", "source_id", "input_data", "enable", "cron",
                     "timezone", "catchup", "overlap", "last_fire_at"),
                    schedule_id=STR, schedule_name=STR, source={"enum": ["application", "workflow"]},
                    source_id=STR, input_data=OBJ_OR_NULL, enable=BOOL, cron=STR, minute=INT_OR_NULL,
                    hour=INT_OR_NULL, day_of_month=INT_OR_NULL, day_of_week=INT_OR_NULL, timezone=STR,
                    catchup={"enum": ["skip", "latest", "all"]}, overlap={"enum": ["allow", "skip"]},
                    create_at=ref("Time"), update_at=ref("Time"), last_fire_at=STR_OR_NULL,
                    last_target_id=STR_OR_NULL, next_fire_at=array(STR)),
    "Fire": obj(("fire_at", "source", "target_id", "outcome"), fire_at=STR, source=STR, target_id=STR_OR_NULL,
                outcome=STR, create_at=ref("Time")),
    "Service": obj(("service_id", "name", "app_id", "input_data", "signal", "enable", "restart", "task_id",
                    "stage", "status", "restarts", "last_exit", "next_start_at"),
                   service_id=STR, name=STR, app_id=STR, application_id=STR, description=STR_OR_NULL,
                   input_data=OBJ_OR_NULL, signal=INT, enable=BOOL, restart={"enum": ["always", "on-failure"]},
                   task_id=STR_OR_NULL, stage={"type": ["string", "null"]}, status={"type": ["string", "null"]},
                   restarts=INT, last_exit=STR_OR_NULL, next_start_at=ref("Time"), started_at=ref("Time"),
                   create_at=ref("Time"), update_at=ref("Time")),
    "Layout": obj(("width", "height", "nodes", "edges"), width=NUM, height=NUM, node_width=NUM, node_height=NUM,
                  nodes={"type": "object", "description": "by name: where each is drawn",
                         "additionalProperties": obj(("x", "y"), x=NUM, y=NUM, layer=INT)},
                  edges=array(obj(("from", "to", "points"), points=array(array(NUM)),
                                  **{"from": STR, "to": STR}))),
    "UiTask": obj(("id", "task_id", "task_name", "application_id", "stage", "status", "state"),
                  id=INT_OR_NULL, task_id=STR, task_name=STR, application_id=STR, create_at=ref("Time"),
                  start_at=ref("Time"), end_at=ref("Time"), stage=ref("Stage"), status=ref("Status"),
                  message=STR_OR_NULL, state=STR),
    "UiEntry": obj(("name", "app_id", "condition", "state"), name=STR, app_id=STR, condition=array(STR),
                   state=STR, task_id=STR_OR_NULL),
}

# -- request bodies -----------------------------------------------------------------------
UPLOAD_FIELDS = {"up_file": {**BINARY, "description": "the tar.gz"}, "name": STR, "description": STR}


def upload_body(id_field: Optional[str]) -> dict:
    """A multipart upload: a create needs ``up_file`` and ``name``; an update its id."""
    props = dict(UPLOAD_FIELDS)
    if id_field:
        props = {id_field: STR, **props}
    required = [id_field] if id_field else ["up_file", "name"]
    return {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "properties": props, "required": required},
        "encoding": {"up_file": {"contentType": "application/gzip, application/octet-stream"}}}}}


def json_body(required: tuple = (), **props: Any) -> dict:
    return {"required": True, "content": {"application/json": {"schema": obj(required, **props)}}}


SCHEDULE_FIELDS = dict(
    schedule_name=STR, source={"enum": ["application", "workflow"]}, source_id=STR, input_data=ref("InputData"),
    enable=ref("Enable"), cron={"type": "string", "description": "5 fields: m h dom mon dow"},
    minute=INT, hour=INT, day_of_month=INT, day_of_week={"type": "integer", "description": "0-7; 0 and 7: Sunday"},
    timezone={"type": "string", "description": "IANA name"}, catchup={"enum": ["skip", "latest", "all"]},
    overlap={"enum": ["allow", "skip"]})
SERVICE_FIELDS = dict(name=STR, app_id=STR, description=STR, input_data=ref("InputData"), signal=ref("Signal"),
                      enable=ref("Enable"), restart={"enum": ["always", "on-failure"]})
WORKFLOW_FIELDS = dict(name=STR, configuration=ref("WorkflowConfiguration"), description=STR, enable=ref("Enable"))


# -- parameters ---------------------------------------------------------------------------
def q(name: str, schema: Optional[dict] = None, required: bool = False, description: str = "") -> dict:
    out: dict = {"name": name, "in": "query", "required": required, "schema": schema or STR}
    if description:
        out["description"] = description
    return out


PAGE = (q("offset", {"type": "integer", "minimum": 0}),
        q("limit", {"type": "integer", "minimum": 0}, description="0: no limit"))
CONFIG = q("config", {"enum": ["true", "false", "1", "0"]}, description="true: add the configuration.json")
STAGE_Q = q("stage", ref("Stage"))
STATUS_Q = q("status", {"enum": [s.value for s in Status]})
ENABLE_Q = q("enable", {"enum": ["true", "false", "all"]})
DIRECTION = q("direction", {"enum": ["right", "down"]})


def need(name: str) -> dict:
    return q(name, required=True)


# -- responses ----------------------------------------------------------------------------
def json_answer(schema: dict, description: str = "answer") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR_TEXT = {400: "bad input", 401: "no or wrong token", 404: "no such object", 409: "conflicts with its state",
              413: "body too large", 503: "not available (a standby manager, or too many event streams)"}


def op(method: str, path: str, summary: str, tag: str, *, params: tuple = (), body: Optional[dict] = None,
       answer: Any = None, errors: tuple = (), public: bool = False, media: Optional[str] = None,
       status: int = 200, extra: Optional[dict] = None) -> tuple[str, str, dict]:
    """One (method, path) of the API. ``params``: its query (and header) parameters;
    ``answer``: the JSON schema of a success, or with ``media`` the schema of that content
    type; ``errors``: its specific error statuses (400, 401, 413, 503 and 5XX are added
    as they apply)."""
    if media is None:
        ok_response = json_answer(answer if answer is not None else ref("Ok"), "success")
    else:
        ok_response = {"description": "success", "content": {media: {"schema": answer or STR}}}
    responses: dict = {str(status): ok_response}
    responses.update(extra or {})
    codes = set(errors)
    if params or body:
        codes.add(400)
    if body is not None:
        codes.add(413)
    if not public:
        codes.add(401)
    codes.add(503)
    for code in sorted(codes):
        responses[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    responses["5XX"] = {"$ref": "#/components/responses/E500"}
    operation: dict = {"summary": summary, "tags": [tag], "operationId": f"{method}{path}".replace("/", "_")
                       .replace("{", "").replace("}", ""), "responses": responses}
    if params:
        operation["parameters"] = list(params)
    if body is not None:
        operation["requestBody"] = body
    if public:
        operation["security"] = []
    return method, path, operation


TAR_GZ = {"application/gzip": {"schema": BINARY}}
HTML = {"text/html": {"schema": STR}}
REDIRECT = {"description": "redirect", "headers": {"Location": {"schema": STR}}}

# -- the routes: ONE place ---------------------------------------------------------------
OPERATIONS: list[tuple[str, str, dict]] = [
    # Part I (SPEC §3)
    op("get", "/", "Service banner", "cluster", public=True,
       answer=obj(("message", "role", "leader"), message={"const": "LitePipeline manager service"},
                  role=ref("Role"), leader={"anyOf": [ref("Leader"), {"type": "null"}]})),
    op("get", "/openapi.json", "This document", "cluster", public=True,
       answer=obj(("openapi", "info", "paths"), openapi={"type": "string", "pattern": "^3\\.1\\."}, info=OBJ,
                  paths=OBJ)),
    op("get", "/metrics", "Prometheus metrics (text format)", "cluster", media="text/plain"),
    op("get", "/cluster/info", "The manager and its nodes", "cluster",
       answer={"anyOf": [ok("role", "leader", role={"const": "standby"}, leader=ref("Leader")), ok(
           "version", "info", version=STR, scheduler=OBJ, role=ref("Role"),
           leader={"anyOf": [ref("Leader"), {"type": "null"}]}, info=obj(
           ("number_of_nodes", "nodes", "manager"), number_of_nodes=INT, nodes=array(ref("Node")),
           manager=obj(("http_host", "http_port", "tcp_host", "tcp_port", "version", "data_path"),
                       http_host=STR, http_port=INT, tcp_host=STR, tcp_port=INT, version=STR, data_path=STR)))]}),
    op("post", "/app/create", "Upload a new application", "apps", body=upload_body(None), errors=(404,),
       answer=ok("app_id", app_id=STR)),
    op("get", "/app/list", "Applications, newest first", "apps", params=PAGE, answer=listing("apps", "AppInfo")),
    op("get", "/app/info", "One application", "apps", params=(need("app_id"), CONFIG), errors=(404,),
       answer=ok("app_info", app_info=ref("AppInfo"), app_config=OBJ)),
    *[op(m, "/app/update", "Change an application (a file: a new active version)", "apps",
         body=upload_body("app_id"), errors=(404,), answer=ok("app_id", app_id=STR)) for m in ("put", "post")],
    op("delete", "/app/delete", "Delete an application", "apps", params=(need("app_id"),), errors=(404, 409)),
    op("get", "/app/download", "The application tarball", "apps", params=(need("app_id"), q("sha1")),
       errors=(404,), media="application/gzip", answer=BINARY),
    op("post", "/task/create", "Start a task of an application", "tasks",
       body=json_body(("app_id", "task_name"), app_id=STR, task_name=STR, input_data=OBJ,
                      wait={"type": "number", "minimum": 0, "maximum": 600}),
       params=({"name": "Idempotency-Key", "in": "header", "required": False,
               "description": "a repeated key (within 24 h) answers the task it made; 409 for another app",
               "schema": {"type": "string", "minLength": 1, "maxLength": 255}},),
       errors=(404, 409), answer=ok("task_id", task_id=STR, task_info=ref("TaskInfo"))),
    op("get", "/task/list", "Tasks, newest first", "tasks",
       params=(*PAGE, STAGE_Q, STATUS_Q, q("app_id"), q("work_id")), answer=listing("tasks", "Task")),
    op("get", "/task/info", "One task with its actions' results", "tasks",
       params=(need("task_id"), q("wait", {"type": "number", "minimum": 0, "maximum": 600})), errors=(404,),
       answer=ok("task_info", task_info=ref("TaskInfo"), task_running_info=array(ref("RunningAction")))),
    op("delete", "/task/delete", "Delete a task", "tasks", params=(need("task_id"),), errors=(404, 409)),
    op("put", "/task/stop", "Stop a task", "tasks", body=json_body(("task_id",), task_id=STR, signal=ref("Signal")),
       errors=(404, 409)),
    op("put", "/action/update", "A node reports an action", "nodes", errors=(404, 409), body=json_body(
        ("task_id", "name", "attempt_id", "stage"), task_id=STR, name=STR, attempt_id=STR, node_id=STR,
        stage={"enum": ["running", "finished"]}, status=STR, start_at=STR, end_at=STR, returncode=INT,
        result=OBJ, message=STR, attempt=INT)),
    # the operator's toolkit
    op("get", "/task/log", "An action's stdout.data, from its node", "toolkit",
       params=(need("task_id"), need("name"), q("follow", {"enum": ["0", "1", "true", "false"]})),
       errors=(404, 409), media="application/octet-stream", answer=BINARY),
    op("get", "/task/workspace", "Workspaces of a task (or one action) as tar.gz", "toolkit",
       params=(need("task_id"), q("name")), errors=(404, 409), media="application/gzip", answer=BINARY),
    op("delete", "/task/workspace", "Delete a finished task's workspaces", "toolkit", params=(need("task_id"),),
       errors=(404, 409), answer=ok("nodes", nodes=array(STR))),
    *[op(m, "/task/rerun", "A new task with a finished task's application and input", "toolkit",
         body=json_body(("task_id",), task_id=STR), errors=(404, 409),
         answer=ok("task_id", "rerun_of", task_id=STR, rerun_of=STR)) for m in ("post", "put")],
    op("put", "/task/recover", "Run a failed or killed task again in place", "toolkit",
       body=json_body(("task_id",), task_id=STR), errors=(404, 409), answer=ok("task_id", task_id=STR)),
    # 0.1.5 workspace routes
    op("put", "/workspace/pack", "0.1.5: ok once the workspace can be downloaded", "toolkit",
       body=json_body(("task_id", "name"), task_id=STR, name=STR, force=ANY), errors=(404, 409)),
    op("get", "/workspace/download", "0.1.5: an action's workspace as tar.gz", "toolkit",
       params=(need("task_id"), need("name")), errors=(404, 409), media="application/gzip", answer=BINARY),
    op("put", "/workspace/delete", "0.1.5: delete workspaces of tasks", "toolkit",
       body=json_body(("task_ids",), task_ids={"type": ["array", "string"], "items": STR}),
       answer=ok("failed_task_ids", failed_task_ids=array(STR))),
    # §8 application versions and §9 venvs
    *[route for kind, plural in (("app", "app_histories"), ("venv", "venv_histories")) for route in (
        op("get", f"/{kind}/history/list", f"Versions of a {kind}", "versions",
           params=(need(f"{kind}_id"), *PAGE), errors=(404,), answer=listing(plural, "History")),
        op("get", f"/{kind}/history/info", f"One version of a {kind}", "versions",
           params=(need(f"{kind}_id"), q("history_id", INT, True), CONFIG), errors=(404,),
           answer=ok("history_info", history_info=ref("History"), history_config=OBJ,
                     **{f"{kind}_history": ref("History")})),
        op("put", f"/{kind}/history/activate", f"Make a version of a {kind} the active one", "versions",
           body=json_body((f"{kind}_id", "history_id"), **{f"{kind}_id": STR},
                          history_id={"type": ["integer", "string"]}),
           errors=(404,), answer=ok(f"{kind}_id", "history_id", "sha1", **{f"{kind}_id": STR}, history_id=INT,
                                    sha1=STR)),
        op("delete", f"/{kind}/history/delete", f"Delete a version of a {kind}", "versions",
           params=(need(f"{kind}_id"), q("history_id", INT, True)), errors=(404, 409)))],
    op("post", "/venv/create", "Upload a new venv", "venvs", body=upload_body(None),
       answer=ok("venv_id", venv_id=STR)),
    *[op(m, "/venv/update", "Change a venv (a file: a new active version)", "venvs", body=upload_body("venv_id"),
         errors=(404,), answer=ok("venv_id", venv_id=STR)) for m in ("put", "post")],
    op("get", "/venv/list", "Venvs, newest first", "venvs", params=PAGE, answer=listing("venvs", "VenvInfo")),
    op("get", "/venv/info", "One venv", "venvs", params=(need("venv_id"),), errors=(404,),
       answer=ok("venv_info", venv_info=ref("VenvInfo"))),
    op("get", "/venv/download", "The venv tarball", "venvs", params=(need("venv_id"), q("sha1")), errors=(404,),
       media="application/gzip", answer=BINARY),
    op("delete", "/venv/delete", "Delete a venv", "venvs", params=(need("venv_id"),), errors=(404, 409)),
    # §10 workflows and works
    op("post", "/workflow/create", "A new workflow", "workflows", errors=(404,),
       body=json_body(("name", "configuration"), **WORKFLOW_FIELDS), answer=ok("workflow_id", workflow_id=STR)),
    *[op(m, "/workflow/update", "Change a workflow (id in the body or, 0.1.5, the query)", "workflows",
         params=(q("workflow_id"),), body=json_body(workflow_id=STR, **WORKFLOW_FIELDS), errors=(404, 409),
         answer=ok("workflow_id", workflow_id=STR)) for m in ("put", "post")],
    op("get", "/workflow/list", "Workflows, newest first", "workflows",
       params=(*PAGE, q("name"), q("workflow_id"), q("id", description="0.1.5: the workflow id")),
       answer=listing("workflows", "Workflow", {"offset": INT, "limit": INT})),
    op("get", "/workflow/info", "One workflow", "workflows", params=(need("workflow_id"),), errors=(404,),
       answer=ok("workflow_info", workflow_info=ref("Workflow"), info=ref("Workflow"))),
    op("delete", "/workflow/delete", "Delete a workflow", "workflows", params=(need("workflow_id"),),
       errors=(404, 409)),
    op("post", "/work/create", "Start a work of a workflow", "works", errors=(404, 409),
       body=json_body(("workflow_id", "name"), workflow_id=STR, name=STR, input_data=OBJ),
       answer=ok("work_id", work_id=STR)),
    op("get", "/work/list", "Works, newest first", "works",
       params=(*PAGE, q("work_id"), q("workflow_id"), q("name"), STAGE_Q, STATUS_Q),
       answer=listing("works", "Work", {"offset": INT, "limit": INT})),
    op("get", "/work/info", "One work", "works", params=(need("work_id"),), errors=(404,),
       answer=ok("work_info", work_info=ref("Work"), info=ref("Work"))),
    op("delete", "/work/delete", "Delete a finished work", "works", params=(need("work_id"),), errors=(404, 409)),
    op("put", "/work/stop", "Stop every unfinished task of a work", "works", params=(q("work_id"),),
       body=json_body(work_id=STR, signal=ref("Signal")), errors=(404, 409), answer=ok("work_id", work_id=STR)),
    *[op(m, "/work/rerun", "A new work with the same workflow and input", "works", params=(q("work_id"),),
         body=json_body(work_id=STR), errors=(404, 409),
         answer=ok("work_id", "rerun_of", work_id=STR, rerun_of=STR)) for m in ("put", "post")],
    *[op(m, "/work/recover", "Run a work's failed or killed applications again", "works", params=(q("work_id"),),
         body=json_body(work_id=STR), errors=(404, 409), answer=ok("work_id", work_id=STR))
      for m in ("put", "post")],
    # §11 schedules
    op("post", "/schedule/create", "A new schedule", "schedules", errors=(404,),
       body=json_body(("schedule_name", "source", "source_id"), **SCHEDULE_FIELDS),
       answer=ok("schedule_id", schedule_id=STR)),
    *[op(m, "/schedule/update", "Change a schedule (id in the body or, 0.1.5, the query)", "schedules",
         params=(q("schedule_id"),), body=json_body(schedule_id=STR, **SCHEDULE_FIELDS), errors=(404,),
         answer=ok("schedule_id", schedule_id=STR)) for m in ("put", "post")],
    op("get", "/schedule/list", "Schedules, newest first", "schedules",
       params=(*PAGE, q("schedule_id"), q("source_id"), q("name"), ENABLE_Q), answer=listing("schedules", "Schedule")),
    op("get", "/schedule/info", "One schedule with its next fires", "schedules", params=(need("schedule_id"),),
       errors=(404,), answer=ok("schedule_info", schedule_info={
           "allOf": [ref("Schedule"), obj(("next_fire_at",), next_fire_at=array(STR))]})),
    op("delete", "/schedule/delete", "Delete a schedule", "schedules", params=(need("schedule_id"),),
       errors=(404,), answer=ok("schedule_id", schedule_id=STR)),
    op("get", "/schedule/fires", "A schedule's fires, newest first", "schedules",
       params=(need("schedule_id"), *PAGE), errors=(404,), answer=listing("fires", "Fire")),
    # §12 services
    op("post", "/service/create", "A new service", "services", errors=(404,),
       body=json_body(("name", "app_id"), **SERVICE_FIELDS), answer=ok("service_id", service_id=STR)),
    *[op(m, "/service/update", "Change a service (id in the body or, 0.1.5, the query)", "services",
         params=(q("service_id"),), body=json_body(service_id=STR, **SERVICE_FIELDS), errors=(404,),
         answer=ok("service_id", service_id=STR)) for m in ("put", "post")],
    op("get", "/service/list", "Services", "services",
       params=(*PAGE, q("service_id"), q("app_id"), q("name"), ENABLE_Q), answer=listing("services", "Service")),
    op("get", "/service/info", "One service with its task", "services", params=(need("service_id"),),
       errors=(404,), answer=ok("service_info", service_info=ref("Service"))),
    op("delete", "/service/delete", "Delete a service (its task is stopped first)", "services",
       params=(need("service_id"),), errors=(404,), answer=ok("service_id", service_id=STR)),
    # §13 the web interface
    op("get", "/ui", "Redirects to /ui/", "ui", public=True, status=302, media="text/html",
       extra={"302": REDIRECT}),
    op("get", "/ui/", "The web interface (an HTML shell; no data)", "ui", public=True, media="text/html",
       extra={"302": REDIRECT}),
    op("get", "/ui/login", "The login page", "ui", public=True, media="text/html", extra={"302": REDIRECT}),
    op("post", "/ui/login", "Exchange the token for a session cookie", "ui", public=True, status=303,
       media="text/html", extra={"303": {**REDIRECT, "description": "logged in; sets the session cookie"},
                                 "401": {"description": "wrong token: the login page again", "content": HTML}},
       body={"required": True, "content": {"application/x-www-form-urlencoded": {
           "schema": obj(("token",), token=STR)}}}),
    op("post", "/ui/logout", "Forget the session", "ui", answer=ref("Ok")),
    op("get", "/ui/api/session", "The session's CSRF value", "ui",
       answer=ok("auth", "csrf", "version", auth=BOOL, csrf=STR_OR_NULL, version=STR)),
    op("get", "/ui/api/cluster", "Nodes with their busy slots", "ui",
       answer=ok("version", "nodes", version=STR, scheduler=OBJ, nodes=array({"allOf": [ref("Node"), obj(
           ("slots_total", "slots_busy"), slots_total=INT, slots_busy=INT,
           last_heartbeat_seconds={"type": ["number", "null"]})]}))),
    op("get", "/ui/api/tasks", "One keyset page of tasks", "ui",
       params=(q("before", {"type": "integer", "minimum": 1}), q("limit", {"type": "integer", "minimum": 1,
                                                                        "maximum": 200}),
              STAGE_Q, STATUS_Q, q("app_id"), q("work_id"), q("name")),
       answer=ok("tasks", "more", "total", "next_before", tasks=array(ref("UiTask")), more=BOOL, total=INT,
                 total_capped=BOOL, next_before=INT_OR_NULL)),
    op("get", "/ui/api/task", "A task, its actions, attempts and DAG layout", "ui",
       params=(need("task_id"), DIRECTION), errors=(404,),
       answer=ok("task", "actions", "attempts", "layout", task=ref("UiTask"),
                 attempts=array(obj(("attempt_id", "name", "attempt", "node_id", "status"), attempt_id=STR, name=STR,
                                    attempt=INT, node_id=STR_OR_NULL, node=STR_OR_NULL, dispatched_at=ref("Time"),
                                    start_at=ref("Time"), end_at=ref("Time"), status=STR_OR_NULL,
                                    returncode=INT_OR_NULL, message=STR_OR_NULL)),
                 actions=array(obj(("name", "kind", "condition", "upstream", "stage", "status", "state", "attempt"),
                                   name=STR, kind=STR, parent=STR_OR_NULL, to_action=STR_OR_NULL,
                                   condition=array(STR), upstream=array(STR), main=STR, stage=ref("Stage"),
                                   status=ref("Status"), state=STR, attempt=INT, retries=INT, node_id=STR_OR_NULL,
                                   node=STR_OR_NULL, start_at=ref("Time"), end_at=ref("Time"), retry_at=ref("Time"),
                                   returncode=INT_OR_NULL, message=STR_OR_NULL)),
                 layout={"anyOf": [ref("Layout"), {"type": "null"}]})),
    op("get", "/ui/api/workflow", "A workflow and its applications' layout", "ui",
       params=(need("workflow_id"), DIRECTION), errors=(404,),
       answer=ok("workflow", "entries", "events", "layout", workflow=ref("Workflow"), entries=array(ref("UiEntry")),
                 events=array(obj(("outcome", "app_id"), outcome=STR, app_id=STR)), layout=ref("Layout"))),
    op("get", "/ui/api/work", "A work, its entries' states and tasks, the layout", "ui",
       params=(need("work_id"), DIRECTION), errors=(404,),
       answer=ok("work", "entries", "tasks", "layout", work=obj(("work_id", "stage", "state"), work_id=STR,
                                                                stage=ref("Stage"), state=STR),
                 entries=array(ref("UiEntry")), tasks=array(ref("UiTask")), layout=ref("Layout"))),
    op("get", "/ui/api/schedules", "Schedules with their next fires", "ui",
       params=(q("offset", {"type": "integer", "minimum": 0}), q("limit", {"type": "integer", "minimum": 1,
                                                                          "maximum": 200})),
       answer=listing("schedules", "Schedule", {"offset": INT, "limit": INT})),
    op("get", "/ui/events", "Server-Sent Events: what each committed round changed", "ui",
       params=(q("topic", {"enum": ["cluster", "tasks", "task", "work"]}, True), q("task_id"), q("work_id")),
       media="text/event-stream"),
    *[op(m, "/ui/static/{path}", "The pages' scripts and styles", "ui", public=True, media="*/*", answer=BINARY,
         params=(), errors=(404,)) for m in ("get", "head")],
]

ERROR_RESPONSES = {f"E{code}": json_answer(ref("Error"), text) for code, text in
                   {**ERROR_TEXT, 500: "server error (`ServerException`)"}.items()}

SECURITY_SCHEMES = {
    # common/web.py: `Authorization: Bearer <auth_token>` (needed only when auth_token is set)
    "bearerAuth": {"type": "http", "scheme": "bearer",
                   "description": "the manager's `auth_token`; not needed when none is configured"},
    # the web interface's session (ui/auth.py); changes also need its `X-CSRF-Token` header
    "uiSession": {"type": "apiKey", "in": "cookie", "name": "litepipeline_session",
                  "description": "from POST /ui/login; a change also sends X-CSRF-Token from /ui/api/session"},
}

PATH_PARAMETERS = {"/ui/static/{path}": [{"name": "path", "in": "path", "required": True, "schema": STR}]}


@lru_cache(maxsize=1)
def _document_json() -> bytes:
    paths: dict = {}
    for method, path, operation in OPERATIONS:
        item = paths.setdefault(path, {})
        if method in item:
            raise ValueError(f"{method.upper()} {path} is described twice")
        item[method] = operation
        if path in PATH_PARAMETERS:
            item["parameters"] = PATH_PARAMETERS[path]
    document = {
        "openapi": "3.1.0",
        "info": {"title": "LitePipeline manager API", "version": __version__,
                 "description": "Every JSON answer carries `result`: \"ok\" or an error name, with `message`."},
        "paths": paths,
        "components": {"schemas": SCHEMAS, "responses": ERROR_RESPONSES, "securitySchemes": SECURITY_SCHEMES},
        "security": [{"bearerAuth": []}, {"uiSession": []}],
    }
    return json.dumps(document, sort_keys=True).encode()


def document() -> dict:
    """The OpenAPI document (a fresh copy: callers may change it)."""
    return json.loads(_document_json())


def document_bytes() -> bytes:
    """What ``GET /openapi.json`` sends (built once)."""
    return _document_json()


def response_schema(doc: dict, method: str, path: str, status: int) -> Optional[dict]:
    """The JSON schema of ``method path``'s answer with ``status`` (refs resolvable against
    the returned object), or None when the document gives no JSON body for it."""
    operation = doc["paths"].get(path, {}).get(method.lower())
    if operation is None:
        return None
    responses = operation["responses"]
    response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
    if response is None:
        return None
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    media = (response.get("content") or {}).get("application/json")
    if media is None:
        return None
    schema = copy.deepcopy(media["schema"])
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "allOf": [schema],
            "components": doc["components"]}
