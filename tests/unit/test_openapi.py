"""The OpenAPI document (manager/openapi.py) against the routes the manager really serves."""
from __future__ import annotations

import re
from types import SimpleNamespace

import jsonschema
import pytest
import tornado.web
from openapi_spec_validator import validate

from litepipeline.manager import openapi
from litepipeline.manager.metrics import ManagerMetrics
from litepipeline.manager.server import application
from litepipeline.manager.ui.app import WebUI

METHODS = ("get", "head", "post", "put", "delete", "patch", "options")
GROUP = re.compile(r"\((?:\?P<(\w+)>)?[^)]*\)")


def served_app() -> tornado.web.Application:
    """The manager's tornado Application, built as server.py builds it (with a stand-in Manager:
    building the routes only stores it)."""
    manager = SimpleNamespace(config=SimpleNamespace(auth_token=None),
                              dispatcher=SimpleNamespace(saved_listeners=[]),
                              cluster=SimpleNamespace(listeners=[]))
    return application(manager, WebUI(manager), ManagerMetrics(SimpleNamespace(tasks={}), process=False))


def to_openapi_path(regex: str) -> str:
    """``/ui/static/(.*)$`` -> ``/ui/static/{path}``: a regex group becomes a path parameter
    (named by the group, or ``path`` as tornado's StaticFileHandler calls its argument)."""
    regex = regex.rstrip("$")
    return GROUP.sub(lambda m: "{" + (m.group(1) or "path") + "}", regex)


def served_operations(app: tornado.web.Application) -> set:
    """(method, path) for every route: the HTTP methods its handler class defines itself."""
    found = set()
    for rule in app.wildcard_router.rules:
        handler = rule.target
        path = to_openapi_path(rule.matcher.regex.pattern)
        for method in METHODS:
            if getattr(handler, method) is not getattr(tornado.web.RequestHandler, method):
                found.add((method, path))
    return found


def documented_operations(doc: dict) -> set:
    return {(m, path) for path, item in doc["paths"].items() for m in item if m in METHODS}


def test_to_openapi_path():
    assert to_openapi_path(r"/ui/static/(.*)$") == "/ui/static/{path}"
    assert to_openapi_path(r"/x/(?P<task_id>[^/]+)/log$") == "/x/{task_id}/log"
    assert to_openapi_path(r"/task/info$") == "/task/info"


def test_document_lists_exactly_the_served_routes():
    """Fails on a route the document lacks, or a documented one nothing serves.

    PENDING_ROUTES are described ahead of the branch that adds them; once served they are
    compared like the rest.
    """
    served = served_operations(served_app())
    documented = documented_operations(openapi.document())
    expected = documented - (openapi.PENDING_ROUTES - served)
    assert served - expected == set(), "served but not described: add op(...) to OPERATIONS in manager/openapi.py"
    assert expected - served == set(), "described in manager/openapi.py's OPERATIONS but not served"
    # the walk itself sees what it must: a sample of routes, methods, and the static files' HEAD
    assert {("post", "/app/update"), ("put", "/app/update"), ("get", "/openapi.json"),
            ("head", "/ui/static/{path}"), ("delete", "/task/workspace")} <= served
    assert ("post", "/task/stop") not in served


def test_drift_check_fails_on_an_undocumented_route():
    app = served_app()

    class Extra(tornado.web.RequestHandler):
        def patch(self) -> None:
            pass

    app.wildcard_router.add_rules([(r"/brand/new", Extra)])
    served = served_operations(app)
    assert ("patch", "/brand/new") in served - documented_operations(openapi.document())


def test_document_is_valid_openapi_31():
    doc = openapi.document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)   # openapi-spec-validator: raises on any error


def test_every_protected_route_declares_the_token_and_its_errors():
    doc = openapi.document()
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    public = {(m, p) for p, item in doc["paths"].items() for m, o in item.items()
              if m in METHODS and o.get("security") == []}
    assert ("get", "/openapi.json") in public and ("get", "/") in public
    assert ("get", "/cluster/info") not in public and ("get", "/metrics") not in public
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            codes = operation["responses"]
            assert "5XX" in codes, (method, path)
            if (method, path) not in public:
                assert "401" in codes, (method, path)


