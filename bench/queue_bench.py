#!/usr/bin/env python3
"""The manager with a long pending queue: memory, start time, first dispatch.

``queue_figures(n)``: fills a fresh SQLite store with ``n`` pending tasks of a
three-action application (bulk inserts through the store's own ``Store.save`` of
``Batch``es of 5,000 tasks, as rounds write them), starts a real ``litemanager`` on it and
reports its RSS and start time (process start until its HTTP port answers: the store is
loaded before the port opens); then starts a ``litenode`` and reports the time until the
oldest task's first action is dispatched (its task is ``running`` in ``task info``), from
the node's start and from its registration, and the manager's RSS after.

``parked_figures(n)``: the same store, but every task's actions target a node label no
node offers (``gpu: absent``); a node without it joins, then one task it can run is created
over HTTP: the time until that task is dispatched (it waits behind none of the ``n``: the
scheduler holds one window of them and parks the rest in the store), the manager's RSS,
and how many wait in memory and in the store.

``creation_figures(n)``: a fresh manager, ``n`` tasks created through ``POST
/task/create`` by a few client threads, the manager's RSS sampled as they are created; the
growth per task extrapolated to 100,000.

    .venv/bin/python bench/queue_bench.py [--tasks 100000] [--create 20000] [--parked 100000]
                                          [--window N]

Prints JSON; asserts nothing. ``--window`` sets the manager's ``queue_window`` (a window
larger than the queue gives the behaviour before the backlog: every task in memory).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
import threading
import time
from typing import Any, Iterator, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from litepipeline.common.appspec import ActionSpec  # noqa: E402
from litepipeline.common.config import ManagerConfig  # noqa: E402
from litepipeline.common.targets import parse_target  # noqa: E402
from litepipeline.manager.store.store import Store, sqlite_url  # noqa: E402
from litepipeline.manager.taskstate import ActionState, Batch, TaskState  # noqa: E402
from tests.e2e.harness import LiteCluster, wait_for  # noqa: E402
from tests.fixtures import make_app  # noqa: E402

CHUNK = 5000


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fp:
        for line in fp:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


def _manager_pid(cluster: LiteCluster) -> int:
    return cluster.manager.proc.pid


def start_manager(cluster: LiteCluster, timeout: float = 900) -> None:
    """Start the manager; wait until its HTTP port answers (the store is loaded by then)."""
    cluster.manager.start()
    wait_for(cluster._manager_up, timeout, 0.01, "manager to answer")


def fill(data_path: str, app: dict, n: int, target: Optional[dict] = None) -> list[str]:
    """``n`` pending tasks of ``app`` (its row as ``app info`` shows it), oldest first; each
    action with ``target`` when given."""
    extra = {"target": parse_target(target)} if target else {}
    store = Store(sqlite_url(data_path))
    config = app["config"]["actions"]
    now = dt.datetime.now()
    ids = []
    try:
        for start in range(0, n, CHUNK):
            batch = Batch()
            for i in range(start, min(start + CHUNK, n)):
                task_id = f"{i:08d}-0000-4000-8000-000000000000"
                ids.append(task_id)
                task = TaskState(task_id=task_id, task_name=f"queued {i}", application_id=app["application_id"],
                                 app_sha1=app["sha1"], input_data={"i": i}, stage="pending", create_at=now,
                                 update_at=now)
                batch.new_tasks.append(task)
                for seq, spec in enumerate(config):
                    batch.new_actions.append(ActionState.from_spec(
                        task_id, ActionSpec(spec["name"], spec["main"], list(spec["condition"]), **extra), seq))
            store.save(batch)
    finally:
        store.close()
    return ids


@contextlib.contextmanager
def _cluster_with_app(window: Optional[int], root: Optional[str]) -> Iterator[tuple[LiteCluster, str]]:
    """A manager in a temporary directory (its ``queue_window`` is ``window`` when given) and
    the id of an application uploaded to it."""
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        overrides: dict[str, Any] = {"log_level": "INFO"}
        if window is not None:
            overrides["queue_window"] = window
        with LiteCluster(tmp, **overrides) as cluster:
            cluster.start_manager()
            yield cluster, cluster.upload(make_app(tmp))


def queue_figures(n: int = 100000, window: Optional[int] = None, slots: int = 2, root: Optional[str] = None,
                  timeout: float = 600) -> dict:
    """Start a manager on ``n`` stored pending tasks, then a node; see the module's docstring."""
    with _cluster_with_app(window, root) as (cluster, app_id):
        app = cluster.api.app_info(app_id, config=True)
        app = {**app["app_info"], "config": app["app_config"]}
        rss_empty = rss_mb(_manager_pid(cluster))
        cluster.manager.stop()
        cluster.manager.log.close()

        started = time.perf_counter()
        ids = fill(cluster.manager.config["data_path"], app, n)
        fill_s = time.perf_counter() - started

        started = time.perf_counter()
        start_manager(cluster)
        start_s = time.perf_counter() - started
        pid = _manager_pid(cluster)
        rss_start = rss_mb(pid)
        stats = cluster.api.cluster_info()["scheduler"]

        node = cluster.add_node(slots=slots, start=False, log_level="INFO")
        node_started = time.perf_counter()
        cluster.start_node(node, wait=False)
        registered = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if registered is None and cluster.api.cluster_info()["info"]["number_of_nodes"]:
                registered = time.perf_counter()
            if cluster.api.task_info(ids[0])["task_info"]["stage"] != "pending":
                break
            time.sleep(0.005)
        dispatched = time.perf_counter()
        registered = registered or dispatched
        rss_dispatch = rss_mb(pid)
        # a little while running: the window refills from the store
        time.sleep(5)
        after = cluster.api.cluster_info()["scheduler"]
        rss_running = rss_mb(pid)
        return {"tasks": n, "actions_per_task": len(app["config"]["actions"]), "queue_window": window or ManagerConfig().queue_window,
                "node_slots": slots, "fill_seconds": round(fill_s, 1),
                "rss_mb_empty_manager": rss_empty, "start_seconds": round(start_s, 2),
                "rss_mb_after_start": rss_start, "in_memory_after_start": stats["unfinished_tasks"],
                "backlog_after_start": stats["backlog_tasks"],
                "first_dispatch_after_node_start_s": round(dispatched - node_started, 3),
                "first_dispatch_after_registration_s": round(dispatched - registered, 3),
                "rss_mb_at_first_dispatch": rss_dispatch, "rss_mb_after_5s_running": rss_running,
                "backlog_after_5s_running": after["backlog_tasks"]}


