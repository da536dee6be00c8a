"""Operations against real processes: the CLI for scripts, and messages that say what to do,
each reproduced as a new user meets it."""
from __future__ import annotations

import json
import os
import socket
import subprocess

from tests.e2e.harness import BIN, Daemon, LiteCluster, free_port
from tests.fixtures import dag, make_app


def test_cli_json_and_ids_for_scripts(cluster, tmp_path):
    cluster.add_node()
    tarball = make_app(str(tmp_path), dag(("a", [])))
    created = cluster.cli("app", "create", "-f", tarball, "-n", "demo", "-q", check=True)
    app_id = created.stdout.strip()
    assert created.stdout == app_id + "\n" and len(app_id) == 36
    listed = cluster.cli("app", "list", "--json", check=True)
    assert listed.stdout.count("\n") == 1
    answer = json.loads(listed.stdout)
    assert answer["result"] == "ok" and [a["application_id"] for a in answer["apps"]] == [app_id]

    run = cluster.cli("task", "run", "-a", app_id, "-n", "scripted", "--json", check=True)
    info = json.loads(run.stdout)["task_info"]
    assert (info["stage"], info["status"]) == ("finished", "success")
    assert cluster.cli("task", "list", "-q", "--token", "unused", check=True).stdout == info["task_id"] + "\n"
    # global options before the address work as they always did
    node_ids = subprocess.run([os.path.join(BIN, "litepipeline"), "-q", cluster.address, "cluster", "info"],
                              capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert set(node_ids) == cluster.node_ids() and len(node_ids) == 1
    usage = cluster.cli("task", "info", "--json")                  # -t missing: usage, nothing sent
    assert usage.returncode == 2 and usage.stdout == ""


def test_task_run_with_no_node_says_so(cluster, tmp_path):
    app_id = cluster.upload(make_app(str(tmp_path), dag(("a", []))))
    result = cluster.cli("task", "run", "-a", app_id, "-n", "lonely", "--wait", "0.5")
    assert result.returncode == 1
    task_id = result.stdout.splitlines()[1].split(" | ")[1].strip()
    assert result.stderr == (f"litepipeline: error: task {task_id} is still pending: no node is registered: start a "
                             f"litenode whose manager_tcp_host and manager_tcp_port point at this manager\n")
    assert cluster.task(task_id)["task_info"]["waiting_for"].startswith("no node is registered")
    info = cluster.cli("task", "info", "-t", task_id)
    assert info.returncode == 0
    assert info.stderr.startswith(f"litepipeline: note: task {task_id} is pending: no node is registered")
    cluster.add_node()
    done = cluster.wait_task(task_id)["task_info"]
    assert done["status"] == "success" and "waiting_for" not in done


def test_unauthorized_cli_mentions_the_token(tmp_path):
    with LiteCluster(str(tmp_path), token="s3cret") as secured:
        secured.start_manager()
        result = secured.cli("app", "list")
        assert result.returncode == 1 and "Unauthorized" in result.stdout
        assert "--token" in result.stderr and "LITEPIPELINE_TOKEN" in result.stderr
        ok = secured.cli("app", "list", env={"LITEPIPELINE_TOKEN": "s3cret"})
        assert ok.returncode == 0 and ok.stderr == ""


def _start_and_wait(daemon: Daemon) -> tuple[int, str]:
    daemon.start()
    try:
        code = daemon.proc.wait(30)
    finally:
        daemon.stop()
    return code, daemon.output()


def _manager_config(root: str, **overrides) -> dict:
    config = {"log_path": os.path.join(root, "logs"), "data_path": os.path.join(root, "data"),
              "http_host": "127.0.0.1", "http_port": free_port(), "tcp_host": "127.0.0.1", "tcp_port": free_port()}
    config.update(overrides)
    return config


def test_address_in_use_names_the_address_and_the_key(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for key in ("http_port", "tcp_port"):
            root = str(tmp_path / f"manager-{key}")
            # a typo in a key, as a new user makes one: warned about with the key meant
            config = _manager_config(root, **{key: port, "scheduler_intervall": 0.5})
            code, output = _start_and_wait(Daemon("manager", root, config))
            assert code == 2, output
            assert f"cannot listen on 127.0.0.1:{port}: address already in use" in output
            assert f"change '{key}' in the configuration" in output
            assert ("litemanager: warning: unknown configuration key 'scheduler_intervall' ignored; "
                    "did you mean 'scheduler_interval'?") in output

        root = str(tmp_path / "node")
        node_config = {"log_path": os.path.join(root, "logs"), "data_path": os.path.join(root, "data"),
                       "http_host": "127.0.0.1", "http_port": port, "manager_tcp_port": free_port(),
                       "manager_http_port": free_port()}
        code, output = _start_and_wait(Daemon("node", root, node_config))
        assert code == 1, output
        assert f"cannot listen on 127.0.0.1:{port}: address already in use" in output
        assert "change 'http_port' in the configuration" in output



def test_json_logs_of_both_daemons(tmp_path):
    with LiteCluster(str(tmp_path), log_format="json") as c:
        c.start_manager()
        c.add_node(log_format="json")
        c.run_task(c.upload(make_app(str(tmp_path), dag(("a", [])))))
        c.close()
        for daemon, name in ((c.manager, "manager"), (c.nodes[0], "node")):
            with open(os.path.join(daemon.config["log_path"], f"{name}.log"), encoding="utf-8") as fp:
                records = [json.loads(line) for line in fp]
            assert len(records) > 3
            assert all({"timestamp", "level", "logger", "message"} <= set(r) for r in records)
            assert any(r["level"] == "INFO" and r["logger"].startswith("litepipeline") for r in records)


def test_database_url_without_its_driver_says_what_to_install(tmp_path):
    root = str(tmp_path / "manager")
    # pg8000 is a PostgreSQL driver this package does not install
    config = _manager_config(root, database_url="postgresql+pg8000://lp:pa55word@127.0.0.1:1/lp")
    code, output = _start_and_wait(Daemon("manager", root, config))
    assert code == 2
    assert output == ("litemanager: error: configuration key 'database_url' (postgresql+pg8000://...) needs the "
                      "Python module 'pg8000', which is not installed: pip install pg8000\n")
