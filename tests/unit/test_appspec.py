"""Application tarballs: every rule of ``litepipeline.common.appspec`` with its exact message.

The hostile tarball builders at the top (``HOSTILE``, ``build_hostile``, ``gzip_bomb``) are
reused by ``tests/e2e/test_hostile_uploads.py``; their names do not start with ``test``.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import stat
import tarfile
from typing import Callable

import pytest

from litepipeline.common.appspec import (
    ActionSpec,
    MAX_NAME_LENGTH,
    check_dag,
    check_plain_name,
    find_cycle,
    inspect_tarball,
    parse_action,
    parse_configuration,
    safe_extract,
)
from litepipeline.common.errors import InvalidApplication
from tests.fixtures import dag, env_tarball, hostile_env_tarball, make_app, member, raw_tar, valid_config_bytes

BIG = 10 ** 9
CFG = valid_config_bytes()  # one action 'a'
PLAIN = "must be a plain name (no '/', '\\' or '..')"  # the message shows one backslash


# -- builders (shared with the e2e hostile upload tests) ---------------------------------

def app_members(*extra: tuple, top: str = "app", config: bytes = CFG) -> list:
    """A valid one-action app's members followed by ``extra`` (TarInfo, bytes-or-None) pairs."""
    return [(member(f"{top}/", tarfile.DIRTYPE), None), (member(f"{top}/configuration.json"), config), *extra]


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, produced on demand (never held in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def gzip_bomb(path: str, size: int = 50 * 1024 * 1024) -> str:
    """A valid app plus one member of ``size`` zero bytes: ~50 KB on disk for 50 MB."""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in app_members():
            if data is None:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        tar.addfile(member("app/zeros.bin", size=size), io.BufferedReader(_Zeros(size)))
    return path


def _bytes_file(path: str, data: bytes) -> str:
    with open(path, "wb") as fp:
        fp.write(data)
    return path


def _truncated(path: str) -> str:
    """A gzip tar cut in the middle of an incompressible member's data."""
    full = raw_tar(path + ".full", app_members((member("app/blob.bin"), os.urandom(200_000))))
    with open(full, "rb") as fp:
        data = fp.read()
    os.remove(full)
    return _bytes_file(path, data[: int(len(data) * 0.6)])


def _config_app(config: dict, files: dict | None = None) -> Callable[[str], str]:
    def build(path: str) -> str:
        return make_app(os.path.dirname(path), config, files=files, name=os.path.basename(path))
    return build


def _raw(members: list, gz: bool = True) -> Callable[[str], str]:
    return lambda path: raw_tar(path, members, gz=gz)


NOT_GZIP = "application file is not a gzip tar archive: not a gzip file"
CYCLE_CFG = {"actions": [{"name": "a", "condition": ["b"], "main": "x"},
                         {"name": "b", "condition": ["a"], "main": "x"}]}

# name -> (builder(path) -> path, exact InvalidApplication message)
HOSTILE: dict[str, tuple[Callable[[str], str], str]] = {
    "dotdot_member": (_raw(app_members((member("app/../evil.txt"), b"pwned"))),
                      "tarball member 'app/../evil.txt' contains '..'"),
    "dotdot_first": (_raw([(member("../evil.txt"), b"pwned")]), "tarball member '../evil.txt' contains '..'"),
    "absolute_member": (_raw(app_members((member("/tmp/litepipeline-abs-evil.txt"), b"pwned"))),
                        "tarball member '/tmp/litepipeline-abs-evil.txt' has an absolute path"),
    "symlink_relative_escape": (_raw(app_members((member("app/passwd", tarfile.SYMTYPE, "../../etc/passwd"), None))),
                                "tarball link 'app/passwd' points outside the top directory"),
    "symlink_absolute_escape": (_raw(app_members((member("app/passwd", tarfile.SYMTYPE, "/etc/passwd"), None))),
                                "tarball link 'app/passwd' points to an absolute path"),
    "symlink_to_parent_then_write": (
        _raw(app_members((member("app/up", tarfile.SYMTYPE, ".."), None), (member("app/up/evil.txt"), b"pwned"))),
        "tarball link 'app/up' points outside the top directory"),
    "hardlink_other_top": (_raw(app_members((member("app/h", tarfile.LNKTYPE, "etc/passwd"), None))),
                           "tarball link 'app/h' points outside the top directory"),
    "hardlink_dotdot": (_raw(app_members((member("app/h", tarfile.LNKTYPE, "../etc/passwd"), None))),
                        "tarball member '../etc/passwd' contains '..'"),
    "hardlink_absolute": (_raw(app_members((member("app/h", tarfile.LNKTYPE, "/etc/passwd"), None))),
                          "tarball member '/etc/passwd' has an absolute path"),
    "char_device": (_raw(app_members((member("app/tty", tarfile.CHRTYPE), None))),
                    "tarball member 'app/tty' is a device or fifo"),
    "block_device": (_raw(app_members((member("app/sda", tarfile.BLKTYPE), None))),
                     "tarball member 'app/sda' is a device or fifo"),
    "fifo": (_raw(app_members((member("app/pipe", tarfile.FIFOTYPE), None))),
             "tarball member 'app/pipe' is a device or fifo"),
    "two_top_dirs": (_raw(app_members((member("other/", tarfile.DIRTYPE), None), (member("other/x"), b"x"))),
                     "tarball must hold one top directory, found 'app' and 'other'"),
    "file_beside_top": (_raw(app_members((member("README"), b"x"))),
                        "tarball must hold one top directory, found 'app' and 'README'"),
    "file_as_top": (_raw([(member("README"), b"x"), *app_members()]),
                    "tarball top entry 'README' is not a directory"),
    "plain_tar": (_raw(app_members(), gz=False), NOT_GZIP),
    "random_bytes": (lambda p: _bytes_file(p, os.urandom(4096)), NOT_GZIP),
    "empty_file": (lambda p: _bytes_file(p, b""), NOT_GZIP),
    "truncated_gzip": (_truncated, "application file is not a valid gzip tar archive: unexpected end of data"),
    "only_dot": (_raw([(member(".", tarfile.DIRTYPE), None)]), "tarball is empty"),
    "config_missing": (_raw([(member("app/", tarfile.DIRTYPE), None), (member("app/echo.py"), b"")]),
                       "tarball has no app/configuration.json"),
    "config_symlink": (_raw([(member("app/", tarfile.DIRTYPE), None), (member("app/real.json"), CFG),
                             (member("app/configuration.json", tarfile.SYMTYPE, "real.json"), None)]),
                       "configuration.json is not a regular file"),
    "config_not_json": (_raw(app_members(config=b"{not json")),
                        ("configuration.json is not valid JSON: Expecting property name enclosed in double quotes: "
                        "line 1 column 2 (char 1)")),
    "config_cycle": (_config_app(CYCLE_CFG), "configuration.json: actions form a cycle: a -> b -> a"),
    "config_self_loop": (_config_app(dag(("a", ["a"]))),
                         "configuration.json: action 'a' lists itself in its condition"),
    "config_duplicate": (_config_app(dag(("a", []), ("a", []))), "configuration.json: duplicate action name 'a'"),
    "config_name_slash": (_config_app(dag(("a/b", []))), f"action name 'a/b' {PLAIN}"),
    "config_unknown_condition": (_config_app(dag(("a", []), ("b", ["zzz"]))),
                                 "configuration.json: action 'b' condition names unknown action 'zzz'"),
    "env_missing": (_config_app({"actions": [{"name": "a", "main": "x", "env": "venvs/venv"}]}),
                    "action 'a' env tarball 'venvs/venv.tar.gz' is not in the application"),
    "env_dotdot": (_config_app({"actions": [{"name": "a", "main": "x", "env": "../venv"}]}),
                   "action 'a' env '../venv' points outside the application"),
}


def build_hostile(directory: str, kind: str) -> tuple[str, str]:
    """Write hostile tarball ``kind`` into ``directory``; return (path, expected message)."""
    builder, message = HOSTILE[kind]
    return builder(os.path.join(directory, f"{kind}.tar.gz")), message


def _rejects(path: str, limit: int = BIG) -> str:
    with pytest.raises(InvalidApplication) as e:
        inspect_tarball(path, limit)
    assert e.value.http_status == 400 and e.value.name == "InvalidParameters"
    return e.value.message


def _config_error(config) -> str:
    data = config if isinstance(config, bytes) else json.dumps(config).encode()
    with pytest.raises(InvalidApplication) as e:
        parse_configuration(data)
    return e.value.message


def _actions(*actions: dict) -> dict:
    return {"actions": [{"main": "run", **a} for a in actions]}


# -- configuration.json ------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    (b"{", ("configuration.json is not valid JSON: Expecting property name enclosed in double quotes: "
           "line 1 column 2 (char 1)")),
    (b"", "configuration.json is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    (b"\xff\xfe", ("configuration.json is not valid JSON: 'utf-8' codec can't decode byte 0xff in position 0: "
                  "invalid start byte")),
    (b"[]", "configuration.json must be a JSON object with an 'actions' list"),
    (b'"actions"', "configuration.json must be a JSON object with an 'actions' list"),
    (b"null", "configuration.json must be a JSON object with an 'actions' list"),
    (b"{}", "configuration.json: 'actions' must be a list"),
    (b'{"actions": {"a": {}}}', "configuration.json: 'actions' must be a list"),
    (b'{"actions": "a"}', "configuration.json: 'actions' must be a list"),
    (b'{"actions": []}', "configuration.json: 'actions' is empty"),
])
def test_configuration_document_rules(data, message):
    assert _config_error(data) == message


