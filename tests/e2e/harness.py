"""Real-process test clusters: ``litemanager`` and ``litenode`` on free loopback ports.

Every process is started in its own temporary directory with a config written for the
test and is always stopped (SIGTERM, then SIGKILL) when the test ends.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Callable, Optional

import requests
import yaml

from litepipeline.client.api import ManagerClient
from litepipeline.manager import openapi

BIN = os.path.dirname(sys.executable)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02,
             what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


class Daemon:
    """One ``litemanager``/``litenode`` process."""

    def __init__(self, kind: str, directory: str, config: dict) -> None:
        self.kind = kind
        self.directory = directory
        self.config = config
        self.proc: Optional[subprocess.Popen] = None
        self.env: Optional[dict] = None   # extra environment variables of the process
        os.makedirs(directory, exist_ok=True)
        self.config_path = os.path.join(directory, "configuration.yml")
        with open(self.config_path, "w") as fp:
            yaml.safe_dump(config, fp)

    def start(self) -> "Daemon":
        command = "litemanager" if self.kind == "manager" else "litenode"
        self.log = open(os.path.join(self.directory, "stderr.log"), "ab")  # noqa: SIM115 - closed by stop()
        env = {**os.environ, **self.env} if self.env else None
        self.proc = subprocess.Popen([os.path.join(BIN, command), "-c", self.config_path], stdout=self.log, env=env,
                                     stderr=subprocess.STDOUT, cwd=self.directory)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            self.proc.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 15) -> Optional[int]:
        if self.proc is None:
            return None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        return self.proc.returncode

    def output(self) -> str:
        with open(os.path.join(self.directory, "stderr.log"), "rb") as fp:
            return fp.read().decode("utf-8", "replace")


class SchemaCheck:
    """Validates each JSON answer the manager sends against ``/openapi.json``'s response
    schema for its (method, path, status), as a ``requests`` response hook.

    A mismatch is kept in :attr:`problems` (raising inside the hook would break the
    request); :meth:`LiteCluster.close` fails the test with them. Answers the document
    gives no JSON schema for (downloads, pages) are counted in :attr:`skipped`.
    """

    def __init__(self) -> None:
        import jsonschema   # the test extra: only the tests that check need it

        self.jsonschema = jsonschema
        self.doc = openapi.document()
        self.validators: dict = {}
        self.problems: list[str] = []
        self.checked: set = set()   # (method, path, status) seen and valid
        self.skipped: set = set()

    def __call__(self, response: Any, *args: Any, **kwargs: Any) -> None:
        from urllib.parse import urlsplit

        method = response.request.method.lower()
        path = urlsplit(response.request.url).path
        key = (method, path, response.status_code)
        if not response.headers.get("Content-Type", "").startswith("application/json"):
            self.skipped.add(key)
            return
        if method not in self.doc["paths"].get(path, {}):
            self.skipped.add(key)   # an unknown route or method: the 404/405 envelope, no operation
            return
        if key not in self.validators:
            schema = openapi.response_schema(self.doc, method, path, response.status_code)
            self.validators[key] = schema and self.jsonschema.Draft202012Validator(schema)
        validator = self.validators[key]
        if validator is None:
            self.problems.append(f"{method.upper()} {path} {response.status_code}: not in /openapi.json")
            return
        try:
            body = response.json()
        except ValueError:
            self.problems.append(f"{method.upper()} {path} {response.status_code}: not JSON")
            return
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        for error in errors[:3]:
            where = "/".join(str(p) for p in error.absolute_path) or "(top)"
            self.problems.append(f"{method.upper()} {path} {response.status_code} at {where}: {error.message[:300]}")
        if not errors:
            self.checked.add(key)

    def attach(self, client: ManagerClient) -> ManagerClient:
        client.session.hooks["response"].append(self)
        return client


class LiteCluster:
    """A manager plus any number of nodes in ``root``; use as a context manager.

    ``check_schema``: every answer to ``self.api`` (and to :meth:`client`) is validated
    against the manager's OpenAPI document; the test fails at :meth:`close` on a mismatch.
    Also on when the environment sets ``LITEPIPELINE_CHECK_OPENAPI=1``.
    """

    def __init__(self, root: str, token: Optional[str] = None, check_schema: bool = False,
                 **manager_overrides: Any) -> None:
        self.root = root
        self.token = token
        self.http_port = free_port()
        self.tcp_port = free_port()
        config = {"log_level": "DEBUG", "log_path": os.path.join(root, "manager", "logs"),
                  "data_path": os.path.join(root, "manager", "data"), "http_host": "127.0.0.1",
                  "http_port": self.http_port, "tcp_host": "127.0.0.1", "tcp_port": self.tcp_port,
                  "scheduler_interval": 0.2, "recovery_timeout": 5}
        if token:
            config["auth_token"] = token
        config.update(manager_overrides)
        self.manager = Daemon("manager", os.path.join(root, "manager"), config)
        self.nodes: list[Daemon] = []
        self.address = f"127.0.0.1:{self.http_port}"
        check_schema = check_schema or os.environ.get("LITEPIPELINE_CHECK_OPENAPI") == "1"
        self.schema_check: Optional[SchemaCheck] = SchemaCheck() if check_schema else None
        self.api = self.client(token)

    def client(self, token: Optional[str] = None) -> ManagerClient:
        """A client of this manager (its answers are schema-checked when the cluster checks)."""
        client = ManagerClient(self.address, token=token)
        return self.schema_check.attach(client) if self.schema_check else client

    def __enter__(self) -> "LiteCluster":  # noqa: PYI034 (typing.Self needs 3.11)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
        if exc[0] is None:   # a test's own failure is the one to show
            self.raise_schema_problems()

    def start_manager(self) -> Daemon:
        self.manager.start()
        wait_for(self._manager_up, what="manager to answer")
        return self.manager

    def _manager_up(self) -> bool:
        if not self.manager.alive():
            raise AssertionError(f"manager exited:\n{self.manager.output()}")
        try:
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.2):
                pass
        except OSError:
            return False
        if not self.manager.config.get("database_url"):
            return True
        try:   # PostgreSQL: a manager listens as a standby until it holds the leadership lease
            return self.api.service_info().get("role") == "leader"
        except Exception:  # noqa: BLE001 - still starting
            return False

    def add_node(self, slots: int = 2, start: bool = True, **overrides: Any) -> Daemon:
        index = len(self.nodes)
        directory = os.path.join(self.root, f"node{index}")
        config = {"log_level": "DEBUG", "log_path": os.path.join(directory, "logs"),
                  "data_path": os.path.join(directory, "data"), "http_host": "127.0.0.1",
                  "http_port": free_port(), "manager_http_host": "127.0.0.1", "manager_http_port": self.http_port,
                  "manager_tcp_host": "127.0.0.1", "manager_tcp_port": self.tcp_port, "heartbeat_interval": 0.2,
                  "heartbeat_timeout": 3, "retry_interval": 0.2, "executor_interval": 0.2, "action_slots": slots,
                  "drain_timeout": 5}
        if self.token:
            config["auth_token"] = self.token
        config.update(overrides)
        node = Daemon("node", directory, config)
        self.nodes.append(node)
        if start:
            self.start_node(node)
        return node

    def start_node(self, node: Daemon, wait: bool = True) -> Daemon:
        before = self.node_ids()
        node.start()
        if wait:
            wait_for(lambda: self._node_registered(node, before), what="node to register")
        return node

    def node_ids(self) -> set:
        try:
            reply = self.api.cluster_info()
        except Exception:  # noqa: BLE001 - manager may be restarting
            return set()
        return {n["node_id"] for n in reply.get("info", {}).get("nodes", [])}

    def _node_registered(self, node: Daemon, before: set) -> bool:
        if not node.alive():
            raise AssertionError(f"node exited:\n{node.output()}")
        port = node.config["http_port"]
        reply = self.api.cluster_info()
        return any(n.get("http_port") == port for n in reply.get("info", {}).get("nodes", []))

    def cli(self, *args: str, raw: bool = False, token: Optional[str] = None, check: bool = False,
            env: Optional[dict] = None) -> subprocess.CompletedProcess:
        argv = [os.path.join(BIN, "litepipeline")]
        if raw:
            argv.append("-r")
        if token:
            argv += ["--token", token]
        argv.append(self.address)
        argv.extend(args)
        full_env = dict(os.environ)
        full_env.pop("LITEPIPELINE_TOKEN", None)
        full_env.update(env or {})
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=full_env, cwd=self.root)
        if check and result.returncode != 0:
            raise AssertionError(f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def cli_json(self, *args: str, token: Optional[str] = None) -> dict:
        result = self.cli(*args, raw=True, token=token or self.token)
        return json.loads(result.stdout)

    def upload(self, path: str, name: str = "app") -> str:
        reply = self.api.app_create(path, name, "test")
        assert reply["result"] == "ok", reply
        return reply["app_id"]

    def run_task(self, app_id: str, input_data: Optional[dict] = None, timeout: float = 60) -> dict:
        reply = self.api.task_create(app_id, "test task", input_data or {})
        assert reply["result"] == "ok", reply
        return self.wait_task(reply["task_id"], timeout)

    def task(self, task_id: str) -> dict:
        return self.api.task_info(task_id)

    def wait_task(self, task_id: str, timeout: float = 60, stage: str = "finished") -> dict:
        def done() -> Optional[dict]:
            info = self.api.task_info(task_id)
            return info if info.get("task_info", {}).get("stage") == stage else None

        return wait_for(done, timeout, 0.05, f"task {task_id} to be {stage}")

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        self.manager.stop()
        self.api.close()

    def raise_schema_problems(self) -> None:
        """Fail with the answers that did not match /openapi.json (when checking)."""
        if self.schema_check is not None and self.schema_check.problems:
            problems = self.schema_check.problems
            self.schema_check.problems = []
            raise AssertionError("answers that do not match /openapi.json:\n" + "\n".join(problems[:40]))

class FailoverCluster:
    """Several ``litemanager`` processes on one PostgreSQL ``database_url`` (fail-over) and
    nodes that list them all in ``managers``; use as a context manager."""

    def __init__(self, root: str, database_url: str, managers: int = 2, **manager_overrides: Any) -> None:
        self.root = root
        self.managers: list[Daemon] = []
        for index in range(managers):
            directory = os.path.join(root, f"manager{index}")
            config = {"log_level": "INFO", "log_path": os.path.join(directory, "logs"),
                      "data_path": os.path.join(directory, "data"), "http_host": "127.0.0.1",
                      "http_port": free_port(), "tcp_host": "127.0.0.1", "tcp_port": free_port(),
                      "scheduler_interval": 0.2, "recovery_timeout": 10, "database_url": database_url,
                      **manager_overrides}
            self.managers.append(Daemon("manager", directory, config))
        self.nodes: list[Daemon] = []
        self._apis: dict[int, ManagerClient] = {}

    def __enter__(self) -> "FailoverCluster":  # noqa: PYI034 (typing.Self needs 3.11)
        return self

    def __exit__(self, *exc: Any) -> None:
        for daemon in [*self.nodes, *self.managers]:
            if daemon.proc is not None:
                daemon.signal(signal.SIGCONT)   # a stopped process cannot end on SIGTERM
                daemon.stop()
        for api in self._apis.values():
            api.close()

    @staticmethod
    def entry(manager: Daemon) -> str:
        """The manager as a node's ``managers`` entry."""
        return f"127.0.0.1:{manager.config['http_port']}:{manager.config['tcp_port']}"

    def api(self, manager: Daemon) -> ManagerClient:
        index = self.managers.index(manager)
        if index not in self._apis:
            self._apis[index] = ManagerClient(f"127.0.0.1:{manager.config['http_port']}")
        return self._apis[index]

    def start_manager(self, manager: Daemon) -> Daemon:
        manager.start()
        wait_for(lambda: self.role(manager), what="manager to answer")
        return manager

    def get(self, manager: Daemon, path: str) -> tuple[int, Any]:
        """``GET path`` of this very manager, as (status, JSON): never sent on to the leader."""
        response = requests.get(f"http://127.0.0.1:{manager.config['http_port']}{path}", timeout=5)
        return response.status_code, response.json()

    def role(self, manager: Daemon) -> Optional[dict]:
        """``GET /`` of ``manager`` (role and leader), or None while it does not answer."""
        if not manager.alive():
            raise AssertionError(f"manager exited:\n{manager.output()}")
        try:
            status, answer = self.get(manager, "/")
        except Exception:  # noqa: BLE001 - starting, stopped or gone
            return None
        return answer if status == 200 and "role" in answer else None

    def wait_leader(self, manager: Daemon, timeout: float = 20.0) -> dict:
        """Wait until ``manager`` leads (and serves as the leader); its ``GET /``."""
        def leads() -> Optional[dict]:
            answer = self.role(manager)
            return answer if answer and answer["role"] == "leader" else None

        return wait_for(leads, timeout, 0.05, f"manager {manager.directory} to lead")

    def add_node(self, managers: list, slots: int = 2, **overrides: Any) -> Daemon:
        directory = os.path.join(self.root, f"node{len(self.nodes)}")
        config = {"log_level": "INFO", "log_path": os.path.join(directory, "logs"),
                  "data_path": os.path.join(directory, "data"), "http_host": "127.0.0.1",
                  "http_port": free_port(), "managers": [self.entry(m) for m in managers],
                  "heartbeat_interval": 0.2, "heartbeat_timeout": 20, "retry_interval": 0.2,
                  "executor_interval": 0.2, "action_slots": slots, "drain_timeout": 5, **overrides}
        node = Daemon("node", directory, config)
        self.nodes.append(node)
        return node.start()

    def node_ports(self, manager: Daemon) -> set:
        """The HTTP ports of the nodes registered with ``manager`` (empty when it answers nothing)."""
        try:
            reply = self.api(manager).cluster_info()
        except Exception:  # noqa: BLE001
            return set()
        return {n.get("http_port") for n in reply.get("info", {}).get("nodes", [])}
