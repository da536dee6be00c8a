"""Unit tests of the node's executor pieces: request validation, the bash wrapper,
input.data / output.data handling."""
from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import sys
import time

import pytest

from litepipeline.common.errors import InvalidParameters
from litepipeline.common.messages import RunAction
from litepipeline.node.launcher import build_script, shell_returncode
from litepipeline.node.workspace import OutputError, Trash, Workspaces, input_document, read_output
from tests.fixtures import live_group_members

SHA1 = "a" * 40


def request(**changes):
    body = {"name": "first", "main": "python first.py", "condition": [], "env": None, "input_data": {"k": 1},
            "task_id": "t1", "app_id": "app1", "app_sha1": SHA1, "attempt_id": "att-1"}
    body.update(changes)
    return body


# -- /action/run validation ----------------------------------------------------------------
def test_action_request_defaults_and_extensions():
    req = RunAction.parse(request(app_sha1="AB" * 20, timeout=2.5, attempt=3, env="venvs/venv"))
    assert (req.name, req.task_id, req.attempt_id, req.attempt, req.timeout) == ("first", "t1", "att-1", 3, 2.5)
    assert req.app_sha1 == "ab" * 20 and req.env == "venvs/venv" and req.input_data == {"k": 1}
    req = RunAction.parse(request(input_data=None, env=""))
    assert req.attempt == 1 and req.timeout is None and req.env is None and req.input_data == {}


@pytest.mark.parametrize("changes, field", [
    ({"attempt_id": None}, "attempt_id"),
    ({"name": "../x"}, "name"),
    ({"task_id": "a/b"}, "task_id"),
    ({"app_id": ".."}, "app_id"),
    ({"main": "  "}, "main"),
    ({"app_sha1": "xyz"}, "app_sha1"),
    ({"input_data": [1]}, "input_data"),
    ({"timeout": -1}, "timeout"),
    ({"timeout": True}, "timeout"),
    ({"attempt": 0}, "attempt"),
    ({"env": "../../etc"}, "env"),
])
def test_action_request_rejects_bad_fields(changes, field):
    body = request(**changes)
    if changes.get(field, 0) is None:
        del body[field]
    with pytest.raises(InvalidParameters) as info:
        RunAction.parse(body)
    assert f"'{field}'" in info.value.message


# -- the bash wrapper ---------------------------------------------------------------------------
def test_script_quotes_paths_and_inserts_main_as_is():
    app, env, ws = "/data/apps/my app", "/data/apps/my app/venvs/v'1", "/data/ws/t 1/first"
    script = build_script(app, "python first.py --flag 'a b'", ws, env)
    assert f"cd {shlex.quote(app)} && " in script
    assert f"source {shlex.quote(env + '/bin/activate')} && " in script
    assert f"python first.py --flag 'a b' {shlex.quote(ws)}\n" in script
    assert "source" not in build_script(app, "./first", ws)
    assert build_script(app, "./first", ws).startswith("trap '__lp_stopped=1' TERM\n")


async def _spawn(tmp_path, main: str, env_dir=None):
    return await asyncio.create_subprocess_exec(
        "bash", "-c", build_script(str(tmp_path), main, str(tmp_path / "ws"), env_dir), start_new_session=True,
        stdin=asyncio.subprocess.DEVNULL)


def _live(pgid: int) -> bool:
    return bool(live_group_members(pgid))


def test_script_exit_status_is_mains(tmp_path):
    async def run(main: str) -> int:
        proc = await _spawn(tmp_path, main)
        return await proc.wait()

    assert asyncio.run(run("exit 3 #")) == 3
    assert asyncio.run(run("true")) == 0
    (tmp_path / "args.sh").write_text('echo "$@" > "$(dirname "$1")/args.txt"\n')
    assert asyncio.run(run("bash args.sh")) == 0
    assert (tmp_path / "args.txt").read_text().strip() == str(tmp_path / "ws")


