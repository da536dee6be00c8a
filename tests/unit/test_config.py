"""Typed configuration (SPEC §2): defaults, validation, path resolution, and the daemons' exit 2."""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys

import pytest
import yaml

from litepipeline.common.config import (
    GiB,
    ManagerConfig,
    NodeConfig,
    config_from_dict,
    default_of,
    load_config,
    missing_driver_message,
    public_view,
    render_yaml,
)
from litepipeline.common.errors import ConfigError

BIN = os.path.dirname(sys.executable)

SEED_MANAGER = """\
log_level: NOSET            # NOSET, DEBUG, INFO, WARNING, ERROR, CRITICAL
log_path: ./logs            # log file directory
http_host: 0.0.0.0          # manager's http host
http_port: 8000             # manager's http port
tcp_host: 0.0.0.0           # manager's tcp host
tcp_port: 6001              # manager's tcp port
max_buffer_size: 1073741824 # 1073741824 = 1G, tornado body size limit, affect application tarball size
scheduler_interval: 1       # the scheduler service interval, 1 second
data_path: ./data           # manager data store directory
"""

SEED_NODE = """\
log_level: NOSET              # NOSET, DEBUG, INFO, WARNING, ERROR, CRITICAL
log_path: ./logs              # log file directory
http_host: 0.0.0.0            # node's http host
http_port: 8001               # node's http port
manager_http_host: 127.0.0.1  # manager's http host
manager_http_port: 8000       # manager's http port
manager_tcp_host: 127.0.0.1   # manager's tcp host
manager_tcp_port: 6001        # manager's tcp port
heartbeat_interval: 1         # heartbeat interval, 1 seconds
heartbeat_timeout: 30         # heartbeat timeout, 30 seconds
retry_interval: 5             # retry to connect manager interval, when lost connection, 5 seconds
executor_interval: 1          # the scheduler service interval, 1 second
action_slots: 2               # how many actions can be executed parallelly
data_path: ./data             # manager data store directory         
"""


def _error(role: str, raw: dict) -> str:
    with pytest.raises(ConfigError) as e:
        config_from_dict(role, raw)
    return str(e.value)


# -- defaults ----------------------------------------------------------------------------

def test_manager_defaults(tmp_path):
    config, warnings = config_from_dict("manager", {}, str(tmp_path))
    assert warnings == []
    assert isinstance(config, ManagerConfig)
    assert (config.http_host, config.http_port, config.tcp_host, config.tcp_port) == ("0.0.0.0", 8000, "0.0.0.0", 6001)
    assert config.max_buffer_size == 1073741824 == GiB
    assert config.scheduler_interval == 1
    assert config.log_level == "INFO"
    assert config.log_path == str(tmp_path / "logs")
    assert config.data_path == str(tmp_path / "data")
    assert config.database_url is None and config.auth_token is None


def test_node_defaults(tmp_path):
    config, warnings = config_from_dict("node", {}, str(tmp_path))
    assert warnings == []
    assert isinstance(config, NodeConfig)
    assert (config.http_host, config.http_port) == ("0.0.0.0", 8001)
    assert (config.manager_http_host, config.manager_http_port) == ("127.0.0.1", 8000)
    assert (config.manager_tcp_host, config.manager_tcp_port) == ("127.0.0.1", 6001)
    assert (config.heartbeat_interval, config.heartbeat_timeout) == (1, 30)
    assert (config.retry_interval, config.executor_interval, config.action_slots) == (5, 1, 2)
    assert config.log_path == str(tmp_path / "logs")
    assert config.data_path == str(tmp_path / "data")
    assert config.auth_token is None


@pytest.mark.parametrize("role, text", [("manager", SEED_MANAGER), ("node", SEED_NODE)])
def test_seed_readme_config_loads_without_newer_keys(tmp_path, role, text):
    path = tmp_path / "configuration.yml"
    path.write_text(text)
    config, warnings = load_config(role, str(path))
    assert warnings == []
    assert config.log_level == "NOSET"
    assert config.data_path == str(tmp_path / "data")
    defaults = {f.name: default_of(f) for f in dataclasses.fields(config)}
    seed_keys = set(yaml.safe_load(text))
    for key, default in defaults.items():
        if key not in seed_keys:
            assert getattr(config, key) == default, key  # newer keys take their defaults
    if role == "manager":
        assert (config.http_port, config.tcp_port, config.max_buffer_size, config.scheduler_interval) == \
            (8000, 6001, GiB, 1)
    else:
        assert (config.heartbeat_timeout, config.retry_interval, config.action_slots) == (30, 5, 2)