def parked_figures(n: int = 100000, window: Optional[int] = None, slots: int = 2, root: Optional[str] = None,
                   timeout: float = 600) -> dict:
    """``n`` stored pending tasks no node can take, a node, then a task it can run; see the
    module's docstring."""
    with _cluster_with_app(window, root) as (cluster, app_id):
        app = cluster.api.app_info(app_id, config=True)
        app = {**app["app_info"], "config": app["app_config"]}
        cluster.manager.stop()
        cluster.manager.log.close()
        fill(cluster.manager.config["data_path"], app, n, {"labels": {"gpu": "absent"}})
        start_manager(cluster)
        pid = _manager_pid(cluster)
        rss_start = rss_mb(pid)
        cluster.add_node(slots=slots, log_level="INFO")
        # a round with the node's slots free finds them unplaceable and parks the surplus
        wait_for(lambda: cluster.api.cluster_info()["info"]["number_of_nodes"], timeout, 0.01, "the node")
        started = time.perf_counter()
        task_id = cluster.api.task_create(app_id, "runnable", {})["task_id"]
        wait_for(lambda: cluster.api.task_info(task_id)["task_info"]["stage"] != "pending", timeout, 0.005,
                 "the runnable task to start")
        dispatched = time.perf_counter() - started
        stats = cluster.api.cluster_info()["scheduler"]
        waiting = cluster.api.task_info(f"{n - 1:08d}-0000-4000-8000-000000000000")["task_info"]["waiting_for"]
        return {"tasks": n, "queue_window": window or ManagerConfig().queue_window, "node_slots": slots,
                "rss_mb_after_start": rss_start, "runnable_task_dispatched_after_create_s": round(dispatched, 3),
                "rss_mb_at_dispatch": rss_mb(pid), "in_memory": stats["unfinished_tasks"],
                "in_store": stats["backlog_tasks"], "newest_waiting_for": waiting}


def creation_figures(n: int = 20000, window: Optional[int] = None, clients: int = 4,
                     root: Optional[str] = None) -> dict:
    """RSS of a manager while ``n`` tasks are created over HTTP (no node)."""
    with _cluster_with_app(window, root) as (cluster, app_id):
        pid = _manager_pid(cluster)
        cluster.api.task_create(app_id, "warm-up", {})
        rss_before = rss_mb(pid)
        samples: list[tuple[int, float]] = [(1, rss_before)]
        done = [1]
        lock = threading.Lock()

        def client() -> None:
            from litepipeline.client.api import ManagerClient
            api = ManagerClient(cluster.address)
            try:
                while True:
                    with lock:
                        if done[0] >= n:
                            return
                        done[0] += 1
                    api.task_create(app_id, "created", {"x": 1})
            finally:
                api.close()

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        peak = rss_before
        while any(t.is_alive() for t in threads):
            time.sleep(0.5)
            rss = rss_mb(pid)
            peak = max(peak, rss)
            samples.append((done[0], rss))
        elapsed = time.perf_counter() - started
        rss_after = rss_mb(pid)
        stats = cluster.api.cluster_info()["scheduler"]
        per_task = (rss_after - rss_before) * 1024 * 1024 / max(1, n - 1)
        # the second half's growth per task: past the window, what each backlogged task costs
        half = next(((count, rss) for count, rss in samples if count >= n // 2), samples[-1])
        per_task_tail = (rss_after - half[1]) * 1024 * 1024 / max(1, n - half[0])
        return {"created": n, "clients": clients,
                "queue_window": window or ManagerConfig().queue_window, "seconds": round(elapsed, 1),
                "rss_mb_before": rss_before, "rss_mb_after": rss_after, "rss_mb_peak": peak,
                "bytes_per_task": round(per_task), "bytes_per_task_second_half": round(per_task_tail),
                "in_memory": stats["unfinished_tasks"], "backlog": stats["backlog_tasks"],
                "rss_mb_extrapolated_100k": round(rss_after + per_task_tail * (100000 - n) / 1024 / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100000, help="pending tasks in the store at start")
    parser.add_argument("--create", type=int, default=20000, help="tasks created over HTTP (0: skip)")
    parser.add_argument("--parked", type=int, default=100000,
                        help="pending tasks for a label no node offers, then a runnable one (0: skip)")
    parser.add_argument("--window", type=int, default=None, help="the manager's queue_window")
    args = parser.parse_args()
    out = {"queue": queue_figures(args.tasks, args.window)} if args.tasks else {}
    if args.parked:
        out["parked"] = parked_figures(args.parked, args.window)
    if args.create:
        out["creation"] = creation_figures(args.create, args.window)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
