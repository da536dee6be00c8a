"""Typed configuration for the manager and the node: defaults, YAML load, validation.

Each role has one dataclass. Every field carries a one-line comment (``help``) that
``liteconfig`` and ``configuration.example.yml`` print next to the key. A file that lacks
newer keys still loads (their defaults apply); unknown keys are reported as warnings; a
wrong type raises :class:`ConfigError` naming the key.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import yaml

from litepipeline.common.errors import ConfigError
from litepipeline.common.targets import BadTarget, check_labels

LOG_LEVELS = ("NOSET", "NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
SYNCHRONOUS_COMMIT = ("on", "off")
GiB = 1024 ** 3
MiB = 1024 ** 2


def _key(default: Any, help: str, kind: Any = None, minimum: Optional[float] = None, secret: bool = False):
    meta = {"help": help, "kind": kind, "min": minimum, "secret": secret}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    return field(default=default, metadata=meta)


def default_of(f: dataclasses.Field) -> Any:
    """A config field's default (a map key has a factory)."""
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


@dataclass
class ManagerConfig:
    """Configuration of ``litemanager`` (SPEC §2 plus LitePipeline's own keys)."""

    log_level: str = _key("INFO", "NOSET, DEBUG, INFO, WARNING, ERROR, CRITICAL")
    log_path: str = _key("./logs", "log file directory (a rotating manager.log is written there)")
    log_format: str = _key("text", "text, or json: one JSON object per line (for log collectors)")
    http_host: str = _key("0.0.0.0", "manager's http host (0.0.0.0 listens on every interface)")
    http_port: int = _key(8000, "manager's http port", minimum=0)
    tcp_host: str = _key("0.0.0.0", "manager's tcp host, where nodes register")
    tcp_port: int = _key(6001, "manager's tcp port", minimum=0)
    advertise_host: Optional[str] = _key(None, "fail-over: the host other managers, nodes and the CLI are told "
                                               "to use for this manager; empty: http_host, or this machine's "
                                               "address when that is 0.0.0.0 or ::")
    max_buffer_size: int = _key(GiB, "largest accepted application upload in bytes (1073741824 = 1G)", minimum=1)
    scheduler_interval: float = _key(1, "seconds between repair sweeps (lost reports, dead nodes); "
                                        "scheduling itself is event driven", minimum=0.01)
    data_path: str = _key("./data", "manager data directory (applications, SQLite database)")
    database_url: Optional[str] = _key(None, "SQLAlchemy URL of the store; empty = SQLite file in data_path",
                                       secret=True)
    pg_synchronous_commit: str = _key("on", "PostgreSQL: off = a round's commit returns before its WAL is "
                                            "flushed to disk (as SQLite's commits here): decisions survive "
                                            "a manager crash, the last ~0.6 s of them not a database server "
                                            "crash; on = wait for the flush")
    max_unpacked_size: int = _key(4 * GiB, "largest total unpacked size of an application tarball, bytes",
                                  minimum=1)
    max_input_size: int = _key(MiB, "largest task input_data (JSON bytes)", minimum=1)
    max_output_size: int = _key(16 * MiB, "largest action output.data accepted in a report, bytes", minimum=1)
    max_generated_actions: int = _key(1000, "most actions a task may generate at run time", minimum=0)
    max_json_body: int = _key(MiB, "largest JSON request body, bytes (task create takes max_input_size, "
                                   "reports twice max_output_size); checked with the token before the body "
                                   "is read", minimum=1024)
    max_actions: int = _key(10000, "most actions an application may configure and a task may hold, "
                                   "generated ones included", minimum=1)
    queue_window: int = _key(2000, "pending tasks the scheduler holds in memory (at least 4 per action slot); "
                                   "older ones first, the rest wait in the store", minimum=1)
    recovery_timeout: float = _key(30, "after a restart, seconds to wait for nodes to come back with "
                                       "their running actions before running those actions again", minimum=0)
    tls_cert: Optional[str] = _key(None, "TLS certificate (PEM) of the HTTP and TCP ports; empty: no TLS")
    tls_key: Optional[str] = _key(None, "private key (PEM) of tls_cert", secret=True)
    tls_ca: Optional[str] = _key(None, "CA certificate (PEM) the nodes' certificates are verified against "
                                       "(nodes with tls_cert are reached with HTTPS)")
    auth_token: Optional[str] = _key(None, "shared secret; when set every API call but GET / needs "
                                           "'Authorization: Bearer <token>' and nodes must present it",
                                     secret=True)
    metrics_public: bool = _key(False, "true: GET /metrics answers without the auth_token (for a Prometheus "
                                       "that holds no secret); the other routes still need it")
    timezone: Optional[str] = _key(None, "IANA zone of schedules that name none; empty = the machine's zone")
    service_stop_timeout: float = _key(10, "seconds a disabled service's task has to end after its signal "
                                           "before it is killed (SIGKILL)", minimum=0)
    task_retention: float = _key(0, "days a finished task is kept (fractions allowed); older ones are deleted "
                                    "with their actions, attempts and workspaces on the nodes; 0 keeps "
                                    "every task", minimum=0)
    test_clock_speed: float = _key(1, "TESTS ONLY: schedules read a clock running this many times faster",
                                   minimum=1)
    test_clock_epoch: float = _key(0, "TESTS ONLY: unix time the sped-up clock starts from; 0 = manager start",
                                   minimum=0)


