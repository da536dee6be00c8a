"""Unit tests for litepipeline.action, the helper imported by action scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from litepipeline.action import INPUT_FILE, OUTPUT_FILE, Action


def write_input(workspace, payload: dict) -> None:
    (workspace / INPUT_FILE).write_text(json.dumps(payload), encoding="utf-8")


def read_output(workspace) -> dict:
    return json.loads((workspace / OUTPUT_FILE).read_text(encoding="utf-8"))


def test_to_dict_minimal_omits_unset_optional_keys():
    assert Action("first", "python first.py").to_dict() == {
        "name": "first",
        "main": "python first.py",
        "condition": [],
        "input_data": {},
    }


def test_to_dict_full():
    action = Action(
        "second_000",
        "python second.py",
        condition=["first"],
        env="venvs/venv",
        input_data={"index": 0},
        to_action="third",
        timeout=30,
        retries=2,
        retry_delay=0.5,
    )
    assert action.to_dict() == {
        "name": "second_000",
        "main": "python second.py",
        "condition": ["first"],
        "env": "venvs/venv",
        "input_data": {"index": 0},
        "to_action": "third",
        "timeout": 30,
        "retries": 2,
        "retry_delay": 0.5,
    }


def test_arguments_are_copied_not_shared():
    condition, input_data = ["first"], {"k": 1}
    a = Action("a", "python a.py", condition=condition, input_data=input_data)
    b = Action("b", "python b.py")
    condition.append("other")
    input_data["k"] = 2
    a.to_dict()["condition"].append("x")
    assert a.condition == ["first"] and a.input_data == {"k": 1}
    assert b.condition == [] and b.input_data == {}


def test_positional_arguments_match_the_original_api():
    action = Action("x", "python x.py", ["first"], "venvs/venv", {"a": 1}, "third")
    assert action.to_dict()["env"] == "venvs/venv"
    assert action.to_dict()["to_action"] == "third"


@pytest.mark.parametrize("name", ["", None, 3, "a/b", "a\\b", "..", "a..b", "a\x00b"])
def test_invalid_name_rejected(name):
    with pytest.raises(ValueError):
        Action(name, "python x.py")


@pytest.mark.parametrize("main", ["", "   ", None, ["python", "x.py"]])
def test_invalid_main_rejected(main):
    with pytest.raises(ValueError):
        Action("x", main)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"condition": "first"},  # a bare string, not a list
        {"condition": ["ok", "bad/name"]},
        {"to_action": "../third"},
        {"input_data": ["not", "a", "dict"]},
        {"env": ""},
        {"env": "/abs/venv"},
        {"env": "../venv"},
        {"timeout": 0},
        {"timeout": -1},
        {"timeout": True},
        {"retries": 1.5},
        {"retries": -1},
        {"retry_delay": "1"},
    ],
)
def test_invalid_optional_fields_rejected(kwargs):
    with pytest.raises(ValueError):
        Action("x", "python x.py", **kwargs)


def test_round_trip_through_workspace(tmp_path):
    write_input(tmp_path, {"task_id": "t1", "workspace": str(tmp_path), "count": 2})
    workspace, input_data = Action.get_input(str(tmp_path))
    assert workspace == str(tmp_path)
    assert input_data == {"task_id": "t1", "workspace": str(tmp_path), "count": 2}

    path = Action.set_output(
        data={"answer": 42},
        actions=[
            Action("second_000", "python second.py", input_data={"index": 0}, to_action="third"),
            {"name": "second_001", "main": "python second.py", "condition": [], "input_data": {}},
        ],
        workspace=tmp_path,
    )
    assert path == os.path.join(str(tmp_path), OUTPUT_FILE)
    assert read_output(tmp_path) == {
        "data": {"answer": 42},
        "actions": [
            {
                "name": "second_000",
                "main": "python second.py",
                "condition": [],
                "input_data": {"index": 0},
                "to_action": "third",
            },
            {"name": "second_001", "main": "python second.py", "condition": [], "input_data": {}},
        ],
    }


def test_set_output_defaults(tmp_path):
    Action.set_output(workspace=tmp_path)
    assert read_output(tmp_path) == {"data": {}, "actions": []}


def test_set_output_replaces_previous_output(tmp_path):
    Action.set_output(data={"n": 1}, workspace=tmp_path)
    Action.set_output(data={"n": 2}, workspace=tmp_path)
    assert read_output(tmp_path)["data"] == {"n": 2}


def test_workspace_defaults_to_argv1(tmp_path, monkeypatch):
    write_input(tmp_path, {"task_id": "t2", "workspace": str(tmp_path)})
    monkeypatch.setattr(sys, "argv", ["first.py", str(tmp_path)])
    workspace, input_data = Action.get_input()
    assert workspace == str(tmp_path) and input_data["task_id"] == "t2"
    Action.set_output(data={"ok": True})
    assert read_output(tmp_path)["data"] == {"ok": True}


def test_missing_workspace_argument_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["first.py"])
    with pytest.raises(ValueError, match="workspace"):
        Action.get_input()


def test_atomic_write_leaves_only_output_file(tmp_path):
    Action.set_output(data={"x": 1}, workspace=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [OUTPUT_FILE]
    assert oct((tmp_path / OUTPUT_FILE).stat().st_mode & 0o777) == oct(0o644)


def test_unserializable_data_leaves_no_file(tmp_path):
    with pytest.raises(TypeError):
        Action.set_output(data={"x": object()}, workspace=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_output_and_no_temp_file(tmp_path, monkeypatch):
    Action.set_output(data={"n": 1}, workspace=tmp_path)

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        Action.set_output(data={"n": 2}, workspace=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [OUTPUT_FILE]
    assert read_output(tmp_path)["data"] == {"n": 1}


@pytest.mark.parametrize(
    "bad",
    [
        "second",  # not an Action or dict
        {"main": "python x.py"},  # no name
        {"name": "a/b", "main": "python x.py"},
        {"name": "x", "main": ""},
    ],
)
def test_set_output_rejects_bad_actions(tmp_path, bad):
    with pytest.raises((TypeError, ValueError)):
        Action.set_output(actions=[bad], workspace=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.version_info < (3, 10), reason="needs sys.stdlib_module_names")
def test_module_uses_only_the_standard_library():
    # Action scripts import this inside bare app venvs: importing it must not pull in
    # any third-party package (tornado, yaml, sqlalchemy...).
    code = (
        "import sys; before = set(sys.modules); import litepipeline.action; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "std = set(sys.stdlib_module_names) | {'litepipeline'}; "
        "print(sorted(new - std))"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_generated_action_carries_its_target():
    action = Action("train", "python train.py", target={"labels": {"gpu": "a100"}})
    assert action.to_dict()["target"] == {"labels": {"gpu": "a100"}}
    assert "target" not in Action("x", "run").to_dict()
    with pytest.raises(ValueError, match="target must be a dict"):
        Action("x", "run", target="gpu")