@pytest.mark.parametrize("actions, message", [
    (["a"], "configuration.json: every action must be a JSON object, got str"),
    ([["a"]], "configuration.json: every action must be a JSON object, got list"),
    ([None], "configuration.json: every action must be a JSON object, got NoneType"),
    ([{"main": "run"}], "configuration.json: an action has no 'name'"),
    ([{"name": "a"}], "configuration.json: action 'a' has no 'main' command"),
    ([{"name": "a", "main": ""}], "configuration.json: action 'a' has no 'main' command"),
    ([{"name": "a", "main": "   "}], "configuration.json: action 'a' has no 'main' command"),
    ([{"name": "a", "main": ["python", "x.py"]}], "configuration.json: action 'a' has no 'main' command"),
    ([{"name": "a", "main": "run"}, {"name": "a", "main": "run"}], "configuration.json: duplicate action name 'a'"),
    ([{"name": 5, "main": "run"}], "action name must be a non-empty string, got 5"),
    ([{"name": None, "main": "run"}], "action name must be a non-empty string, got None"),
    ([{"name": "", "main": "run"}], "action name must be a non-empty string, got ''"),
    ([{"name": ["a"], "main": "run"}], "action name must be a non-empty string, got ['a']"),
    ([{"name": "a/b", "main": "run"}], f"action name 'a/b' {PLAIN}"),
    ([{"name": "/a", "main": "run"}], f"action name '/a' {PLAIN}"),
    ([{"name": "a\\b", "main": "run"}], f"action name 'a\\\\b' {PLAIN}"),
    ([{"name": "..", "main": "run"}], f"action name '..' {PLAIN}"),
    ([{"name": "a..b", "main": "run"}], f"action name 'a..b' {PLAIN}"),
    ([{"name": "x", "main": "run", "input_data": [1]}],
     "configuration.json: action 'x' input_data must be a JSON object"),
])
def test_action_rules(actions, message):
    assert _config_error({"actions": actions}) == message