@dataclass
class NodeConfig:
    """Configuration of ``litenode`` (SPEC §2 plus LitePipeline's own keys)."""

    log_level: str = _key("INFO", "NOSET, DEBUG, INFO, WARNING, ERROR, CRITICAL")
    log_path: str = _key("./logs", "log file directory (a rotating node.log is written there)")
    log_format: str = _key("text", "text, or json: one JSON object per line (for log collectors)")
    http_host: str = _key("0.0.0.0", "node's http host")
    http_port: int = _key(8001, "node's http port", minimum=0)
    manager_http_host: str = _key("127.0.0.1", "manager's http host")
    manager_http_port: int = _key(8000, "manager's http port", minimum=1)
    manager_tcp_host: str = _key("127.0.0.1", "manager's tcp host")
    manager_tcp_port: int = _key(6001, "manager's tcp port", minimum=1)
    managers: Optional[list] = _key(None, "fail-over: every manager as \"host:http_port:tcp_port\"; the node "
                                          "registers with whichever leads; empty: the manager_* keys above",
                                    kind="managers")
    heartbeat_interval: float = _key(1, "seconds between heartbeats", minimum=0.01)
    heartbeat_timeout: float = _key(30, "seconds of silence after which the manager drops this node",
                                    minimum=0.01)
    retry_interval: float = _key(5, "seconds between reconnection attempts while the manager is away",
                                 minimum=0.01)
    executor_interval: float = _key(1, "seconds between repair sweeps (unsent reports, old app copies); "
                                       "actions themselves are event driven", minimum=0.01)
    action_slots: int = _key(2, "how many actions run at once on this node", minimum=1)
    data_path: str = _key("./data", "node data directory (application cache, workspaces)")
    drain_timeout: float = _key(30, "on SIGTERM, seconds running actions may finish before being killed",
                                minimum=0)
    workspace_retention: float = _key(0, "seconds a finished task's workspaces are kept; 0 keeps them forever",
                                      minimum=0)
    max_unpacked_size: int = _key(4 * GiB, "largest total unpacked size of an application tarball, bytes",
                                  minimum=1)
    max_output_size: int = _key(16 * MiB, "largest output.data an action may write, bytes", minimum=1)
    max_json_body: int = _key(MiB, "largest JSON request body, bytes (an action's dispatch may carry up to "
                                   "100 MiB of upstream output); checked with the token before the body "
                                   "is read", minimum=1024)
    tls_cert: Optional[str] = _key(None, "TLS certificate (PEM) of the node's HTTP port; empty: no TLS")
    tls_key: Optional[str] = _key(None, "private key (PEM) of tls_cert", secret=True)
    tls_ca: Optional[str] = _key(None, "CA certificate (PEM) the manager's certificate is verified against; "
                                       "set: the manager's HTTP and TCP ports are reached with TLS")
    auth_token: Optional[str] = _key(None, "shared secret of the cluster (same as the manager's auth_token)",
                                     secret=True)
    labels: dict = _key({}, "map of name: value (e.g. {gpu: a100, zone: b}); an action whose target names "
                            "labels runs only on nodes that have them all")
    metrics_public: bool = _key(False, "true: GET /metrics answers without the auth_token (for a Prometheus "
                                       "that holds no secret); the other routes still need it")


