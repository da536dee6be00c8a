"""``litepipeline`` for scripts and terminals: --json, -q, global options anywhere, --help,
--long, completion (against the canned-answer manager of test_cli)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from litepipeline.client import scripting
from litepipeline.client.cli import OPERATIONS, Operation, build_parser, main
from tests.unit.test_cli import APP_ID, TASK_ID, TASK_INFO, FakeManager

APPS = [{"application_id": APP_ID, "name": "demo", "create_at": "2020-01-16 22:44:10.886778",
         "update_at": "2020-01-16 22:44:10.886778", "sha1": "a" * 40, "description": "two\nlines"},
        {"application_id": "b2", "name": "other", "create_at": "c", "update_at": "u", "sha1": "b" * 40,
         "description": ""}]
LITEPIPELINE = os.path.join(os.path.dirname(sys.executable), "litepipeline")


@pytest.fixture
def manager():
    fake = FakeManager()
    yield fake
    fake.close()


# -- global options before or after the operation ---------------------------------------------


@pytest.mark.parametrize("argv", [
    ["-r", "-w", "5", "--token", "t", "--timeout", "3", "h:1", "task", "info", "-t", TASK_ID],
    ["h:1", "task", "info", "-t", TASK_ID, "-r", "-w", "5", "--token", "t", "--timeout", "3"],
    ["h:1", "task", "-r", "--width", "5", "info", "--token=t", "-t", TASK_ID, "--timeout", "3"],
    ["h:1", "-r", "-w", "5", "task", "info", "-t", TASK_ID, "--token", "t", "--timeout", "3"],
])
def test_global_options_anywhere(argv):
    args = build_parser().parse_args(argv)
    assert (args.raw, args.width, args.token, args.timeout, args.task_id) == (True, 5, "t", 3.0, TASK_ID)
    assert (args.json, args.quiet) == (False, False)


def test_global_options_given_before_survive_the_operation_parser(monkeypatch):
    monkeypatch.setenv("LITEPIPELINE_TOKEN", "env-token")
    args = build_parser().parse_args(["--json", "-q", "-w", "9", "h:1", "app", "list"])
    assert (args.json, args.quiet, args.width, args.token, args.timeout) == (True, True, 9, "env-token", 30.0)


def test_an_operation_keeps_its_own_short_flag(monkeypatch):
    """A later operation using ``-w`` for itself (0.1.5's ``work info -w WORK_ID``) keeps it."""
    def args(p):
        p.add_argument("-w", "--work_id", required=True)

    monkeypatch.setitem(OPERATIONS, ("work", "info"), Operation("show one work", args,
                                                                lambda c, a: c.call("GET", "/work/info"),
                                                                ("work_id", "name")))
    parsed = build_parser().parse_args(["-w", "4", "h:1", "work", "info", "-w", "W1", "--width", "7", "-q"])
    assert (parsed.work_id, parsed.width, parsed.quiet) == ("W1", 7, True)


# -- --json and -q -------------------------------------------------------------------------------


def test_json_prints_the_answer_on_one_line(manager, capsys):
    answer = {"result": "ok", "apps": APPS, "total": 2}
    manager.json("GET", "/app/list", answer)
    assert main([manager.address, "app", "list", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out) == answer
    assert main(["--json", manager.address, "app", "list"]) == 0
    assert json.loads(capsys.readouterr().out) == answer


def test_json_of_an_error_answer_exits_1(manager, capsys):
    manager.json("GET", "/task/info", {"result": "TaskNotExists", "message": "task x does not exist"}, status=404)
    assert main([manager.address, "task", "info", "-t", "x", "--json"]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == {"result": "TaskNotExists", "message": "task x does not exist"}


def test_quiet_prints_listed_ids(manager, capsys):
    manager.json("GET", "/app/list", {"result": "ok", "apps": APPS})
    manager.json("GET", "/task/list", {"result": "ok", "tasks": [TASK_INFO, dict(TASK_INFO, task_id="t2")]})
    manager.json("GET", "/cluster/info", {"result": "ok", "info": {"nodes": [{"node_id": "n1"}, {"node_id": "n2"}]}})
    assert main([manager.address, "app", "list", "-q"]) == 0
    assert capsys.readouterr().out.splitlines() == [APP_ID, "b2"]
    assert main(["-q", manager.address, "task", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [TASK_ID, "t2"]
    assert main([manager.address, "cluster", "info", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n1", "n2"]


def test_quiet_prints_the_created_id(manager, capsys):
    manager.json("POST", "/task/create", {"result": "ok", "task_id": TASK_ID, "message": ""})
    assert main([manager.address, "task", "create", "-a", APP_ID, "-n", "x", "-q"]) == 0
    assert capsys.readouterr().out == TASK_ID + "\n"


def test_quiet_error_goes_to_stderr_only(manager, capsys):
    manager.json("GET", "/app/info", {"result": "AppNotExists", "message": "no such app"}, status=404)
    assert main([manager.address, "app", "info", "-a", "nope", "-q"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "litepipeline: error: AppNotExists: no such app\n"


def test_quiet_without_an_id_prints_nothing(manager, capsys):
    manager.json("DELETE", "/task/delete", {"result": "ok", "message": "deleted"})
    assert main([manager.address, "task", "delete", "-t", TASK_ID, "-q"]) == 0
    assert capsys.readouterr().out == ""


def test_quiet_attempts_prints_attempt_ids(manager, capsys):
    attempts = [{"attempt_id": "a1", "name": "first", "node_id": "n1"}, {"attempt_id": "a2", "name": "first"}]
    manager.json("GET", "/task/info", {"result": "ok", "task_info": dict(TASK_INFO, attempts=attempts)})
    assert main([manager.address, "task", "attempts", "-t", TASK_ID, "-q"]) == 0
    assert capsys.readouterr().out.splitlines() == ["a1", "a2"]


@pytest.mark.parametrize("columns, explicit, expected", [
    (("app_id", "result", "message"), None, "app_id"),
    (("history_id", "application_id", "sha1"), None, "history_id"),
    (("name", "attempt", "node_id"), "attempt_id", "attempt_id"),
    (("result", "message"), None, None),
])
def test_id_key_is_derived_from_the_columns(columns, explicit, expected):
    assert scripting.id_key(columns, explicit) == expected


def test_ids_skip_items_without_one():
    assert scripting.ids([{"x_id": 1}, {"x_id": None}, {"x_id": ""}, "junk", {"y": 2}, {"x_id": "b"}],
                         "x_id") == ["1", "b"]
    # no *_id column: an item's one *_id key, if it has exactly one
    assert scripting.ids([{"result": "ok", "work_id": "w1"}, {"a_id": 1, "b_id": 2}, {"result": "ok"}], None) == \
        ["w1"]


def test_quiet_for_an_operation_without_id_columns(manager, capsys, monkeypatch):
    monkeypatch.setitem(OPERATIONS, ("work", "rerun"), Operation("rerun a work", lambda p: None,
                                                                 lambda c, a: c.call("PUT", "/work/rerun")))
    manager.json("PUT", "/work/rerun", {"result": "ok", "message": "", "work_id": "w2"})
    assert main([manager.address, "work", "rerun", "-q"]) == 0
    assert capsys.readouterr().out == "w2\n"


# -- --help, --long --------------------------------------------------------------------------------


def test_help_lists_every_operation_and_the_exit_codes(capsys, monkeypatch):
    monkeypatch.setitem(OPERATIONS, ("venv", "list"), Operation("list venvs", lambda p: None,
                                                                lambda c, a: c.call("GET", "/venv/list")))
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for (obj, name), operation in OPERATIONS.items():
        line = next(line for line in out.splitlines() if line.startswith(f"  {obj} {name} "))
        assert line.rstrip().endswith(operation.help)
    objects = list(dict.fromkeys(obj for obj, _ in OPERATIONS))
    assert "{" + ",".join(objects) + "}" in out and objects[:3] == ["app", "task", "cluster"] and "venv" in objects
    assert "0  success" in out and "1  the manager answered an error" in out and "2  usage error" in out
    for option in ("--json", "-q, --quiet", "-r, --raw", "--token"):
        assert option in out


def test_app_list_long_adds_sha1_and_description(manager, capsys):
    manager.json("GET", "/app/list", {"result": "ok", "apps": APPS})
    assert main([manager.address, "app", "list", "--long"]) == 0
    header, first, second = capsys.readouterr().out.splitlines()
    assert [c.strip() for c in header.split(" | ")] == ["#", "application_id", "name", "create_at", "update_at",
                                                        "sha1", "description"]
    assert first.endswith(f"| {'a' * 40} | two lines")
    assert second.endswith(f"| {'b' * 40} |")


def test_task_list_long_still_adds_duration_and_message(manager, capsys):
    manager.json("GET", "/task/list", {"result": "ok", "tasks": [dict(TASK_INFO, stage="finished",
                                                                     end_at="2020-01-16 22:47:42.792083")]})
    assert main([manager.address, "task", "list", "--long"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split(" | ")[-2:] == ["duration", "message"]
    assert "| 2.000s" in row


# -- completion ------------------------------------------------------------------------------------


def test_completion_prints_a_bash_script(capsys):
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert "complete " in script and "litepipeline" in script
    if shutil.which("bash"):
        check = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr
    assert main(["completion"]) == 0
    assert capsys.readouterr().out == script            # bash is the default
    assert main(["completion", "zsh"]) == 0 and "compdef" in capsys.readouterr().out
    assert main(["completion", "ksh"]) == 2


def _complete(tmp_path, line: str) -> list[str]:
    """Ask the installed ``litepipeline`` for completions the way the shell hook does."""
    out = tmp_path / "completions"
    env = dict(os.environ, _ARGCOMPLETE="1", COMP_LINE=line, COMP_POINT=str(len(line)), _ARGCOMPLETE_IFS="\n",
               _ARGCOMPLETE_STDOUT_FILENAME=str(out))
    subprocess.run([LITEPIPELINE], env=env, capture_output=True, timeout=60, check=True, cwd=tmp_path)
    return sorted(out.read_text().split())


@pytest.mark.skipif(not os.path.exists(LITEPIPELINE), reason="the litepipeline console script is not installed")
def test_completion_of_objects_operations_and_options(tmp_path):
    assert _complete(tmp_path, "litepipeline 127.0.0.1:8000 ta") == ["task"]
    (tmp_path / "127.0.0.1-notes.txt").write_text("")
    assert _complete(tmp_path, "litepipeline 127") == []            # the address is not a file name
    assert {"run", "recover", "rerun"} <= set(_complete(tmp_path, "litepipeline 127.0.0.1:8000 task r"))
    assert _complete(tmp_path, "litepipeline 127.0.0.1:8000 task list --st") == ["--stage", "--status"]
    assert _complete(tmp_path, "litepipeline 127.0.0.1:8000 task list -s ") == sorted(
        ["pending", "running", "stopping", "finished"])
    assert "--json" in _complete(tmp_path, "litepipeline 127.0.0.1:8000 app list --")



# -- messages that say what to do ------------------------------------------------------------------


def test_401_mentions_token_flag_and_variable(manager, monkeypatch, capsys):
    monkeypatch.delenv("LITEPIPELINE_TOKEN", raising=False)
    manager.json("GET", "/app/list", {"result": "Unauthorized", "message": "missing or wrong token"}, status=401)
    assert main([manager.address, "app", "list"]) == 1
    captured = capsys.readouterr()
    assert "Unauthorized" in captured.out
    assert captured.err == ("litepipeline: error: the manager needs an API token: pass --token TOKEN or set "
                            "LITEPIPELINE_TOKEN (the auth_token of the manager's configuration)\n")
    assert main([manager.address, "app", "list", "--token", "wrong", "-q"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["litepipeline: error: Unauthorized: missing or wrong token",
                   "litepipeline: error: the manager refused the token given (--token or $LITEPIPELINE_TOKEN); "
                   "use the auth_token of the manager's configuration"]


def test_task_run_says_why_it_exits_1(manager, capsys):
    pending = dict(TASK_INFO, stage="pending", start_at=None, waiting_for="no node is registered: start a litenode")
    manager.json("POST", "/task/create", {"result": "ok", "task_id": TASK_ID, "task_info": pending})
    manager.json("GET", "/task/info", {"result": "ok", "task_info": pending})
    assert main([manager.address, "task", "run", "-a", APP_ID, "-n", "x", "--wait", "0"]) == 1
    captured = capsys.readouterr()
    assert "| pending |" in captured.out
    assert captured.err == (f"litepipeline: error: task {TASK_ID} is still pending: no node is registered: "
                            f"start a litenode\n")

    failed = dict(TASK_INFO, stage="finished", status="fail", message="action 'a' failed: boom")
    manager.json("POST", "/task/create", {"result": "ok", "task_id": TASK_ID, "task_info": failed})
    assert main([manager.address, "task", "run", "-a", APP_ID, "-n", "x", "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["task_info"]["status"] == "fail"
    assert captured.err == f"litepipeline: error: task {TASK_ID} ended fail: action 'a' failed: boom\n"

    done = dict(TASK_INFO, stage="finished", status="success")
    manager.json("POST", "/task/create", {"result": "ok", "task_id": TASK_ID, "task_info": done})
    assert main([manager.address, "task", "run", "-a", APP_ID, "-n", "x", "-q"]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (TASK_ID + "\n", "")


def test_task_info_notes_what_a_task_waits_for(manager, capsys):
    pending = dict(TASK_INFO, stage="pending", waiting_for="no node is registered: start a litenode")
    manager.json("GET", "/task/info", {"result": "ok", "task_info": pending})
    assert main([manager.address, "task", "info", "-t", TASK_ID]) == 0
    captured = capsys.readouterr()
    assert "| pending |" in captured.out
    assert captured.err == f"litepipeline: note: task {TASK_ID} is pending: no node is registered: start a litenode\n"
    manager.json("GET", "/task/info", {"result": "ok", "task_info": TASK_INFO})
    assert main([manager.address, "task", "info", "-t", TASK_ID]) == 0
    assert capsys.readouterr().err == ""