@pytest.mark.parametrize("condition, message", [
    ("a", "configuration.json: action 'b' condition must be a list of action names"),
    ({"a": 1}, "configuration.json: action 'b' condition must be a list of action names"),
    ([1], "configuration.json: action 'b' condition must be a list of action names"),
    (["a", None], "configuration.json: action 'b' condition must be a list of action names"),
    (["a", "a"], "configuration.json: action 'b' lists a condition twice"),
    (["zzz"], "configuration.json: action 'b' condition names unknown action 'zzz'"),
    (["a", "zzz"], "configuration.json: action 'b' condition names unknown action 'zzz'"),
    (["b"], "configuration.json: action 'b' lists itself in its condition"),
])
def test_condition_rules(condition, message):
    assert _config_error(_actions({"name": "a"}, {"name": "b", "condition": condition})) == message


def test_condition_on_a_later_action_is_fine():
    spec = parse_configuration(json.dumps(_actions({"name": "b", "condition": ["a"]}, {"name": "a"})).encode())
    assert [(a.name, a.condition) for a in spec.actions] == [("b", ["a"]), ("a", [])]


@pytest.mark.parametrize("config, message", [
    (dag(("a", ["b"]), ("b", ["a"])), "configuration.json: actions form a cycle: a -> b -> a"),
    (dag(("a", ["c"]), ("b", ["a"]), ("c", ["b"])), "configuration.json: actions form a cycle: a -> c -> b -> a"),
    (dag(("root", []), ("x", ["root", "z"]), ("y", ["x"]), ("z", ["y"])),
     "configuration.json: actions form a cycle: x -> z -> y -> x"),
    # to_action 'a': a waits for b, which already waits for a
    (_actions({"name": "a"}, {"name": "b", "condition": ["a"], "to_action": "a"}),
     "configuration.json: actions form a cycle: a -> b -> a"),
    # to_action to oneself
    (_actions({"name": "a", "to_action": "a"}), "configuration.json: actions form a cycle: a -> a"),
    (_actions({"name": "a"}, {"name": "b", "to_action": "zz"}),
     "configuration.json: action 'b' to_action names unknown action 'zz'"),
    (_actions({"name": "a"}, {"name": "b", "to_action": "x/y"}), f"action 'b' to_action 'x/y' {PLAIN}"),
    (_actions({"name": "a"}, {"name": "b", "to_action": 3}),
     "action 'b' to_action must be a non-empty string, got 3"),
])
def test_cycles_and_to_action(config, message):
    assert _config_error(config) == message


def test_to_action_without_cycle_adds_an_edge_only():
    spec = parse_configuration(json.dumps(_actions({"name": "a"}, {"name": "b", "to_action": "c"},
                                                   {"name": "c", "condition": ["a"]})).encode())
    assert spec.by_name("b").to_action == "c"
    assert spec.by_name("c").condition == ["a"]  # to_action is not copied into the condition


@pytest.mark.parametrize("env, message", [
    ("/opt/venv", "action 'a' env '/opt/venv' must be a relative path inside the application"),
    ("../venv", "action 'a' env '../venv' points outside the application"),
    ("venvs/../../venv", "action 'a' env 'venvs/../../venv' points outside the application"),
    ("venvs/..", "action 'a' env 'venvs/..' points outside the application"),
    ("venvs\\venv", "action 'a' env 'venvs\\\\venv' must be a relative path inside the application"),
    (5, "action 'a' env must be a non-empty string, got 5"),
    ("  ", "action 'a' env must be a non-empty string, got '  '"),
])
def test_env_rules(env, message):
    assert _config_error(_actions({"name": "a", "env": env})) == message


def test_env_normalized_and_optional():
    spec = parse_configuration(json.dumps(_actions({"name": "a", "env": "venvs/./venv"}, {"name": "b", "env": ""},
                                                   {"name": "c"})).encode())
    assert [a.env for a in spec.actions] == ["venvs/venv", None, None]