def test_empty_file_loads_defaults(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("# nothing but a comment\n")
    config, warnings = load_config("manager", str(path))
    assert warnings == [] and config.http_port == 8000 and config.data_path == str(tmp_path / "data")


def test_float_keys_accept_ints_and_floats():
    config, _ = config_from_dict("node", {"heartbeat_interval": 0.25, "heartbeat_timeout": 3})
    assert config.heartbeat_interval == 0.25
    assert config.heartbeat_timeout == 3.0 and isinstance(config.heartbeat_timeout, float)


# -- warnings and errors -----------------------------------------------------------------

def test_unknown_keys_are_warnings():
    config, warnings = config_from_dict("manager", {"http_port": 9000, "colour": "blue", "action_slots": 3})
    assert config.http_port == 9000
    assert warnings == ["unknown configuration key 'colour' ignored",
                        "unknown configuration key 'action_slots' ignored (it is a node key)"]


@pytest.mark.parametrize("role, key, warning", [
    ("manager", "http_prot", "unknown configuration key 'http_prot' ignored; did you mean 'http_port'?"),
    ("manager", "databse_url", "unknown configuration key 'databse_url' ignored; did you mean 'database_url'?"),
    ("node", "action_slot", "unknown configuration key 'action_slot' ignored; did you mean 'action_slots'?"),
    ("node", "heartbeat_intreval",
     "unknown configuration key 'heartbeat_intreval' ignored; did you mean 'heartbeat_interval'?"),
    ("node", "tcp_port", "unknown configuration key 'tcp_port' ignored (it is a manager key)"),
    ("node", "colour", "unknown configuration key 'colour' ignored"),
])
def test_unknown_key_suggests_the_nearest_known_key(role, key, warning):
    assert config_from_dict(role, {key: 1})[1] == [warning]


def test_database_url_without_its_driver_names_what_to_install(monkeypatch):
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    def missing(cls):
        raise ModuleNotFoundError("No module named 'psycopg'", name="psycopg")

    monkeypatch.setattr(PGDialect_psycopg, "import_dbapi", classmethod(missing))
    with pytest.raises(ConfigError) as e:
        config_from_dict("manager", {"database_url": "postgresql+psycopg://u:secret@h/db"})
    assert str(e.value) == ("configuration key 'database_url' (postgresql+psycopg://...) needs the Python module "
                            "'psycopg', which is not installed: pip install 'litepipeline[postgres]'")
    assert "secret" not in str(e.value)


def test_database_url_driver_messages():
    assert missing_driver_message("postgresql", "psycopg2") == (
        "configuration key 'database_url' (postgresql://...) needs the Python module 'psycopg2', which is not "
        "installed: pip install psycopg2-binary (or write postgresql+psycopg://... and pip install "
        "'litepipeline[postgres]')")
    assert missing_driver_message("mysql+pymysql", "pymysql").endswith("pip install pymysql")
    assert missing_driver_message("x+y", "ydriver.sub").endswith("module 'ydriver', which is not installed: "
                                                                 "pip install ydriver")


@pytest.mark.parametrize("role, raw, message", [
    ("manager", {"http_port": "8000"}, "configuration key 'http_port' must be an integer, got str '8000'"),
    ("manager", {"http_port": True}, "configuration key 'http_port' must be an integer, got bool True"),
    ("manager", {"tcp_port": 6001.5}, "configuration key 'tcp_port' must be an integer, got float 6001.5"),
    ("manager", {"max_buffer_size": 1.0}, "configuration key 'max_buffer_size' must be an integer, got float 1.0"),
    ("manager", {"max_buffer_size": "1G"}, "configuration key 'max_buffer_size' must be an integer, got str '1G'"),
    ("manager", {"http_port": [8000]}, "configuration key 'http_port' must be an integer, got list [8000]"),
    ("manager", {"http_port": {"a": 1}}, "configuration key 'http_port' must be an integer, got dict {'a': 1}"),
    ("manager", {"scheduler_interval": "1"}, "configuration key 'scheduler_interval' must be a number, got str '1'"),
    ("manager", {"scheduler_interval": False},
     "configuration key 'scheduler_interval' must be a number, got bool False"),
    ("manager", {"http_host": 127}, "configuration key 'http_host' must be a string, got int 127"),
    ("manager", {"data_path": ["a"]}, "configuration key 'data_path' must be a string, got list ['a']"),
    ("manager", {"http_port": None}, "configuration key 'http_port' must not be empty"),
    ("manager", {"data_path": None}, "configuration key 'data_path' must not be empty"),
    ("manager", {"auth_token": 123}, "configuration key 'auth_token' must be a string, got int 123"),
    ("node", {"action_slots": "2"}, "configuration key 'action_slots' must be an integer, got str '2'"),
    ("node", {"action_slots": 2.0}, "configuration key 'action_slots' must be an integer, got float 2.0"),
    ("node", {"manager_tcp_port": True}, "configuration key 'manager_tcp_port' must be an integer, got bool True"),
    ("node", {"heartbeat_timeout": [30]}, "configuration key 'heartbeat_timeout' must be a number, got list [30]"),
    ("node", {"log_level": 10}, "configuration key 'log_level' must be a string, got int 10"),
    ("manager", {"metrics_public": "yes"}, "configuration key 'metrics_public' must be true or false, got str 'yes'"),
    ("node", {"metrics_public": 1}, "configuration key 'metrics_public' must be true or false, got int 1"),
    ("node", {"metrics_public": None}, "configuration key 'metrics_public' must not be empty"),
])
def test_wrong_types_name_the_key(role, raw, message):
    assert _error(role, raw) == message


@pytest.mark.parametrize("role, raw, message", [
    ("manager", {"http_port": -1}, "configuration key 'http_port' must be >= 0, got -1"),
    ("manager", {"max_buffer_size": 0}, "configuration key 'max_buffer_size' must be >= 1, got 0"),
    ("manager", {"scheduler_interval": 0}, "configuration key 'scheduler_interval' must be >= 0.01, got 0.0"),
    ("manager", {"max_unpacked_size": 0}, "configuration key 'max_unpacked_size' must be >= 1, got 0"),
    ("node", {"action_slots": 0}, "configuration key 'action_slots' must be >= 1, got 0"),
    ("node", {"manager_http_port": 0}, "configuration key 'manager_http_port' must be >= 1, got 0"),
    ("node", {"heartbeat_interval": 0.001}, "configuration key 'heartbeat_interval' must be >= 0.01, got 0.001"),
    ("node", {"retry_interval": -5}, "configuration key 'retry_interval' must be >= 0.01, got -5.0"),
])
def test_below_minimum(role, raw, message):
    assert _error(role, raw) == message


def test_bad_log_level():
    assert _error("manager", {"log_level": "LOUD"}) == (
        "configuration key 'log_level' must be one of NOSET, NOTSET, DEBUG, INFO, WARNING, ERROR, CRITICAL, "
        "got 'LOUD'")


@pytest.mark.parametrize("level", ["NOSET", "NOTSET", "DEBUG", "info", "Warning", "ERROR", "CRITICAL"])
def test_log_levels_accepted(level):
    assert config_from_dict("node", {"log_level": level})[0].log_level == level


@pytest.mark.parametrize("role", ["manager", "node"])
def test_metrics_public_is_a_boolean_off_by_default(role):
    assert config_from_dict(role, {})[0].metrics_public is False
    assert config_from_dict(role, {"metrics_public": True})[0].metrics_public is True
    assert "metrics_public: false" in render_yaml(role)


def test_not_a_mapping():
    assert _error("manager", ["http_port", 8000]) == "configuration must be a mapping of keys to values, got list"


def test_optional_strings_empty_means_none():
    config, _ = config_from_dict("manager", {"database_url": "", "auth_token": None})
    assert config.database_url is None and config.auth_token is None


# -- paths -------------------------------------------------------------------------------

def test_relative_paths_resolve_against_config_dir(tmp_path, monkeypatch):
    conf_dir = tmp_path / "etc" / "lite"
    conf_dir.mkdir(parents=True)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = conf_dir / "configuration.yml"
    path.write_text("log_path: logs\ndata_path: ../shared/data\n")
    config, _ = load_config("node", str(path))
    assert config.log_path == str(conf_dir / "logs")
    assert config.data_path == str(tmp_path / "etc" / "shared" / "data")
    # a relative path to the config file itself works the same
    config, _ = load_config("node", os.path.relpath(path))
    assert config.log_path == str(conf_dir / "logs")


def test_absolute_and_home_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "c.yml"
    path.write_text(f"log_path: {tmp_path / 'abs'}\ndata_path: ~/data\n")
    config, _ = load_config("manager", str(path))
    assert config.log_path == str(tmp_path / "abs")
    assert config.data_path == str(tmp_path / "home" / "data")


# -- load_config errors ------------------------------------------------------------------

def test_load_missing_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config("manager", str(tmp_path / "nope.yml"))
    assert str(e.value) == f"configuration file not found: {tmp_path / 'nope.yml'}"


def test_load_invalid_yaml_is_one_line(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("a: [\n")
    with pytest.raises(ConfigError) as e:
        load_config("manager", str(path))
    message = str(e.value)
    assert message.startswith(f"configuration file {path} is not valid YAML: ")
    assert "\n" not in message


def test_load_wrong_type_in_file(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("http_port: abc\n")
    with pytest.raises(ConfigError) as e:
        load_config("manager", str(path))
    assert str(e.value) == "configuration key 'http_port' must be an integer, got str 'abc'"


# -- public view and rendering -----------------------------------------------------------

def test_public_view_masks_secrets():
    config, _ = config_from_dict("manager", {"auth_token": "s3cret", "database_url": "postgresql://u:pw@h/db"})
    view = public_view(config)
    assert view["auth_token"] == "***" and view["database_url"] == "***"
    assert "s3cret" not in repr(view) and "pw@" not in repr(view)
    assert view["http_port"] == 8000
    assert set(view) == {f.name for f in dataclasses.fields(ManagerConfig)}
    node, _ = config_from_dict("node", {"auth_token": "tok"})
    assert public_view(node)["auth_token"] == "***"
    # unset secrets stay None (nothing to hide)
    assert public_view(config_from_dict("manager", {})[0])["auth_token"] is None


@pytest.mark.parametrize("role, cls", [("manager", ManagerConfig), ("node", NodeConfig)])
def test_render_yaml_parses_back_to_defaults(tmp_path, role, cls):
    text = render_yaml(role)
    defaults = {f.name: default_of(f) for f in dataclasses.fields(cls)}
    assert yaml.safe_load(text) == defaults
    assert all(" # " in line for line in text.splitlines())
    path = tmp_path / "configuration.yml"
    path.write_text(text)
    config, warnings = load_config(role, str(path))
    assert warnings == []
    for key, value in defaults.items():
        if key not in ("log_path", "data_path"):
            assert getattr(config, key) == value, key


def test_render_yaml_overrides_and_optional():
    text = render_yaml("manager", {"http_port": 9001, "data_path": "/srv/data"}, with_optional=False)
    raw = yaml.safe_load(text)
    assert raw["http_port"] == 9001 and raw["data_path"] == "/srv/data"
    assert "auth_token" not in raw and "database_url" not in raw


# -- the daemons: one line on stderr, exit code 2 ----------------------------------------

def _daemon_available(command: str) -> None:
    if command == "litenode" and importlib.util.find_spec("litepipeline.node.server") is None:
        pytest.skip("litepipeline.node.server does not exist yet")


def _run(command: str, config: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(BIN, command), "-c", config], capture_output=True, text=True, check=False,
                          timeout=60, cwd=str(cwd))


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and result.stderr.endswith("\n"), result.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["litemanager", "litenode"])
def test_daemon_missing_config(tmp_path, command):
    _daemon_available(command)
    line = _one_line(_run(command, "MISSING.yml", tmp_path))
    assert line == f"{command}: error: configuration file not found: MISSING.yml"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("command, text, expected", [
    ("litemanager", "http_port: abc\n", "configuration key 'http_port' must be an integer, got str 'abc'"),
    ("litemanager", "max_buffer_size: 0\n", "configuration key 'max_buffer_size' must be >= 1, got 0"),
    ("litenode", "action_slots: two\n", "configuration key 'action_slots' must be an integer, got str 'two'"),
    ("litenode", "heartbeat_interval: [1]\n",
     "configuration key 'heartbeat_interval' must be a number, got list [1]"),
])
def test_daemon_wrong_type(tmp_path, command, text, expected):
    _daemon_available(command)
    path = tmp_path / "configuration.yml"
    path.write_text(text)
    line = _one_line(_run(command, str(path), tmp_path))
    assert line == f"{command}: error: {expected}"
    assert sorted(os.listdir(tmp_path)) == ["configuration.yml"]  # no logs/ or data/ made


@pytest.mark.parametrize("command", ["litemanager", "litenode"])
@pytest.mark.parametrize("text", ["a: [\n", "key: 'unterminated\n"])
def test_daemon_unreadable_yaml(tmp_path, command, text):
    _daemon_available(command)
    path = tmp_path / "configuration.yml"
    path.write_text(text)
    line = _one_line(_run(command, str(path), tmp_path))
    assert line.startswith(f"{command}: error: configuration file {path} is not valid YAML: ")


@pytest.mark.parametrize("command", ["litemanager", "litenode"])
def test_daemon_config_not_a_mapping(tmp_path, command):
    _daemon_available(command)
    path = tmp_path / "configuration.yml"
    path.write_text("- http_port\n- 8000\n")
    line = _one_line(_run(command, str(path), tmp_path))
    assert line == f"{command}: error: configuration must be a mapping of keys to values, got list"


@pytest.mark.parametrize("command", ["litemanager", "litenode"])
def test_daemon_cannot_create_directories(tmp_path, command):
    _daemon_available(command)
    (tmp_path / "afile").write_text("")
    path = tmp_path / "configuration.yml"
    path.write_text(f"log_path: {tmp_path / 'afile' / 'logs'}\ndata_path: {tmp_path / 'data'}\n")
    line = _one_line(_run(command, str(path), tmp_path))
    assert line.startswith(f"{command}: error: cannot create directory: ")
    assert str(tmp_path / "afile" / "logs") in line


def test_example_file_documents_every_key_and_stays_in_sync():
    import os

    import yaml

    from litepipeline.common.config import ROLES, config_from_dict
    from scripts.gen_example_config import example

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "configuration.example.yml"), encoding="utf-8") as fp:
        text = fp.read()
    assert text == example(), "run: python scripts/gen_example_config.py"
    manager, node = list(yaml.safe_load_all(text))
    for role, doc in (("manager", manager), ("node", node)):
        assert set(doc) == set(ROLES[role].__dataclass_fields__)
        config_from_dict(role, doc)            # every default loads
    for line in text.splitlines():
        if line and not line.startswith(("#", "---")):
            assert " # " in line, f"key without a comment: {line}"