def test_script_sigterm_lets_main_finish_its_cleanup(tmp_path):
    handler = ("import signal,sys,time; signal.signal(15, lambda *a: (time.sleep(0.3), sys.exit(7))); "
               "open('started','w').close(); time.sleep(30)")

    async def run() -> int:
        proc = await _spawn(tmp_path, f"{sys.executable} -c {shlex.quote(handler)} #")
        while not (tmp_path / "started").exists():
            await asyncio.sleep(0.01)
        os.killpg(proc.pid, signal.SIGTERM)
        return await proc.wait()

    started = time.monotonic()
    assert asyncio.run(run()) == 7  # bash waited for MAIN's handler and passed its status on
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("signum, expected", [(signal.SIGTERM, 143), (signal.SIGKILL, 137)])
def test_script_signals_reach_the_whole_group(tmp_path, signum, expected):
    async def run() -> tuple[int, int]:
        proc = await _spawn(tmp_path, "(sleep 30 &); sleep 30 #")
        await asyncio.sleep(0.2)
        os.killpg(proc.pid, signum)
        return proc.pid, shell_returncode(await proc.wait())

    pgid, returncode = asyncio.run(run())
    assert returncode == expected
    deadline = time.monotonic() + 2
    while _live(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    alive = _live(pgid)
    if alive:
        os.killpg(pgid, signal.SIGKILL)  # clean up, then fail
    assert not alive


def test_shell_returncode():
    assert shell_returncode(0) == 0 and shell_returncode(2) == 2 and shell_returncode(-9) == 137


# -- input.data / output.data ---------------------------------------------------------------------
def test_input_document_adds_task_id_and_workspace():
    doc = input_document("t1", "/ws", {"a": 1, "task_id": "forged"})
    assert doc == {"a": 1, "task_id": "t1", "workspace": "/ws"}


def test_prepare_writes_input_and_clears_an_earlier_attempt(tmp_path):
    async def run() -> str:
        trash = Trash(str(tmp_path / "trash"))
        workspaces = Workspaces(str(tmp_path / "workspaces"), trash)
        path = await workspaces.prepare("t1", "first", {"x": 1})
        with open(os.path.join(path, "output.data"), "w") as fp:
            fp.write("{}")
        path = await workspaces.prepare("t1", "first", {"x": 2})
        await trash.wait()
        return path

    path = asyncio.run(run())
    assert path == str(tmp_path / "workspaces" / "t1" / "first")
    assert sorted(os.listdir(path)) == ["input.data"]
    with open(os.path.join(path, "input.data")) as fp:
        assert json.load(fp) == {"x": 2, "task_id": "t1", "workspace": path}
    assert os.listdir(tmp_path / "trash") == []


def test_read_output(tmp_path):
    path = str(tmp_path / "output.data")
    assert read_output(path, 100) == {}
    (tmp_path / "output.data").write_text(json.dumps({"data": {"a": 1}}))
    assert read_output(path, 100) == {"data": {"a": 1}, "actions": []}
    (tmp_path / "output.data").write_text(json.dumps({"actions": [{"name": "x", "main": "m"}]}))
    assert read_output(path, 100) == {"data": {}, "actions": [{"name": "x", "main": "m"}]}


@pytest.mark.parametrize("content, message", [
    ("{not json", "output.data is not valid JSON: "),
    ("[1, 2]", "output.data is not valid JSON: expected an object, got list"),
    ('{"actions": {}}', "output.data 'actions' must be a list"),
    ('{"data": "' + "x" * 200 + '"}', "larger than the limit of 100 bytes"),
])
def test_read_output_rejects(tmp_path, content, message):
    (tmp_path / "output.data").write_text(content)
    with pytest.raises(OutputError) as info:
        read_output(str(tmp_path / "output.data"), 100)
    assert message in str(info.value)


def test_workspace_sweep_removes_only_old_idle_tasks(tmp_path):
    async def run() -> list:
        trash = Trash(str(tmp_path / "trash"))
        workspaces = Workspaces(str(tmp_path / "ws"), trash)
        for task in ("old", "busy", "new"):
            await workspaces.prepare(task, "a", {})
        past = time.time() - 100
        for task in ("old", "busy"):
            for path in (tmp_path / "ws" / task, tmp_path / "ws" / task / "a",
                         tmp_path / "ws" / task / "a" / "input.data"):
                os.utime(path, (past, past))
        assert await workspaces.sweep(0, lambda: set()) == 0  # retention 0 keeps everything
        removed = await workspaces.sweep(50, lambda: {"busy"})
        await trash.wait()
        assert removed == 1
        return sorted(os.listdir(tmp_path / "ws"))

    assert asyncio.run(run()) == ["busy", "new"]


def test_script_a_sigterm_before_main_starts_means_main_never_starts(tmp_path):
    # the env's activation (builtins only, 0.5 s) is where the stop lands
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "activate").write_text(
        ': > "$PWD/activating"\n'
        '__end=$(( ${EPOCHREALTIME/./} + 500000 )); while (( ${EPOCHREALTIME/./} < __end )); do :; done\n')

    async def run() -> int:
        proc = await _spawn(tmp_path, "touch main-ran; sleep 30 #", str(env))
        while not (tmp_path / "activating").exists():
            await asyncio.sleep(0.01)
        os.killpg(proc.pid, signal.SIGTERM)
        return shell_returncode(await asyncio.wait_for(proc.wait(), 10))

    assert asyncio.run(run()) == 143
    assert not (tmp_path / "main-ran").exists()