@pytest.mark.parametrize("key, value, message", [
    ("timeout", "5", "action 'a' timeout must be a number, got '5'"),
    ("timeout", True, "action 'a' timeout must be a number, got True"),
    ("timeout", [5], "action 'a' timeout must be a number, got [5]"),
    ("timeout", 0, "action 'a' timeout must be >= 0.001, got 0"),
    ("timeout", -1.5, "action 'a' timeout must be >= 0.001, got -1.5"),
    ("retries", 1.5, "action 'a' retries must be an integer, got 1.5"),
    ("retries", "2", "action 'a' retries must be an integer, got '2'"),
    ("retries", True, "action 'a' retries must be an integer, got True"),
    ("retries", -1, "action 'a' retries must be >= 0, got -1"),
    ("retry_delay", "1", "action 'a' retry_delay must be a number, got '1'"),
    ("retry_delay", True, "action 'a' retry_delay must be a number, got True"),
    ("retry_delay", -0.5, "action 'a' retry_delay must be >= 0, got -0.5"),
])
def test_number_rules(key, value, message):
    assert _config_error(_actions({"name": "a", key: value})) == message


@pytest.mark.parametrize("key, value", [
    ("retries", False), ("retries", []), ("retries", ""), ("retry_delay", ""), ("retry_delay", {}),
    ("condition", ""), ("condition", {}), ("condition", 0),
])
def test_falsy_values_of_wrong_type_are_refused(key, value):
    with pytest.raises(InvalidApplication):
        parse_configuration(json.dumps(_actions({"name": "a", key: value})).encode())


def test_numbers_accepted():
    spec = parse_configuration(json.dumps(_actions({"name": "a", "timeout": 0.5, "retries": 3, "retry_delay": 2},
                                                   {"name": "b"})).encode())
    a, b = spec.actions
    assert (a.timeout, a.retries, a.retry_delay) == (0.5, 3, 2)
    assert (b.timeout, b.retries, b.retry_delay) == (None, 0, 0)


@pytest.mark.parametrize("extra, actions, message", [
    ({"on_success": "zz"}, [{"name": "a"}], "configuration.json: on_success names unknown action 'zz'"),
    ({"on_fail": "zz"}, [{"name": "a"}], "configuration.json: on_fail names unknown action 'zz'"),
    ({"on_fail": 5}, [{"name": "a"}], "configuration.json: on_fail names unknown action 5"),
    ({"on_fail": "n"}, [{"name": "a"}, {"name": "n", "condition": ["a"]}],
     "configuration.json: event action 'n' must have no condition"),
    ({"on_success": "n"}, [{"name": "a"}, {"name": "n"}, {"name": "b", "condition": ["a", "n"]}],
     "configuration.json: action 'b' waits for event action 'n'"),
    ({"on_success": "n", "on_fail": "n"}, [{"name": "n"}],
     "configuration.json: no action to run besides event actions"),
])
def test_event_action_rules(extra, actions, message):
    config = {**_actions(*actions), **extra}
    assert _config_error(config) == message


def test_event_actions_accepted_and_kept_out_of_the_dag():
    config = {**_actions({"name": "a"}, {"name": "ok"}, {"name": "ko"}), "on_success": "ok", "on_fail": "ko"}
    spec = parse_configuration(json.dumps(config).encode())
    assert (spec.on_success, spec.on_fail) == ("ok", "ko")
    assert [a.name for a in spec.dag_actions()] == ["a"]
    assert spec.by_name("ko").main == "run" and spec.by_name("nope") is None


def test_event_actions_block_of_0_1_5():
    config = {**_actions({"name": "a"}),
              "event_actions": {"success": {"name": "yay", "condition": [], "main": "python success.py"},
                                "fail": {"main": "python fail.py", "input_data": {"to": "ops"}}}}
    spec = parse_configuration(json.dumps(config).encode())
    assert (spec.on_success, spec.on_fail) == ("yay", "fail")     # a missing name defaults to its key
    assert [a.name for a in spec.dag_actions()] == ["a"]
    assert spec.by_name("yay").main == "python success.py"
    assert spec.by_name("fail").input_data == {"to": "ops"}
    only_fail = parse_configuration(json.dumps({**_actions({"name": "a"}),
                                                "event_actions": {"fail": {"main": "x"}}}).encode())
    assert (only_fail.on_success, only_fail.on_fail) == (None, "fail")


@pytest.mark.parametrize("extra, message", [
    ({"event_actions": []}, "configuration.json: 'event_actions' must be an object "
                            '{"success": {action}, "fail": {action}}'),
    ({"event_actions": {"done": {"main": "x"}}}, "configuration.json: event_actions has unknown key 'done' "
                                                 "(known keys: success, fail)"),
    ({"event_actions": {"fail": {"name": "a", "main": "x"}}}, "configuration.json: duplicate action name 'a'"),
    ({"event_actions": {"fail": {"main": ""}}}, "configuration.json event_actions.fail: action 'fail' has no "
                                                "'main' command"),
    ({"event_actions": {"fail": {"main": "x", "condition": ["a"]}}},
     "configuration.json: event action 'fail' must have no condition"),
    ({"event_actions": {"success": {"main": "x"}}, "on_success": "a"},
     "configuration.json: both 'on_success' and 'event_actions.success' are given; keep one"),
])
def test_event_actions_block_rules(extra, message):
    assert _config_error({**_actions({"name": "a"}), **extra}) == message


