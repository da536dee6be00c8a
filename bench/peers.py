"""LitePipeline and Celery side by side: the same workload, the same floors, one JSON.

    .venv/bin/pip install -e '.[bench]'      # celery and redis-py
    .venv/bin/python bench/peers.py [--nodes 2] [--slots 2] [--dag-runs 20] [--tasks 300]
                                    [--redis redis://127.0.0.1:6379/0]

Runs bench.py's floors once, then bench.py's LitePipeline measurement, then the identical
workload on Celery (Redis as broker and result backend):

- an action is its own process on both: Celery's task (``celery_peer.run_action``) writes
  the workspace's ``input.data`` and runs ``bash -c "cd APPDIR && python3 noop.py WS"``,
  the same command, application directory and interpreter as the floors and the nodes;
- the DAG (first and second in parallel, then third) is a chord: a group of two, then the
  callback; its latency runs from the submission to the callback's end;
- throughput: the same number of one-action tasks submitted at once, from the first
  submission to the last task's end;
- ``--nodes`` Celery workers of ``--slots`` prefork processes each, as many as the
  cluster's action slots, warmed up with the same tasks as the cluster.

Both ratios are to the floors of this run. Without celery/redis-py installed or a Redis
answering at ``--redis``, the Celery part is skipped with the reason in the JSON.
``workers_cpu_ms_per_task`` counts the Celery workers' own processes (not the actions they
start, not Redis), as ``nodes_cpu_ms_per_task`` counts the nodes'.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402


def unavailable(redis_url: str) -> Optional[str]:
    """Why Celery cannot be measured here, or None."""
    try:
        import celery  # noqa: F401
        import redis
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install -e '.[bench]')"
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError as exc:
        return f"no Redis at {redis_url}: {exc}"
    return None


def own_cpu_seconds(pids: list) -> float:
    """User + system CPU of these processes themselves (their children's not counted)."""
    total = 0.0
    for pid in pids:
        try:
            total += bench.proc_stat(pid)["cpu_s"]
        except OSError:
            pass
    return total


def children(pid: int) -> list:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fp:
                    if int(fp.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def celery_run(args: argparse.Namespace, appdir: str, root: str) -> dict:
    """The DAG latency and throughput of Celery workers, measured as bench.py measures ours."""
    queue = f"litepipeline-peer-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.environ.update(LP_PEER_REDIS=args.redis, LP_PEER_QUEUE=queue)
    from celery import chord
    from celery.result import ResultSet

    import celery_peer

    run = celery_peer.run_action
    workspaces = os.path.join(root, "celery-ws")
    workers = []
    log = open(os.path.join(root, "celery-workers.log"), "wb")   # noqa: SIM115 - closed in finally
    try:
        for i in range(args.nodes):
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "celery_peer", "worker", "-P", "prefork",
                 "-c", str(args.slots), "-Q", queue, "-n", f"peer{i}-{queue}@%h", "--loglevel", "WARNING",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=HERE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 120
        while len(celery_peer.app.control.ping(timeout=1.0)) < args.nodes:
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                raise RuntimeError(f"the Celery workers did not start (see {log.name})")

        def dag(tag: str) -> tuple:
            base = os.path.join(workspaces, tag)
            start = time.time()
            header = [run.si(appdir, os.path.join(base, "a")), run.si(appdir, os.path.join(base, "b"))]
            result = chord(header)(run.si(appdir, os.path.join(base, "c")))
            ended = result.get(timeout=60)
            wall = time.time() - start
            result.forget()
            return ended - start, wall

        total_slots = args.nodes * args.slots
        for i in range(total_slots):   # warm-up: as many DAGs and single tasks as the cluster's
            dag(f"warm{i}")
            run.delay(appdir, os.path.join(workspaces, f"warm-one{i}")).get(timeout=60)
        servers, walls = [], []
        for i in range(args.dag_runs):
            server, wall = dag(f"dag{i}")
            servers.append(server)
            walls.append(wall)
        result: dict = {"workers": args.nodes, "concurrency_per_worker": args.slots,
                        "dag_latency_ms": {"median": bench.ms(statistics.median(servers)),
                                           "p90": bench.ms(bench.percentile(servers, 0.9)),
                                           "client_median": bench.ms(statistics.median(walls))}}

        processes = [w.pid for w in workers] + [c for w in workers for c in children(w.pid)]
        cpu_before = own_cpu_seconds(processes)
        start = time.time()
        results = ResultSet([run.delay(appdir, os.path.join(workspaces, f"one{i}")) for i in range(args.tasks)])
        submitted = time.time() - start
        ends = results.get(timeout=600)
        elapsed = time.time() - start
        cpu_after = own_cpu_seconds(processes)
        results.forget()
        span = max(ends) - start
        result["throughput"] = {"tasks": args.tasks, "tasks_per_s": round(args.tasks / span, 1),
                                "client_tasks_per_s": round(args.tasks / elapsed, 1),
                                "submit_s": round(submitted, 2)}
        result["workers_cpu_ms_per_task"] = round((cpu_after - cpu_before) / args.tasks * 1000, 2)
        return result
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
        log.close()
        import redis

        redis.Redis.from_url(args.redis).delete(queue)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    bench.add_arguments(parser)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Celery's broker and result backend")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="litepipeline-peers-")
    try:
        appdir = bench.prepare(root)
        floor = bench.floors(appdir, os.path.join(root, "floor-ws"), args.dag_runs, args.tasks,
                             args.nodes * args.slots)
        result: dict = {"nodes": args.nodes, "slots_per_node": args.slots, "python3": sys.version.split()[0],
                        "floors": floor}
        result["litepipeline"] = bench.with_ratios(bench.litepipeline(args, root), floor)
        reason = unavailable(args.redis)
        if reason:
            result["celery"] = {"skipped": reason}
            print(f"peers.py: Celery skipped: {reason}", file=sys.stderr)
        else:
            import celery

            result["celery"] = {"version": celery.__version__,
                                **bench.with_ratios(celery_run(args, appdir, root), floor)}
            ours, theirs = result["litepipeline"], result["celery"]
            result["litepipeline_beats_celery"] = {
                "dag_latency": ours["dag_ratio_to_floor"] < theirs["dag_ratio_to_floor"],
                "throughput": ours["throughput_ratio_to_floor_rate"] > theirs["throughput_ratio_to_floor_rate"]}
    finally:
        subprocess.run(["rm", "-rf", root], check=False)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