Config = Union[ManagerConfig, NodeConfig]
ROLES = {"manager": ManagerConfig, "node": NodeConfig}
_PATH_KEYS = ("log_path", "data_path")


def _base_type(annotation: str) -> type:
    # Annotations are strings (from __future__ import annotations); map the few we use.
    return {"str": str, "int": int, "float": float, "bool": bool, "Optional[str]": str, "dict": dict,
            "Optional[list]": list}[annotation]


def _check(cls: type, name: str, value: Any) -> Any:
    f = cls.__dataclass_fields__[name]
    want = _base_type(f.type)
    if want is dict:
        try:
            return check_labels(value, name)
        except BadTarget as exc:
            raise ConfigError(f"configuration key {exc}") from None
    optional = f.type.startswith("Optional")
    if value is None or (optional and value == ""):
        if optional:
            return None
        raise ConfigError(f"configuration key '{name}' must not be empty")
    if name == "pg_synchronous_commit" and isinstance(value, bool):
        value = "on" if value else "off"   # YAML 1.1 reads a bare on/off as a boolean
    if isinstance(value, bool) != (want is bool) or not isinstance(value, (int, float) if want is float else want):
        kind = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list"}[want]
        raise ConfigError(f"configuration key '{name}' must be {kind}, got {type(value).__name__} {value!r}")
    if want is float:
        value = float(value)
    minimum = f.metadata.get("min")
    if minimum is not None and value < minimum:
        raise ConfigError(f"configuration key '{name}' must be >= {minimum:g}, got {value!r}")
    if name == "log_level" and value.upper() not in LOG_LEVELS:
        raise ConfigError(f"configuration key 'log_level' must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    if name == "pg_synchronous_commit" and value not in SYNCHRONOUS_COMMIT:
        raise ConfigError(f"configuration key 'pg_synchronous_commit' must be on or off, got {value!r}")
    if name == "log_format" and value not in LOG_FORMATS:
        raise ConfigError(f"configuration key 'log_format' must be one of {', '.join(LOG_FORMATS)}, "
                          f"got {value!r}")
    if name == "database_url":
        _check_database_url(value)
    if name == "managers":
        parse_managers(value)
    if name == "timezone" and value is not None:
        _check_zone(value)
    return value


def parse_managers(entries: list) -> list[tuple[str, int, int]]:
    """The node's ``managers`` as (host, http_port, tcp_port); a malformed entry is a
    :class:`ConfigError` naming it."""
    if not entries:
        raise ConfigError("configuration key 'managers' must list at least one \"host:http_port:tcp_port\"")
    out = []
    for entry in entries:
        parts = entry.rsplit(":", 2) if isinstance(entry, str) else []
        host = parts[0].strip("[]") if len(parts) == 3 else ""
        ports = [int(p) for p in parts[1:] if p.isdigit() and 0 < int(p) < 65536]
        if not host or len(ports) != 2:
            raise ConfigError(f"configuration key 'managers': entry {entry!r} is not \"host:http_port:tcp_port\" "
                              f"(e.g. \"10.0.0.5:8000:6001\")")
        out.append((host, ports[0], ports[1]))
    return out


def node_managers(config: "NodeConfig") -> list[tuple[str, int, str, int]]:
    """Every manager a node may register with, as (http_host, http_port, tcp_host, tcp_port):
    ``managers``, else the single ``manager_*`` keys."""
    if config.managers:
        return [(host, http, host, tcp) for host, http, tcp in parse_managers(config.managers)]
    return [(config.manager_http_host, config.manager_http_port, config.manager_tcp_host, config.manager_tcp_port)]


def _check_zone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(f"configuration key 'timezone' is not a known IANA zone name: {name!r}") from None


def _check_database_url(url: str) -> None:
    """Parse the URL and find its dialect now, so a typo is one line naming the key (never
    the URL itself: it may hold a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        raise ConfigError("configuration key 'database_url' is not a valid SQLAlchemy URL "
                          "(dialect+driver://user:password@host:port/database)") from None
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(f"configuration key 'database_url' names an unknown database dialect or driver "
                          f"{parsed.drivername!r}") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise ConfigError(missing_driver_message(parsed.drivername, exc.name or "")) from None
    except (NotImplementedError, AttributeError):
        pass   # a third-party dialect of the older kind: the engine will import its driver


# Python modules of database drivers -> what to install; psycopg is the [postgres] extra.
_DRIVER_PACKAGES = {"psycopg": "'litepipeline[postgres]'", "psycopg2": "psycopg2-binary",
                    "MySQLdb": "mysqlclient", "pymysql": "pymysql", "pg8000": "pg8000", "asyncpg": "asyncpg",
                    "cx_Oracle": "cx_Oracle", "oracledb": "oracledb", "pyodbc": "pyodbc"}


def missing_driver_message(drivername: str, module: str) -> str:
    """One line saying which package a ``database_url`` needs (never the URL: it may hold a password)."""
    module = module.split(".")[0]
    package = _DRIVER_PACKAGES.get(module, module or "its driver")
    text = (f"configuration key 'database_url' ({drivername}://...) needs the Python module "
            f"'{module or '?'}', which is not installed: pip install {package}")
    if module == "psycopg2":   # a bare postgresql:// means psycopg2 to SQLAlchemy; ours is psycopg 3
        text += " (or write postgresql+psycopg://... and pip install 'litepipeline[postgres]')"
    return text


def unknown_key_warning(cls: type, key: Any) -> str:
    """The warning for an unknown key: whose key it is when it belongs to the other role,
    else the nearest known key when one is close (a typo)."""
    text = f"unknown configuration key '{key}' ignored"
    other = next((role for role, c in ROLES.items() if c is not cls and key in c.__dataclass_fields__), None)
    if other is not None:
        return f"{text} (it is a {other} key)"
    close = difflib.get_close_matches(str(key), list(cls.__dataclass_fields__), n=1, cutoff=0.6)
    return f"{text}; did you mean '{close[0]}'?" if close else text


def config_from_dict(role: str, raw: dict, base_dir: str = ".") -> tuple[Config, list[str]]:
    """Build a validated config of ``role`` from a mapping.

    Returns the config and a list of warnings (unknown keys). Relative ``log_path`` and
    ``data_path`` are resolved against ``base_dir`` (the config file's directory).
    """
    cls = ROLES[role]
    if not isinstance(raw, dict):
        raise ConfigError(f"configuration must be a mapping of keys to values, got {type(raw).__name__}")
    warnings = []
    values = {}
    for key, value in raw.items():
        if key not in cls.__dataclass_fields__:
            warnings.append(unknown_key_warning(cls, key))
            continue
        values[key] = _check(cls, key, value)
    config = cls(**values)
    for key in _PATH_KEYS:
        setattr(config, key, os.path.abspath(os.path.join(base_dir, os.path.expanduser(getattr(config, key)))))
    return config, warnings


def load_config(role: str, path: str) -> tuple[Config, list[str]]:
    """Read and validate the YAML file at ``path`` for ``role``; see :func:`config_from_dict`."""
    try:
        with open(path, "r", encoding="utf-8") as fp:
            raw = yaml.safe_load(fp)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        reason = str(exc).replace("\n", " ")
        raise ConfigError(f"configuration file {path} is not valid YAML: {reason}") from None
    if raw is None:
        raw = {}
    return config_from_dict(role, raw, os.path.dirname(os.path.abspath(path)))


def public_view(config: Config) -> dict:
    """The config as a dict with every secret masked, safe to log or return."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.metadata.get("secret") and value:
            value = "***"
        out[f.name] = value
    return out


def render_yaml(role: str, overrides: Optional[dict] = None, with_optional: bool = True) -> str:
    """A commented YAML document of every key of ``role`` (liteconfig and the example file)."""
    cls = ROLES[role]
    overrides = overrides or {}
    lines = []
    for f in dataclasses.fields(cls):
        value = overrides.get(f.name, default_of(f))
        if value is None:
            if not with_optional:
                continue
            line = f"{f.name}:"
        else:
            line = f"{f.name}: {yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"
        lines.append((line, f.metadata["help"]))
    width = max(len(line) for line, _ in lines) + 1
    return "".join(f"{line.ljust(width)} # {help}\n" for line, help in lines)