def test_seed_configuration_parses():
    seed = {"actions": [
        {"name": "first", "condition": [], "env": "venvs/venv", "main": "python first.py"},
        {"name": "second", "condition": [], "env": "venvs/venv", "main": "python second.py"},
        {"name": "third", "condition": ["first", "second"], "env": "venvs/venv", "main": "python third.py"}]}
    spec = parse_configuration(json.dumps(seed).encode())
    assert dataclasses.asdict(spec.actions[2]) == {
        "name": "third", "main": "python third.py", "condition": ["first", "second"], "env": "venvs/venv",
        "input_data": {}, "to_action": None, "timeout": None, "retries": 0, "retry_delay": 0, "target": None}


def test_parse_action_names_its_source():
    with pytest.raises(InvalidApplication) as e:
        parse_action({"main": "x"}, where="output.data of 'first'")
    assert e.value.message == "output.data of 'first': an action has no 'name'"
    with pytest.raises(InvalidApplication) as e:
        check_dag([parse_action({"name": "g", "main": "x", "condition": ["nope"]})], where="output.data")
    assert e.value.message == "output.data: action 'g' condition names unknown action 'nope'"


# -- names and cycles --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a", "first_000", "a b", "-x", "a.b", ".hidden", "é", "x" * MAX_NAME_LENGTH])
def test_plain_names_accepted(name):
    assert check_plain_name(name) == name


@pytest.mark.parametrize("name, message", [
    ("", "action name must be a non-empty string, got ''"),
    ("   ", "action name must be a non-empty string, got '   '"),
    (None, "action name must be a non-empty string, got None"),
    (1.5, "action name must be a non-empty string, got 1.5"),
    (b"a", "action name must be a non-empty string, got b'a'"),
    (".", f"action name '.' {PLAIN}"),
    ("..", f"action name '..' {PLAIN}"),
    ("a/", f"action name 'a/' {PLAIN}"),
    ("a\x00b", f"action name 'a\\x00b' {PLAIN}"),
    ("..x", f"action name '..x' {PLAIN}"),
    ("x" * (MAX_NAME_LENGTH + 1), f"action name {'x' * 40!r}... is longer than {MAX_NAME_LENGTH} characters"),
])
def test_plain_names_refused(name, message):
    with pytest.raises(InvalidApplication) as e:
        check_plain_name(name)
    assert e.value.message == message


def test_plain_name_uses_what():
    with pytest.raises(InvalidApplication) as e:
        check_plain_name("a/b", "task name")
    assert e.value.message == f"task name 'a/b' {PLAIN}"


def _is_cycle(graph: dict, path: list) -> bool:
    return len(path) >= 2 and path[0] == path[-1] and all(b in graph[a] for a, b in zip(path, path[1:]))