def test_node_labels():
    config, warnings = config_from_dict("node", {"labels": {"gpu": "a100", "zone": "b"}})
    assert config.labels == {"gpu": "a100", "zone": "b"} and warnings == []
    assert config_from_dict("node", {})[0].labels == {}
    assert config_from_dict("node", {"labels": None})[0].labels == {}
    for labels, message in [
        ("gpu", "configuration key labels must be a map of name: value, got str"),
        ({"ssd": True}, "configuration key labels.ssd must be a string, got bool True (quote it in YAML/JSON)"),
        ({"a b": "x"}, "configuration key labels name 'a b' must be 1-63 letters, digits, '.', '_' or '-', "
                       "starting with a letter or digit"),
    ]:
        with pytest.raises(ConfigError) as info:
            config_from_dict("node", {"labels": labels})
        assert str(info.value) == message
    assert "labels: {}" in render_yaml("node")


@pytest.mark.parametrize(("text", "expected"), [("", "on"), ("pg_synchronous_commit: off\n", "off"),
                                                 ("pg_synchronous_commit: 'off'\n", "off"),
                                                 ("pg_synchronous_commit: on\n", "on")])
def test_pg_synchronous_commit_reads_yaml_on_and_off(text, expected):
    from litepipeline.common.config import config_from_dict

    config, _ = config_from_dict("manager", yaml.safe_load(text) or {})
    assert config.pg_synchronous_commit == expected


def test_pg_synchronous_commit_refuses_other_words():
    from litepipeline.common.config import config_from_dict

    with pytest.raises(ConfigError, match="'pg_synchronous_commit' must be on or off"):
        config_from_dict("manager", {"pg_synchronous_commit": "local"})
