"""Fuzz the manager's HTTP API with schemathesis, from its own /openapi.json.

Starts a real litemanager and litenode (tests/e2e/harness.py: free loopback ports, a temp
directory), stores a little of everything so listings have rows, runs schemathesis with
the checks ``not_a_server_error`` and ``response_schema_conformance``, then checks that the
manager still answers ``GET /``. The daemons are stopped whatever happens (SIGTERM included).
Run through scripts/fuzz_api.sh, which installs schemathesis and bounds the time.

Environment: FUZZ_ROOT (the directory to work in; its ``pids`` file lists the daemons' process
ids, for fuzz_api.sh to kill should this driver itself be killed), FUZZ_MAX_EXAMPLES (default 8), FUZZ_MAX_TIME (seconds, default 90),
FUZZ_SEED (default 1), FUZZ_WORKERS (default 1: its coverage phase hits a CPython 3.11 ast bug in threads).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))   # the repository: tests.e2e.harness, tests.fixtures

from tests.e2e.harness import LiteCluster  # noqa: E402
from tests.e2e.test_versions import fake_venv  # noqa: E402
from tests.fixtures import make_app  # noqa: E402

TOKEN = "fuzz-token"
# /ui/events is an endless Server-Sent Events stream: nothing to fuzz, it would hold a worker
EXCLUDED = ["/ui/events"]


def seed(cluster: LiteCluster, tmp: str) -> dict:
    """One of everything (a finished task, a venv, a workflow and its work, a schedule, a
    service): the ids schemathesis draws half the time, so requests reach real objects."""
    api = cluster.api
    app_id = cluster.upload(make_app(tmp), "fuzz")
    task_id = cluster.run_task(app_id)["task_info"]["task_id"]
    venv_id = api.venv_create(fake_venv(tmp, "fuzz"), "venv")["venv_id"]
    config = {"applications": [{"name": "one", "app_id": app_id, "condition": []}]}
    workflow_id = api.call("POST", "/workflow/create", json={"name": "wf", "configuration": config})["workflow_id"]
    work_id = api.call("POST", "/work/create", json={"workflow_id": workflow_id, "name": "w"})["work_id"]
    schedule_id = api.call("POST", "/schedule/create", json={
        "schedule_name": "s", "source": "application", "source_id": app_id, "cron": "0 3 * * *"})["schedule_id"]
    service_id = api.call("POST", "/service/create", json={"name": "svc", "app_id": app_id,
                                                           "enable": False})["service_id"]
    return {"app_id": [app_id], "task_id": [task_id], "venv_id": [venv_id], "workflow_id": [workflow_id],
            "work_id": [work_id], "schedule_id": [schedule_id], "service_id": [service_id],
            "source_id": [app_id, workflow_id], "history_id": [1], "name": ["first", "third"]}


def config_file(ids: dict, directory: str) -> str:
    """schemathesis.toml: each id parameter (query or JSON body) drawn from the seeded ones
    half the time."""
    lines = []
    for key, values in ids.items():
        lines += [f"[dictionaries.{key}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    for key in ids:
        for where in ("query", "body"):
            lines.append(f'"{where}.{key}" = {{ dictionary = "{key}", probability = 0.5 }}')
    path = os.path.join(directory, "schemathesis.toml")
    with open(path, "w") as fp:
        fp.write("\n".join(lines) + "\n")
    return path


def schemathesis(base: str, workdir: str, config: str) -> int:
    command = [os.path.join(os.path.dirname(sys.executable), "schemathesis"), "--config-file", config, "run",
               f"{base}/openapi.json",
               "--checks", "not_a_server_error,response_schema_conformance",
               "--max-examples", os.environ.get("FUZZ_MAX_EXAMPLES", "8"),
               "--max-time", os.environ.get("FUZZ_MAX_TIME", "90"),
               "--seed", os.environ.get("FUZZ_SEED", "1"),
               "--workers", os.environ.get("FUZZ_WORKERS", "1"),
               "--request-timeout", "20", "--max-redirects", "0",
               "--suppress-health-check", "all",
               "-H", f"Authorization: Bearer {TOKEN}"]
    for path in EXCLUDED:
        command += ["--exclude-path", path]
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, cwd=workdir).returncode   # its caches and reports stay in workdir


def main() -> int:
    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)   # unwinds through the finally below: daemons stopped

    signal.signal(signal.SIGTERM, on_term)
    root = os.environ.get("FUZZ_ROOT") or tempfile.mkdtemp(prefix="litepipeline-fuzz-")
    cluster = LiteCluster(os.path.join(root, "cluster"), token=TOKEN)
    try:
        cluster.start_manager()
        cluster.add_node()
        with open(os.path.join(root, "pids"), "w") as fp:
            fp.write(f"{cluster.manager.pid}\n{cluster.nodes[0].pid}\n")
        config = config_file(seed(cluster, root), root)
        code = schemathesis(f"http://{cluster.address}", root, config)
        reply = cluster.api.call("GET", "/")
        if reply.http_status != 200 or reply.get("message") != "LitePipeline manager service":
            print(f"the manager no longer answers GET / properly: {reply.http_status} {dict(reply)}")
            return 1
        if not cluster.manager.alive():
            print("the manager exited during the run")
            return 1
        print(f"schemathesis exited {code}; the manager still answers GET /")
        return code
    finally:
        cluster.close()
        shutil.rmtree(os.path.join(root, "cluster"), ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
