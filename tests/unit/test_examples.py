"""Run the example applications' scripts the way a node does (SPEC §6, §7).

No cluster and no packing: each action runs as ``bash -c 'cd APP_DIR && MAIN WORKSPACE'``
with ``input.data`` written first and ``output.data`` read after. The pack scripts are
slow (venvs, PyInstaller) and are exercised by hand, not here.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
ALL_EXAMPLES = [
    "multiple_actions",
    "multiple_actions_without_venv",
    "generate_actions_dynamically",
    "multiple_actions_pyinstaller",
]
TASK_ID = "0d50caed-760b-40a5-bcc7-dcdb46960675"


@pytest.fixture
def node_path(tmp_path):
    """A PATH whose python3/python is the interpreter running the tests."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python3", "python"):
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n', encoding="utf-8")
        wrapper.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


class Node:
    """Runs actions of one application like the node's executor, minus env activation."""

    def __init__(self, app: str, root: Path, path: str, pythonpath: str | None = None):
        self.app_dir = EXAMPLES / app
        self.root = root
        self.env = {**os.environ, "PATH": path}
        self.env.pop("PYTHONPATH", None)
        if pythonpath:
            # Stands in for the app's venv, where litepipeline.action is installed.
            self.env["PYTHONPATH"] = pythonpath

    def run(self, name: str, main: str, input_data: dict, *, with_task_fields: bool = True):
        """Run one action; return (returncode, output.data content or None, stdout.data)."""
        workspace = self.root / TASK_ID / name
        workspace.mkdir(parents=True)
        payload = dict(input_data)
        if with_task_fields:
            payload.update(task_id=TASK_ID, workspace=str(workspace))
        (workspace / "input.data").write_text(json.dumps(payload), encoding="utf-8")
        command = f"cd {shlex.quote(str(self.app_dir))} && {main} {shlex.quote(str(workspace))}"
        with open(workspace / "stdout.data", "wb") as out:
            proc = subprocess.run(
                ["bash", "-c", command],
                check=False,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                timeout=60,
            )
        output_file = workspace / "output.data"
        output = json.loads(output_file.read_text(encoding="utf-8")) if output_file.exists() else None
        return proc.returncode, output, (workspace / "stdout.data").read_text(encoding="utf-8")


def load_actions(app: str) -> dict[str, dict]:
    config = json.loads((EXAMPLES / app / "configuration.json").read_text(encoding="utf-8"))
    return {action["name"]: action for action in config["actions"]}


@pytest.mark.parametrize("app", ALL_EXAMPLES)
def test_configuration_is_valid(app):
    config = json.loads((EXAMPLES / app / "configuration.json").read_text(encoding="utf-8"))
    names = [action["name"] for action in config["actions"]]
    assert len(names) == len(set(names))
    for action in config["actions"]:
        assert set(action["condition"]) <= set(names)
        program = action["main"].split()[-1]
        if program.startswith("./"):
            # A PyInstaller binary that pack.sh builds from the script of the same name.
            assert (EXAMPLES / app / (program[2:] + ".py")).is_file()
        else:
            assert (EXAMPLES / app / program).is_file()
        if "env" in action:
            assert action["env"] == "venvs/venv"


@pytest.mark.parametrize("app", ALL_EXAMPLES)
def test_pack_script_is_executable_and_strict(app):
    pack = EXAMPLES / app / "pack.sh"
    assert pack.stat().st_mode & stat.S_IXUSR
    text = pack.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert (EXAMPLES / app / "README.md").is_file()


def run_three_actions(node: Node, actions: dict[str, dict]):
    """first and second (no conditions), then third with their output data by name."""
    outputs = {}
    for name in ("first", "second"):
        assert actions[name]["condition"] == []
        rc, output, stdout = node.run(name, actions[name]["main"], {"greeting": "hi"})
        assert rc == 0, stdout
        assert output["actions"] == []
        assert f"{name}: done" in stdout
        outputs[name] = output["data"]
    assert outputs == {
        "first": {"first": "hello from first", "value": 1},
        "second": {"second": "hello from second", "value": 2},
    }
    assert actions["third"]["condition"] == ["first", "second"]
    # SPEC §7: an action with conditions gets one key per upstream action, nothing else.
    rc, output, stdout = node.run("third", actions["third"]["main"], outputs, with_task_fields=False)
    assert rc == 0, stdout
    assert output == {
        "data": {"joined": {"first": "hello from first", "second": "hello from second"}, "sum": 3},
        "actions": [],
    }


def test_multiple_actions_without_venv(tmp_path, node_path):
    actions = load_actions("multiple_actions_without_venv")
    assert all("env" not in action for action in actions.values())
    run_three_actions(Node("multiple_actions_without_venv", tmp_path, node_path), actions)


@pytest.mark.parametrize("app", ["multiple_actions", "multiple_actions_pyinstaller"])
def test_helper_based_scripts(app, tmp_path, node_path):
    # The same scripts run from the packed venv or as PyInstaller binaries; here they run
    # as plain scripts with the repository on PYTHONPATH in place of the env.
    actions = {
        name: {**action, "main": f"python3 {Path(action['main'].split()[-1]).stem}.py"}
        for name, action in load_actions(app).items()
    }
    run_three_actions(Node(app, tmp_path, node_path, pythonpath=str(REPO)), actions)


