"""``litepipeline workflow|work`` and ``task list --work``: the requests they send and what they print."""
from __future__ import annotations

import json

import pytest

from litepipeline.client.cli import main
from tests.unit.test_cli import FakeManager

WORKFLOW_ID = "5b0a5a6e-3c2e-4c5e-9a55-0a4ad0c6a111"
WORK_ID = "9f1b1d43-1a4f-4f43-8b1a-3f5d1e0c2222"


@pytest.fixture
def manager():
    fake = FakeManager()
    yield fake
    fake.close()


def test_workflow_create_sends_the_file_and_enable(manager, tmp_path, capsys):
    config = {"applications": [{"name": "a", "app_id": "x", "condition": []}]}
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(config))
    manager.json("POST", "/workflow/create", {"result": "ok", "workflow_id": WORKFLOW_ID})
    assert main([manager.address, "workflow", "create", "-n", "etl", "-c", str(path), "-e", "false"]) == 0
    body = json.loads(manager.requests[-1]["body"])
    assert body == {"name": "etl", "configuration": config, "description": "", "enable": False}
    out = capsys.readouterr().out.splitlines()
    assert out[0].split(" | ")[1].strip() == "workflow_id" and WORKFLOW_ID in out[1]


def test_workflow_create_with_a_bad_file_sends_nothing(manager, tmp_path, capsys):
    path = tmp_path / "wf.json"
    path.write_text("{not json")
    assert main([manager.address, "workflow", "create", "-n", "etl", "-c", str(path)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err
    assert manager.requests == []


def test_workflow_update_sends_only_what_is_given(manager):
    manager.json("PUT", "/workflow/update", {"result": "ok", "workflow_id": WORKFLOW_ID})
    assert main([manager.address, "workflow", "update", "-w", WORKFLOW_ID, "-e", "true"]) == 0
    assert json.loads(manager.requests[-1]["body"]) == {"workflow_id": WORKFLOW_ID, "enable": True}


def test_work_list_flags_are_015s(manager, capsys):
    manager.json("GET", "/work/list", {"result": "ok", "total": 1, "works": [
        {"work_id": WORK_ID, "workflow_id": WORKFLOW_ID, "name": "n", "create_at": "c", "start_at": "s",
         "end_at": None, "stage": "finished", "status": "fail"}]})
    assert main([manager.address, "work", "list", "-w", WORK_ID, "-W", WORKFLOW_ID, "-s", "finished",
                 "-S", "fail"]) == 0
    query = manager.requests[-1]["query"]
    assert (query["work_id"], query["workflow_id"], query["stage"], query["status"]) == (
        [WORK_ID], [WORKFLOW_ID], ["finished"], ["fail"])
    lines = capsys.readouterr().out.splitlines()
    assert [c.strip() for c in lines[0].split(" | ")] == ["#", "work_id", "workflow_id", "name", "create_at",
                                                          "start_at", "end_at", "stage", "status"]
    assert WORK_ID in lines[1] and "fail" in lines[1]


@pytest.mark.parametrize("operation, method, path, extra, body", [
    ("stop", "PUT", "/work/stop", ["-g", "-9"], {"work_id": WORK_ID, "signal": -9}),
    ("stop", "PUT", "/work/stop", [], {"work_id": WORK_ID, "signal": -15}),
    ("rerun", "PUT", "/work/rerun", [], {"work_id": WORK_ID}),
    ("recover", "PUT", "/work/recover", [], {"work_id": WORK_ID}),
])
def test_work_operations_send_json_bodies(manager, operation, method, path, extra, body):
    manager.json(method, path, {"result": "ok", "work_id": WORK_ID})
    assert main([manager.address, "work", operation, "-w", WORK_ID, *extra]) == 0
    assert manager.requests[-1]["method"] == method and json.loads(manager.requests[-1]["body"]) == body


def test_work_create_and_errors(manager, capsys):
    manager.json("POST", "/work/create", {"result": "WorkflowDisabled", "message": "disabled"}, status=409)
    assert main([manager.address, "work", "create", "-w", WORKFLOW_ID, "-n", "n", "-i", '{"k": 1}']) == 1
    assert json.loads(manager.requests[-1]["body"]) == {"workflow_id": WORKFLOW_ID, "name": "n",
                                                        "input_data": {"k": 1}}
    assert "WorkflowDisabled" in capsys.readouterr().out
    assert main([manager.address, "work", "create", "-w", WORKFLOW_ID, "-n", "n", "-i", "[1]"]) == 2
    assert len(manager.requests) == 1


def test_task_list_by_work(manager):
    manager.json("GET", "/task/list", {"result": "ok", "total": 0, "tasks": []})
    assert main([manager.address, "task", "list", "--work", WORK_ID]) == 0
    assert manager.requests[-1]["query"]["work_id"] == [WORK_ID]