def check(doc: dict, method: str, path: str, status: int, body: dict) -> None:
    jsonschema.Draft202012Validator(openapi.response_schema(doc, method, path, status)).validate(body)


def test_response_schemas_mean_something():
    doc = openapi.document()
    app = {"application_id": "a", "name": "n", "create_at": "2020-01-16 22:47:39.910642", "update_at": None,
           "sha1": "0" * 40, "description": ""}
    check(doc, "get", "/app/info", 200, {"result": "ok", "app_info": app})
    with pytest.raises(jsonschema.ValidationError):   # a required field missing
        check(doc, "get", "/app/info", 200, {"result": "ok", "app_info": {**app, "sha1": None}})
    with pytest.raises(jsonschema.ValidationError):
        check(doc, "get", "/app/info", 200, {"result": "ok"})
    with pytest.raises(jsonschema.ValidationError):   # a success must say ok
        check(doc, "get", "/app/list", 200, {"result": "AppNotExists", "apps": [], "total": 0})
    check(doc, "get", "/app/info", 404, {"result": "AppNotExists", "message": "no"})
    with pytest.raises(jsonschema.ValidationError):   # an error names itself, with a message
        check(doc, "get", "/app/info", 404, {"result": "ok"})
    leader = {"manager_id": "m", "http_host": "h", "http_port": 1, "tcp_host": "h", "tcp_port": 2, "address": "h:1",
              "epoch": 3}
    check(doc, "get", "/task/list", 503, {"result": "NotLeader", "message": "standby", "leader": leader})
    check(doc, "get", "/task/list", 503, {"result": "NotLeader", "message": "no manager leads", "leader": None})
    with pytest.raises(jsonschema.ValidationError):   # the leader is named whole
        check(doc, "get", "/task/list", 503, {"result": "NotLeader", "message": "standby", "leader": "h:1"})
    check(doc, "get", "/cluster/info", 200, {"result": "ok", "role": "standby", "leader": leader})
    assert openapi.response_schema(doc, "get", "/app/download", 200) is None   # bytes, not JSON
    assert openapi.response_schema(doc, "get", "/app/download", 404) is not None


def test_document_is_served_public_and_identical_each_time():
    assert openapi.document_bytes() is openapi.document_bytes()
    doc = openapi.document()
    doc["paths"].clear()   # a copy: changing it changes nothing served
    assert openapi.document()["paths"]


def schemas_in(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from schemas_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from schemas_in(value)


def test_required_fields_are_declared_properties():
    """openapi-spec-validator lets a malformed ``required`` through; schemathesis does not."""
    doc = openapi.document()
    seen = 0
    for schema in schemas_in(doc):
        required = schema.get("required")
        if isinstance(required, list) and schema.get("type") == "object":
            seen += 1
            assert all(isinstance(name, str) for name in required), required
            assert set(required) <= set(schema.get("properties", {})), required
    assert seen > 30


def fake_response(method: str, path: str, status: int, body, content_type: str = "application/json"):
    import json as json_

    import requests

    response = requests.Response()
    response.status_code = status
    response.headers["Content-Type"] = content_type
    response._content = json_.dumps(body).encode()
    response.request = requests.Request(method, f"http://127.0.0.1:1{path}?x=1").prepare()
    return response


def test_the_harness_check_flags_answers_the_document_does_not_allow():
    from tests.e2e.harness import SchemaCheck

    check = SchemaCheck()
    check(fake_response("GET", "/task/list", 200, {"result": "ok", "tasks": [], "total": 0}))
    check(fake_response("GET", "/app/download", 200, None, "application/gzip"))   # bytes: not checked
    check(fake_response("GET", "/no/such/route", 404, {"result": "NotFound", "message": "x"}))
    assert check.problems == [] and ("get", "/task/list", 200) in check.checked
    check(fake_response("GET", "/task/list", 200, {"result": "ok", "tasks": [{"task_id": 1}], "total": 0}))
    check(fake_response("GET", "/cluster/info", 418, {"result": "Teapot", "message": "x"}))
    assert check.problems[0].startswith("GET /task/list 200 at tasks/0")   # task_id a number, fields missing
    assert any("'task_name' is a required property" in p for p in check.problems)
    assert check.problems[-1] == "GET /cluster/info 418: not in /openapi.json"
