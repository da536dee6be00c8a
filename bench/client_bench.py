"""What one ``task create`` costs the client and the manager, in CPU.

Starts a manager (no node: the tasks stay pending) on loopback in a temporary directory,
uploads a one-action application, then creates tasks one after another through
``ManagerClient`` and prints one JSON object: the client's CPU per call (this process,
user + system), the manager's CPU per create (its ``/proc`` times), and the wall time per
call. The CPU figures are the ones to compare on a shared machine.

    .venv/bin/python bench/client_bench.py [--tasks 500]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from bench import proc_stat  # noqa: E402
from litepipeline.client.api import ManagerClient  # noqa: E402
from tests.e2e.harness import LiteCluster  # noqa: E402
from tests.fixtures import make_app  # noqa: E402


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="litepipeline-client-bench-") as root, \
            LiteCluster(os.path.join(root, "cluster"), log_level="WARNING") as cluster:
        cluster.start_manager()
        config = {"actions": [{"name": "only", "condition": [], "main": "true"}]}
        app_id = cluster.upload(make_app(root, config, name="one.tar.gz"))
        with ManagerClient(cluster.address, token=cluster.token) as client:
            client.task_create(app_id, "warm-up", {})
            manager_before, client_before, start = proc_stat(cluster.manager.pid)["cpu_s"], own_cpu(), time.perf_counter()
            for i in range(args.tasks):
                client.task_create(app_id, f"t{i}", {"i": i})
            wall, client_cpu = time.perf_counter() - start, own_cpu() - client_before
            manager_cpu = proc_stat(cluster.manager.pid)["cpu_s"] - manager_before
    per = 1000 / args.tasks
    print(json.dumps({"tasks": args.tasks, "client_cpu_ms_per_create": round(client_cpu * per, 3),
                      "manager_cpu_ms_per_create": round(manager_cpu * per, 3),
                      "wall_ms_per_create": round(wall * per, 3)}, indent=2))


if __name__ == "__main__":
    main()