@pytest.mark.parametrize("graph, expected", [
    ({}, None),
    ({"a": []}, None),
    ({"a": ["b"], "b": ["c"], "c": []}, None),
    ({"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}, None),  # diamond
    ({"a": ["zz"]}, None),  # edges to unknown nodes are ignored
    ({"a": ["a"]}, ["a", "a"]),
    ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
    ({"x": [], "a": ["b"], "b": ["c"], "c": ["b"]}, ["b", "c", "b"]),
    ({"a": ["b", "c"], "b": [], "c": ["d"], "d": ["a"]}, ["a", "c", "d", "a"]),
])
def test_find_cycle(graph, expected):
    found = find_cycle(graph)
    assert found == expected
    if found:
        assert _is_cycle(graph, found)


def test_find_cycle_deep_graphs_without_recursion():
    n = 20_000
    chain = {f"n{i}": [f"n{i + 1}"] for i in range(n)}
    chain[f"n{n}"] = []
    assert find_cycle(chain) is None
    chain[f"n{n}"] = ["n0"]
    found = find_cycle(chain)
    assert len(found) == n + 2 and _is_cycle(chain, found)


# -- tarball inspection ------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_inspect_refuses_hostile_tarball(tmp_path, kind):
    path, message = build_hostile(str(tmp_path), kind)
    assert _rejects(path) == message


def test_inspect_accepts_valid_app(tmp_path):
    path = make_app(str(tmp_path))
    info = inspect_tarball(path, BIG)
    assert info.top_dir == "app"
    assert [a.name for a in info.spec.actions] == ["first", "second", "third"]
    assert info.spec.by_name("third").condition == ["first", "second"]
    with tarfile.open(path) as tar:
        assert info.unpacked_size == sum(m.size for m in tar.getmembers())


def test_inspect_accepts_dot_prefixed_tarball(tmp_path):
    path = make_app(str(tmp_path), dag(("only", [])), top="myapp", dot_prefix=True)
    with tarfile.open(path) as tar:
        assert tar.getnames()[:2] == [".", "./myapp"]
    info = inspect_tarball(path, BIG)
    assert info.top_dir == "myapp"
    assert [a.name for a in info.spec.actions] == ["only"]


def test_inspect_accepts_tarball_without_directory_entries(tmp_path):
    path = raw_tar(str(tmp_path / "x.tar.gz"), [(member("app/configuration.json"), CFG)])
    assert inspect_tarball(path, BIG).top_dir == "app"


def test_inspect_accepts_symlinks_and_hardlinks_inside(tmp_path):
    path = raw_tar(str(tmp_path / "x.tar.gz"), app_members(
        (member("app/sub/", tarfile.DIRTYPE), None),
        (member("app/sub/data.txt"), b"data"),
        (member("app/link", tarfile.SYMTYPE, "sub/data.txt"), None),
        (member("app/sub/up", tarfile.SYMTYPE, "../configuration.json"), None),
        (member("app/sub/top", tarfile.SYMTYPE, ".."), None),
        (member("app/hard", tarfile.LNKTYPE, "app/sub/data.txt"), None),
    ))
    assert inspect_tarball(path, BIG).top_dir == "app"


def test_inspect_accepts_env_tarball_present(tmp_path):
    config = {"actions": [{"name": "a", "main": "x", "env": "venvs/venv"}]}
    env = env_tarball([(member("bin/activate"), b"true")])
    path = make_app(str(tmp_path), config, files={"venvs/venv.tar.gz": env})
    assert inspect_tarball(path, BIG).spec.actions[0].env == "venvs/venv"


def test_inspect_checks_env_tarballs_the_actions_name(tmp_path):
    config = {"actions": [{"name": "a", "main": "x", "env": "venvs/venv"}]}
    path = make_app(str(tmp_path), config, files={"venvs/venv.tar.gz": hostile_env_tarball("/tmp"),
                                                  "data/other.tar.gz": b"not an env: not checked"})
    assert _rejects(path) == ("env tarball 'venvs/venv.tar.gz': hard link 'h' does not point to an earlier "
                              "regular file of the env")
    path = make_app(str(tmp_path), config, files={"venvs/venv.tar.gz": b"not gzip"})
    assert _rejects(path).startswith("env tarball 'venvs/venv.tar.gz': not a valid gzip tar archive")


def test_env_tarball_must_be_a_regular_file(tmp_path):
    config = json.dumps({"actions": [{"name": "a", "main": "x", "env": "venv"}]}).encode()
    path = raw_tar(str(tmp_path / "x.tar.gz"), app_members((member("app/venv.tar.gz", tarfile.DIRTYPE), None),
                                                           config=config))
    assert _rejects(path) == "action 'a' env tarball 'venv.tar.gz' is not in the application"


def test_gzip_bomb_refused_by_its_header(tmp_path):
    path = gzip_bomb(str(tmp_path / "bomb.tar.gz"))
    assert os.path.getsize(path) < 1_000_000
    assert _rejects(path, 1_000_000) == "tarball unpacks to more than the limit of 1000000 bytes"


def test_total_unpacked_size_over_limit(tmp_path):
    members = app_members(*[(member(f"app/part{i}.bin"), bytes(300_000)) for i in range(4)])
    path = raw_tar(str(tmp_path / "x.tar.gz"), members)
    assert _rejects(path, 1_000_000) == "tarball unpacks to more than the limit of 1000000 bytes"
    # the same tarball is fine under a limit that fits it
    assert inspect_tarball(path, 1_300_000).unpacked_size == 1_200_000 + len(CFG)


def test_inspect_refuses_symlink_chain_escaping(tmp_path):
    path = raw_tar(str(tmp_path / "chain.tar.gz"), symlink_chain_members())
    _rejects(path)


def symlink_chain_members() -> list:
    return app_members(
        (member("app/sub/", tarfile.DIRTYPE), None),
        (member("app/sub/l", tarfile.SYMTYPE, ".."), None),      # -> app
        (member("app/sub/l2", tarfile.SYMTYPE, "l/.."), None),   # -> app/.. : the extraction dir
        (member("app/sub/l3", tarfile.SYMTYPE, "l2/.."), None),  # -> its parent
        (member("app/sub/l3/chain-evil.txt"), b"pwned"),
    )


# -- extraction --------------------------------------------------------------------------

def test_safe_extract_valid_app(tmp_path):
    run = member("app/bin/run.sh")
    run.mode = 0o755
    hard = member("app/hard", tarfile.LNKTYPE, "app/data.txt")
    hard.mode = 0o644  # a hard link's mode applies to the shared inode
    path = raw_tar(str(tmp_path / "x.tar.gz"), app_members(
        (member("app/bin/", tarfile.DIRTYPE), None),
        (run, b"#!/bin/sh\necho hi\n"),
        (member("app/data.txt"), b"plain data"),
        (member("app/link", tarfile.SYMTYPE, "data.txt"), None),
        (hard, None),
    ))
    dest = tmp_path / "dest"
    dest.mkdir()
    top = safe_extract(path, str(dest), BIG)
    assert top == str(dest / "app")
    assert (dest / "app" / "configuration.json").read_bytes() == CFG
    assert (dest / "app" / "bin" / "run.sh").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert os.access(dest / "app" / "bin" / "run.sh", os.X_OK)
    assert stat.S_IMODE(os.stat(dest / "app" / "bin" / "run.sh").st_mode) & 0o111 == 0o111
    assert stat.S_IMODE(os.stat(dest / "app" / "data.txt").st_mode) & 0o111 == 0
    assert os.readlink(dest / "app" / "link") == "data.txt"
    assert (dest / "app" / "link").read_bytes() == b"plain data"
    assert (dest / "app" / "hard").read_bytes() == b"plain data"
    assert sorted(os.listdir(dest)) == ["app"]


def test_safe_extract_dot_prefixed_app(tmp_path):
    path = make_app(str(tmp_path), top="dotted", dot_prefix=True)
    dest = tmp_path / "dest"
    dest.mkdir()
    assert safe_extract(path, str(dest), BIG) == str(dest / "dotted")
    assert sorted(os.listdir(dest / "dotted")) == ["configuration.json", "echo.py", "noop.py"]
    assert os.access(dest / "dotted" / "echo.py", os.X_OK)


EXTRACT_KINDS = sorted(k for k in HOSTILE if not k.startswith(("config_", "env_")))
# random-access mode ("r:gz") words these two differently from streaming inspection
EXTRACT_MESSAGES = {
    "empty_file": "application file is not a gzip tar archive: empty file",
    "truncated_gzip": "application file is not a valid gzip tar archive: "
                      "Compressed file ended before the end-of-stream marker was reached",
}


@pytest.mark.parametrize("kind", EXTRACT_KINDS + ["gzip_bomb", "symlink_chain"])
def test_safe_extract_refuses_hostile_and_writes_nothing_outside(tmp_path, kind):
    base = tmp_path / "base"
    base.mkdir()
    (base / "dest").mkdir()
    if kind == "gzip_bomb":
        path, message = gzip_bomb(str(base / "bomb.tar.gz")), "tarball unpacks to more than the limit of 1000000 bytes"
    elif kind == "symlink_chain":
        path = raw_tar(str(base / "chain.tar.gz"), symlink_chain_members())
        message = "tarball link 'app/sub/l2' points outside the top directory"
    else:
        path, message = build_hostile(str(base), kind)
        message = EXTRACT_MESSAGES.get(kind, message)
    before = sorted(os.listdir(base))
    outside_before = sorted(os.listdir(tmp_path))
    abs_target = "/tmp/litepipeline-abs-evil.txt"
    abs_existed = os.path.exists(abs_target)
    with pytest.raises(InvalidApplication) as e:
        safe_extract(path, str(base / "dest"), 1_000_000)
    assert e.value.message == message
    assert sorted(os.listdir(base)) == before
    assert sorted(os.listdir(tmp_path)) == outside_before
    assert not (base / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "chain-evil.txt").exists()
    if not abs_existed:
        assert not os.path.exists(abs_target)


def test_safe_extract_refuses_missing_config_tarball_only_by_member_rules(tmp_path):
    # safe_extract applies the member rules; configuration.json is the manager's business
    path = raw_tar(str(tmp_path / "x.tar.gz"), [(member("app/", tarfile.DIRTYPE), None), (member("app/f"), b"1")])
    dest = tmp_path / "dest"
    dest.mkdir()
    assert safe_extract(path, str(dest), BIG) == str(dest / "app")
    assert (dest / "app" / "f").read_bytes() == b"1"


# -- unknown keys (a typo must not change what runs) ---------------------------------------

@pytest.mark.parametrize("config, message", [
    ({"actions": [{"name": "a", "main": "run"}, {"name": "b", "main": "run", "conditon": ["a"]}]},
     "configuration.json: action 'b' has unknown key 'conditon' (did you mean condition?)"),
    ({"actions": [{"name": "a", "main": "run", "timout": 5}]},
     "configuration.json: action 'a' has unknown key 'timout' (did you mean timeout?)"),
    ({"actions": [{"name": "a", "main": "run", "zzz": 1}]},
     "configuration.json: action 'a' has unknown key 'zzz' (known keys: name, main, condition, env, input_data, "
     "to_action, timeout, retries, retry_delay, target, target_env)"),
    ({"actions": [{"name": "a", "main": "run"}], "on_sucess": "a"},
     "configuration.json has unknown key 'on_sucess' (did you mean on_success?)"),
    ({"action": [{"name": "a", "main": "run"}], "actions": [{"name": "a", "main": "run"}]},
     "configuration.json has unknown key 'action' (did you mean actions?)"),
])
def test_unknown_keys_refused_with_the_nearest_known_key(config, message):
    assert _config_error(config) == message


def test_generated_action_with_unknown_key_names_its_source():
    with pytest.raises(InvalidApplication) as info:
        parse_action({"name": "g1", "main": "run", "to_actoin": "third"}, "output.data of 'first'")
    assert info.value.message == \
        "output.data of 'first': action 'g1' has unknown key 'to_actoin' (did you mean to_action?)"


def test_known_0_1_5_keys_accepted():
    spec = parse_configuration(json.dumps({"actions": [{"name": "a", "main": "run", "target_env": {}}],
                                           "output_action": "a"}).encode())
    assert [a.name for a in spec.actions] == ["a"]


def test_targets_of_actions_and_event_actions():
    spec = parse_configuration(json.dumps({
        "actions": [{"name": "a", "main": "run", "target": {"labels": {"gpu": "a100"}, "platform": "X86_64"}},
                    {"name": "b", "main": "run", "target_env": {"node_ip": "10.0.0.1", "docker_support": False}},
                    {"name": "c", "main": "run", "target_env": {"docker_support": False}}],
        "event_actions": {"fail": {"main": "run", "target": {"labels": {"zone": "b"}}}}}).encode())
    targets = {a.name: a.target for a in spec.actions}
    assert targets == {"a": {"labels": {"gpu": "a100"}, "platform": "x86_64"}, "b": {"node_ip": "10.0.0.1"},
                       "c": None, "fail": {"labels": {"zone": "b"}}}
    # a work pins the spec as a dict and builds its tasks from it again
    assert parse_action(spec.actions[0].to_dict()).target == targets["a"]
    assert "target" not in spec.actions[2].to_dict()


@pytest.mark.parametrize("target, message", [
    ({"target": {"lables": {"gpu": "a100"}}},
     "configuration.json: action 'a' target has unknown key 'lables' (did you mean labels?)"),
    ({"target_env": {"docker_support": True}},
     "configuration.json: action 'a' target_env: docker_support true cannot be met: LitePipeline runs actions "
     "without docker; remove the key or set it to false"),
    ({"target": {"labels": {"gpu": 1}}},
     "configuration.json: action 'a' target.labels.gpu must be a string, got int 1 (quote it in YAML/JSON)"),
    ({"target": {"platform": "x86_64"}, "target_env": {"platform": "x86_64"}},
     "configuration.json: action 'a' has both 'target' and 'target_env'; keep one"),
    ({"target": ["gpu"]},
     "configuration.json: action 'a' target must be an object like {\"labels\": {\"gpu\": \"a100\"}}, got list"),
])
def test_bad_targets_are_refused(target, message):
    assert _config_error(_actions({"name": "a", **target})) == message


def test_generated_action_target_is_checked():
    with pytest.raises(InvalidApplication) as info:
        parse_action({"name": "g1", "main": "run", "target": {"node_id": "x"}}, "output.data of 'first'")
    assert info.value.message == ("output.data of 'first': action 'g1' target.node_id must be a node id (a uuid), "
                                  "got 'x'")


# -- action limit and linear DAG checks ----------------------------------------------------

def test_action_limit():
    config = json.dumps({"actions": [{"name": f"a{i}", "main": "run"} for i in range(11)]}).encode()
    assert len(parse_configuration(config, max_actions=11).actions) == 11
    with pytest.raises(InvalidApplication) as info:
        parse_configuration(config, max_actions=10)
    assert info.value.message == "configuration.json has 11 actions, more than the limit of 10"


def test_default_action_limit_is_10000():
    chain = [{"name": "a0", "main": "run"}] + [{"name": f"a{i}", "main": "run", "condition": [f"a{i - 1}"]}
                                               for i in range(1, 10_001)]
    with pytest.raises(InvalidApplication) as info:
        parse_configuration(json.dumps({"actions": chain}).encode())
    assert info.value.message == "configuration.json has 10001 actions, more than the limit of 10000"
    assert len(parse_configuration(json.dumps({"actions": chain[:10_000]}).encode()).actions) == 10_000


def test_check_dag_many_to_action_edges_into_one_action():
    # each to_action edge used to copy the target's list: quadratic in the number of feeders
    specs = [ActionSpec("t", "run")] + [ActionSpec(f"g{i}", "run", to_action="t") for i in range(20_000)]
    check_dag(specs)
    assert specs[0].condition == []   # the graph works on copies, never on the specs


def test_0_1_5_event_actions_form():
    spec = parse_configuration(json.dumps({
        "actions": [{"name": "a", "main": "run"}],
        "event_actions": {"success": {"name": "ok", "main": "notify ok"}, "fail": {"name": "ko", "main": "page"}},
    }).encode())
    assert (spec.on_success, spec.on_fail) == ("ok", "ko")
    assert [a.name for a in spec.dag_actions()] == ["a"]


@pytest.mark.parametrize("config, message", [
    ({"event_actions": {"sucess": {"name": "ok", "main": "x"}}},
     "configuration.json: event_actions has unknown key 'sucess' (did you mean success?)"),
    ({"event_actions": ["ok"]}, "configuration.json: 'event_actions' must be an object "
                                '{"success": {action}, "fail": {action}}'),
    ({"event_actions": {"success": {"name": "ok", "main": "x"}}, "on_success": "a"},
     "configuration.json: both 'on_success' and 'event_actions.success' are given; keep one"),
    ({"event_actions": {"fail": {"name": "ko", "main": "x", "condition": ["a"]}}},
     "configuration.json: event action 'ko' must have no condition"),
    ({"output_action": "zzz"}, "configuration.json: output_action names unknown action 'zzz'"),
])
def test_0_1_5_forms_checked(config, message):
    assert _config_error({"actions": [{"name": "a", "main": "run"}], **config}) == message
