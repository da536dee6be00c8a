"""LitePipeline and Celery side by side: the same workload, the same floors, one JSON.

    .venv/bin/pip install -e '.[bench]'      # celery and redis-py
    .venv/bin/python bench/peers.py [--nodes 2] [--slots 2] [--dag-runs 20] [--tasks 300]
                                    [--redis redis://127.0.0.1:6379/0]

Starts a LitePipeline cluster (bench.py's) and Celery workers (Redis as broker and result
backend) side by side, and runs the identical workload on both:

- an action is its own process on both: Celery's task (``celery_peer.run_action``) writes
  the workspace's ``input.data`` and runs ``bash -c "cd APPDIR && python3 noop.py WS"``,
  the same command, application directory and interpreter as the floors and the nodes;
- the DAG (first and second in parallel, then third) is a chord: a group of two, then the
  callback; its latency runs from the submission to the callback's end;
- throughput: the same number of one-action tasks submitted at once, from the first
  submission to the last task's end;
- ``--nodes`` Celery workers of ``--slots`` prefork processes each, as many as the
  cluster's action slots, warmed up with the same tasks as the cluster.

The DAG runs go in turn (the floor's, ours, Celery's; ``--dag-runs`` times) and the
throughput runs back to back between two floor-rate runs (their mean is the floor rate),
so a load that comes and goes on a shared machine falls on every figure alike. Both
ratios are to these floors. Without celery/redis-py installed or a Redis
answering at ``--redis``, the Celery part is skipped with the reason in the JSON.
``workers_cpu_ms_per_task`` counts the Celery workers' own processes (not the actions they
start, not Redis), as ``nodes_cpu_ms_per_task`` counts the nodes'.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
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


class CeleryPeer:
    """``--nodes`` Celery workers of ``--slots`` prefork processes each on a queue of this
    run's own (a context manager, as :class:`bench.Lite`: started and warmed up on entry)."""

    def __init__(self, args: argparse.Namespace, appdir: str, root: str) -> None:
        self.args, self.appdir, self.root = args, appdir, root
        self.queue = f"litepipeline-peer-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.workspaces = os.path.join(root, "celery-ws")
        self.workers: list = []
        self.runs = 0

    def __enter__(self) -> "CeleryPeer":  # noqa: PYI034 (typing.Self needs 3.11)
        os.environ.update(LP_PEER_REDIS=self.args.redis, LP_PEER_QUEUE=self.queue)
        import celery_peer

        self.app, self.run = celery_peer.app, celery_peer.run_action
        self.log = open(os.path.join(self.root, "celery-workers.log"), "wb")   # noqa: SIM115 - closed in __exit__
        try:
            for i in range(self.args.nodes):
                self.workers.append(subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "celery_peer", "worker", "-P", "prefork",
                     "-c", str(self.args.slots), "-Q", self.queue, "-n", f"peer{i}-{self.queue}@%h",
                     "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                    cwd=HERE, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True))
            deadline = time.monotonic() + 120
            while len(self.app.control.ping(timeout=1.0)) < self.args.nodes:
                if time.monotonic() > deadline or any(w.poll() is not None for w in self.workers):
                    raise RuntimeError(f"the Celery workers did not start (see {self.log.name})")
            for i in range(self.args.nodes * self.args.slots):   # warm-up, as the cluster's
                self.dag()
                self.run.delay(self.appdir, os.path.join(self.workspaces, f"warm-one{i}")).get(timeout=60)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
        self.log.close()
        import redis

        redis.Redis.from_url(self.args.redis).delete(self.queue)

    def dag(self) -> tuple:
        """One chord: (seconds from its submission to the callback's end, the client's seconds)."""
        from celery import chord

        self.runs += 1
        base, run, appdir = os.path.join(self.workspaces, f"dag{self.runs}"), self.run, self.appdir
        start = time.time()
        header = [run.si(appdir, os.path.join(base, "a")), run.si(appdir, os.path.join(base, "b"))]
        result = chord(header)(run.si(appdir, os.path.join(base, "c")))
        ended = result.get(timeout=60)
        wall = time.time() - start
        result.forget()
        return ended - start, wall

    def throughput(self, tasks: int) -> dict:
        """``tasks`` tasks submitted at once: their rate, and the workers' own CPU."""
        from celery.result import ResultSet

        processes = [w.pid for w in self.workers] + [c for w in self.workers for c in children(w.pid)]
        cpu_before = own_cpu_seconds(processes)
        start = time.time()
        results = ResultSet([self.run.delay(self.appdir, os.path.join(self.workspaces, f"one{i}"))
                             for i in range(tasks)])
        submitted = time.time() - start
        ends = results.get(timeout=600)
        elapsed = time.time() - start
        cpu_after = own_cpu_seconds(processes)
        results.forget()
        return {"throughput": {"tasks": tasks, "tasks_per_s": round(tasks / (max(ends) - start), 1),
                               "client_tasks_per_s": round(tasks / elapsed, 1), "submit_s": round(submitted, 2)},
                "workers_cpu_ms_per_task": round((cpu_after - cpu_before) / tasks * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    bench.add_arguments(parser)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Celery's broker and result backend")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="litepipeline-peers-")
    try:
        appdir = bench.prepare(root)
        result: dict = {"nodes": args.nodes, "slots_per_node": args.slots, "python3": sys.version.split()[0]}
        reason = unavailable(args.redis)
        if reason:
            print(f"peers.py: Celery skipped: {reason}", file=sys.stderr)
        peers = () if reason else (("celery", lambda: CeleryPeer(args, appdir, root)),)
        result.update(bench.measure(args, appdir, root, peers))
        if reason:
            result["celery"] = {"skipped": reason}
        else:
            import celery

            result["celery"]["version"] = celery.__version__
            ours, theirs = result["litepipeline"], result["celery"]
            result["litepipeline_beats_celery"] = {
                "dag_latency": ours["dag_ratio_to_floor"] < theirs["dag_ratio_to_floor"],
                "throughput": ours["throughput_ratio_to_floor_rate"] > theirs["throughput_ratio_to_floor_rate"]}
    finally:
        subprocess.run(["rm", "-rf", root], check=False)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