def run_generated(node: Node, count_input: dict):
    """Run first, every generated second_NNN, then third; return (first, third) outputs."""
    actions = load_actions("generate_actions_dynamically")
    rc, first, stdout = node.run("first", actions["first"]["main"], count_input)
    assert rc == 0, stdout
    third_input = {"first": first["data"]}
    for generated in first["actions"]:
        # A generated action without conditions gets task_id/workspace plus its input_data.
        rc, output, stdout = node.run(generated["name"], generated["main"], generated["input_data"])
        assert rc == 0, stdout
        assert output["actions"] == []
        third_input[generated["name"]] = output["data"]
    assert actions["third"]["condition"] == ["first"]
    rc, third, stdout = node.run("third", actions["third"]["main"], third_input, with_task_fields=False)
    assert rc == 0, stdout
    return first, third


def test_generate_actions_dynamically(tmp_path, node_path):
    node = Node("generate_actions_dynamically", tmp_path, node_path)
    first, third = run_generated(node, {"count": 4})
    names = ["second_000", "second_001", "second_002", "second_003"]
    assert first["data"] == {"count": 4, "generated": names}
    assert first["actions"] == [
        {
            "name": name,
            "main": "python3 second.py",
            "condition": [],
            "input_data": {"index": i},
            "to_action": "third",
        }
        for i, name in enumerate(names)
    ]
    assert third == {
        "data": {
            "count": 4,
            "results": [{"index": i, "square": i * i} for i in range(4)],
            "sum_of_squares": 0 + 1 + 4 + 9,
        },
        "actions": [],
    }


def test_generate_actions_dynamically_default_count(tmp_path, node_path):
    first, third = run_generated(Node("generate_actions_dynamically", tmp_path, node_path), {})
    assert first["data"]["generated"] == ["second_000", "second_001", "second_002"]
    assert third["data"]["results"] == [{"index": i, "square": i * i} for i in range(3)]


def test_generate_actions_dynamically_zero_count(tmp_path, node_path):
    first, third = run_generated(Node("generate_actions_dynamically", tmp_path, node_path), {"count": 0})
    assert first["actions"] == []
    assert third["data"] == {"count": 0, "results": [], "sum_of_squares": 0}


@pytest.mark.parametrize("count", [-1, "3", 2.5, True, 1001])
def test_generate_actions_dynamically_bad_count_fails(tmp_path, node_path, count):
    node = Node("generate_actions_dynamically", tmp_path, node_path)
    rc, output, stdout = node.run("first", "python3 first.py", {"count": count})
    assert rc != 0
    assert output is None
    assert "count must be" in stdout


def test_generate_actions_dynamically_third_fails_on_missing_upstream(tmp_path, node_path):
    node = Node("generate_actions_dynamically", tmp_path, node_path)
    third_input = {
        "first": {"count": 2, "generated": ["second_000", "second_001"]},
        "second_000": {"index": 0, "square": 0},
    }
    rc, output, stdout = node.run("third", "python3 third.py", third_input, with_task_fields=False)
    assert rc != 0 and output is None
    assert "second_001" in stdout


SHARED_VENV_APPS = ["shared_venv/hello", "shared_venv/stats"]


def test_shared_venv_example_files():
    pack = EXAMPLES / "shared_venv" / "pack.sh"
    assert pack.stat().st_mode & stat.S_IXUSR
    text = pack.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert (EXAMPLES / "shared_venv" / "README.md").is_file()
    for app in SHARED_VENV_APPS:
        for action in load_actions(app).values():
            # pack.sh writes the venv's id in place of the placeholder
            assert action["env"] == "VENV_ID"
            assert (EXAMPLES / app / action["main"].split()[-1]).is_file()


def test_shared_venv_example_scripts(tmp_path, node_path):
    # The repository on PYTHONPATH stands in for the shared venv (it holds the helper).
    hello = Node("shared_venv/hello", tmp_path / "hello", node_path, pythonpath=str(REPO))
    rc, output, stdout = hello.run("greet", "python3 greet.py", {"name": "you"})
    assert rc == 0, stdout
    assert output["data"]["greeting"] == "hello, you"
    stats = Node("shared_venv/stats", tmp_path / "stats", node_path, pythonpath=str(REPO))
    rc, produced, stdout = stats.run("produce", "python3 produce.py", {"count": 4})
    assert rc == 0, stdout
    assert produced["data"] == {"numbers": [1, 2, 3, 4]}
    rc, output, stdout = stats.run("summary", "python3 summary.py", {"produce": produced["data"]},
                                   with_task_fields=False)
    assert rc == 0, stdout
    assert output["data"] == {"count": 4, "mean": 2.5, "median": 2.5}
    bad = Node("shared_venv/stats", tmp_path / "bad", node_path, pythonpath=str(REPO))
    rc, output, stdout = bad.run("produce", "python3 produce.py", {"count": 0})
    assert rc != 0 and output is None and "count must be" in stdout
