#!/usr/bin/env python3
"""A manager over a large history: 100,000 finished tasks with their actions and attempts.

Fills a store (SQLite in a temporary directory, or ``--database-url`` for PostgreSQL: a
database of its own is created and dropped) by bulk inserts straight into the tables:
through the HTTP API the fill would take hours, so the rows are written as the
scheduler writes them, and the output says so. Then starts a real ``litemanager`` on it
and measures, over HTTP on one kept-alive connection:

- the manager's start (process start to its first answer) and its RSS (VmRSS, VmHWM),
  idle after start and after the requests; an idle ``litenode``'s RSS too;
- ``GET /task/list`` pages of 50 (no filter; stage; status; app_id; work_id; a page
  5,000 deep by offset), median and p90 over ``--requests`` requests each;
- ``GET /task/info`` of random tasks, median and p90;
- a HEARTBEAT round trip on the TCP channel from a registered (fake) node;
- with ``--retention-seconds S``: a manager whose ``task_retention`` covers every task,
  for S seconds: tasks deleted per second, and heartbeats and ``task list`` meanwhile.

Prints JSON; asserts nothing. When ``bench/queue_bench.py`` exists, its
``queue_figures(...)`` (the 100,000 *pending* tasks measurement) joins the output under
``"queue"``.

    .venv/bin/python bench/scale.py [--tasks 100000] [--requests 200]
    .venv/bin/python bench/scale.py --database-url postgresql+psycopg2://postgres@127.0.0.1/test
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import importlib.util
import inspect
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any, Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from litepipeline.common import protocol  # noqa: E402
from litepipeline.manager.store import models, models_workflows  # noqa: E402
from litepipeline.manager.store.store import Store, sqlite_url  # noqa: E402

BIN = os.path.dirname(sys.executable)
APPS = 7
ACTIONS = ("first", "second", "third")
TASKS_PER_WORK = 3
CHUNK = 5000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the fill ---------------------------------------------------------------------------
def fill(url: str, count: int) -> dict:
    """``count`` finished tasks (3 actions, 1 attempt each; every 10th with a retried
    first action; 1 in 50 failed; 1 in 10 an entry of a finished work), oldest first."""
    store = Store(url)
    store.migrate()
    store.close()
    engine = create_engine(url, future=True)
    base = dt.datetime(2026, 1, 1)
    app_ids = [str(uuid.UUID(int=i + 1)) for i in range(APPS)]
    work_ids: list[str] = []
    sample: list[str] = []
    rows = 0
    with engine.begin() as conn:
        conn.execute(insert(models.APPLICATIONS), [
            {"application_id": a, "name": f"app {i}", "description": "", "sha1": "a" * 40, "create_at": base,
             "update_at": base} for i, a in enumerate(app_ids)])
    for start in range(0, count, CHUNK):
        tasks, actions, attempts, works = [], [], [], []
        for i in range(start, min(start + CHUNK, count)):
            task_id = str(uuid.uuid4())
            created = base + dt.timedelta(seconds=i)
            ended = created + dt.timedelta(seconds=2)
            failed = i % 50 == 0
            work_id = None
            if i % 10 == 0:
                if i % (10 * TASKS_PER_WORK) == 0:
                    work_ids.append(str(uuid.uuid4()))
                    works.append({"work_id": work_ids[-1], "name": f"work {i}", "workflow_id": str(uuid.UUID(int=99)),
                                  "create_at": created, "start_at": created, "update_at": ended, "end_at": ended,
                                  "stage": "finished", "status": "success", "input_data": {}, "configuration": {},
                                  "pinned": {}, "entries": {}})
                work_id = work_ids[-1]
            if i % 997 == 0:
                sample.append(task_id)
            tasks.append({"task_id": task_id, "task_name": f"job {i}", "application_id": app_ids[i % APPS],
                          "app_sha1": "a" * 40, "input_data": {"n": i}, "stage": "finished",
                          "status": "fail" if failed else "success", "message": "action third failed" if failed
                          else None, "create_at": created, "start_at": created, "update_at": ended, "end_at": ended,
                          "work_id": work_id})
            for seq, name in enumerate(ACTIONS):
                node = str(uuid.UUID(int=1000 + i % 4))
                status = "fail" if failed and name == "third" else "success"
                tries = 2 if i % 10 == 0 and seq == 0 else 1
                for attempt in range(1, tries + 1):
                    attempts.append({"attempt_id": str(uuid.uuid4()), "task_id": task_id, "name": name,
                                     "attempt": attempt, "node_id": node, "dispatched_at": created,
                                     "start_at": created, "end_at": ended,
                                     "status": status if attempt == tries else "fail",
                                     "returncode": 0 if status == "success" and attempt == tries else 1,
                                     "message": None})
                actions.append({"task_id": task_id, "name": name, "seq": seq, "main": f"python {name}.py",
                                "condition": [] if seq < 2 else ["first", "second"], "env": None,
                                "input_data": {}, "kind": "dag", "retries": 1, "retry_delay": 0,
                                "stage": "finished", "status": status, "attempt": tries,
                                "attempt_id": attempts[-1]["attempt_id"], "node_id": node, "dispatched_at": created,
                                "start_at": created, "end_at": ended, "returncode": 0 if status == "success" else 1,
                                "output": {"data": {"value": i, "name": name}, "actions": []}, "message": None})
        with engine.begin() as conn:
            if works:
                conn.execute(insert(models_workflows.WORKS), works)
            conn.execute(insert(models.TASKS), tasks)
            conn.execute(insert(models.ACTIONS), actions)
            conn.execute(insert(models.ATTEMPTS), attempts)
        rows += len(tasks) + len(actions) + len(attempts) + len(works)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return {"app_ids": app_ids, "work_ids": work_ids, "sample": sample, "rows": rows}


# -- the processes ----------------------------------------------------------------------
def rss(pid: int) -> dict:
    """VmRSS and VmHWM of ``pid`` in MB."""
    out = {}
    with open(f"/proc/{pid}/status") as fp:
        for line in fp:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key.lower() + "_mb"] = round(int(value.split()[0]) / 1024, 1)
    return out


def start(command: str, directory: str, config: dict) -> subprocess.Popen:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "configuration.yml")
    with open(path, "w") as fp:
        json.dump(config, fp)   # JSON is YAML
    log = open(os.path.join(directory, "stderr.log"), "ab")  # noqa: SIM115 - the process holds it
    return subprocess.Popen([os.path.join(BIN, command), "-c", path], stdout=log, stderr=log)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_until(predicate: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode}")
        if predicate():
            return
        time.sleep(0.005)
    raise SystemExit(f"{proc.args[0]} did not come up in {timeout}s")


class Http:
    """One kept-alive connection to the manager."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str) -> dict:
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path}: HTTP {response.status} {body[:200]!r}")
        return json.loads(body)

    def answers(self) -> bool:
        """Whether the manager answers as the one that schedules (on PostgreSQL a manager
        answers as a standby until it holds the lease)."""
        try:
            return self.get("/").get("role") != "standby"
        except OSError:
            self.conn.close()
            return False


def cpu_ms(pid: Optional[int]) -> float:
    """User + system CPU time of ``pid`` so far, in ms (0 without a pid)."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as fp:
        fields = fp.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def timed(fn: Callable[[], Any], runs: int, pid: Optional[int] = None) -> dict:
    """Wall time per call (median, p90) and, with ``pid``, that process's CPU time per call:
    the figure a loaded machine (2 cores shared by many) disturbs least."""
    fn()   # warm
    times = []
    cpu = cpu_ms(pid)
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    cpu = (cpu_ms(pid) - cpu) / runs
    times.sort()
    out = {"median_ms": round(statistics.median(times), 2), "p90_ms": round(times[int(len(times) * 0.9) - 1], 2)}
    if pid is not None:
        out["manager_cpu_ms"] = round(cpu, 2)
    return out


def heartbeat_figures(port: int, runs: int, pid: int) -> dict:
    """Round trips of HEARTBEAT frames from a fake registered node holding nothing."""
    info = {"node_id": None, "http_host": "127.0.0.1", "http_port": free_port(), "action_slots": 2,
            "heartbeat_interval": 3600, "heartbeat_timeout": 3600, "data_path": "/nonexistent", "version": "bench"}
    buffer = bytearray()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(protocol.encode(protocol.REGISTER, info))
        answer = _read_frame(sock, buffer)
        info["node_id"] = answer["data"]["node_id"]
        frame = protocol.encode(protocol.HEARTBEAT, {**info, "running": []})

        def beat() -> None:
            sock.sendall(frame)
            _read_frame(sock, buffer)
        return timed(beat, runs, pid)


def retention_figures(root: str, config: dict, seconds: float) -> dict:
    """A manager with ``task_retention`` such that every filled task is past it: tasks
    deleted per second over ``seconds`` and, meanwhile, HEARTBEAT round trips and
    ``task list`` pages (what the retention must not stall)."""
    newest = dt.datetime(2026, 1, 1) + dt.timedelta(seconds=10_000_000)   # after any fill's last end_at
    days = (dt.datetime.now() - newest).total_seconds() / 86400
    if days <= 0:
        return {"skipped": "the machine's clock is before the filled tasks' end times"}
    config = dict(config, task_retention=days, log_path=os.path.join(root, "retention", "logs"))
    manager = start("litemanager", os.path.join(root, "retention"), config)
    try:
        client = Http(config["http_port"])
        wait_until(client.answers, manager)
        before = client.get("/task/list?limit=1")["total"]
        beats, pages = [], []
        info = {"node_id": None, "http_host": "127.0.0.1", "http_port": free_port(), "action_slots": 2,
                "heartbeat_interval": 3600, "heartbeat_timeout": 3600, "data_path": "/nonexistent",
                "version": "bench"}
        buffer = bytearray()
        with socket.create_connection(("127.0.0.1", config["tcp_port"])) as sock:
            sock.sendall(protocol.encode(protocol.REGISTER, info))
            info["node_id"] = _read_frame(sock, buffer)["data"]["node_id"]
            frame = protocol.encode(protocol.HEARTBEAT, {**info, "running": []})
            began = time.perf_counter()
            while time.perf_counter() - began < seconds:
                started = time.perf_counter()
                sock.sendall(frame)
                _read_frame(sock, buffer)
                beats.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                left = client.get("/task/list?limit=50")["total"]
                pages.append((time.perf_counter() - started) * 1000)
                if left == 0:
                    break
                time.sleep(0.05)
            elapsed = time.perf_counter() - began
        deleted = before - client.get("/task/list?limit=1")["total"]
        beats.sort()
        pages.sort()
        return {"seconds": round(elapsed, 1), "tasks_deleted": deleted, "per_second": round(deleted / elapsed, 1),
                "heartbeat_ms": {"median": round(statistics.median(beats), 2),
                                 "p99": round(beats[int(len(beats) * 0.99) - 1], 2), "max": round(beats[-1], 2)},
                "task_list_ms": {"median": round(statistics.median(pages), 2),
                                 "p99": round(pages[int(len(pages) * 0.99) - 1], 2), "max": round(pages[-1], 2)}}
    finally:
        stop(manager)


def _read_frame(sock: socket.socket, buffer: bytearray) -> dict:
    while protocol.FRAME_END not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("manager closed the TCP connection")
        buffer += chunk
    frame, _, rest = bytes(buffer).partition(protocol.FRAME_END)
    buffer[:] = rest
    body, _, crc = frame.partition(protocol.JSON_END)
    return protocol.decode(body, crc + protocol.FRAME_END)


def queue_figures_hook(args: argparse.Namespace) -> Optional[dict]:
    """The queue helper's 100,000-pending measurement, when bench/queue_bench.py is here:
    ``queue_figures`` gets those of ``tasks``, ``database_url`` and ``requests`` it takes
    and returns a JSON-able dict, printed under ``"queue"``."""
    path = os.path.join(HERE, "queue_bench.py")
    if not os.path.exists(path):
        return None
    spec = importlib.util.spec_from_file_location("queue_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    offered = {"tasks": args.tasks, "database_url": args.database_url, "requests": args.requests}
    params = inspect.signature(module.queue_figures).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return module.queue_figures(**offered)
    return module.queue_figures(**{k: v for k, v in offered.items() if k in params})


# -- the run ----------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="requests per measured route")
    parser.add_argument("--database-url", help="a PostgreSQL server URL; a database of its own is made there")
    parser.add_argument("--keep", help="fill this directory (SQLite) once and reuse it on later runs")
    parser.add_argument("--retention-seconds", type=float, default=0,
                        help="then run a manager whose task_retention covers every task for this long, "
                             "measuring heartbeats and task lists meanwhile (a kept store is copied first)")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="lp-scale-")
    admin, db_name = None, None
    out: dict[str, Any] = {"tasks": args.tasks}
    try:
        if args.database_url:
            db_name = f"lp_scale_{uuid.uuid4().hex[:8]}"
            admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT", future=True)
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{db_name}"'))
            url = make_url(args.database_url).set(database=db_name).render_as_string(hide_password=False)
        else:
            data = args.keep or os.path.join(root, "data")
            os.makedirs(data, exist_ok=True)
            url = sqlite_url(data)
        marker = os.path.join(args.keep, "filled.json") if args.keep else None
        started = time.perf_counter()
        if marker and os.path.exists(marker):
            with open(marker) as fp:
                filled = json.load(fp)
            out["fill"] = "reused " + args.keep
        else:
            filled = fill(url, args.tasks)
            if marker:
                with open(marker, "w") as fp:
                    json.dump(filled, fp)
            out["fill"] = (f"{filled['rows']} rows (tasks, actions, attempts, works) by bulk INSERTs into the store, "
                           f"not through the HTTP API, in {time.perf_counter() - started:.1f} s")
        out["store"] = make_url(url).get_backend_name()

        http_port, tcp_port = free_port(), free_port()
        config = {"log_level": "INFO", "log_path": os.path.join(root, "manager", "logs"),
                  "data_path": args.keep or os.path.join(root, "data"), "http_host": "127.0.0.1",
                  "http_port": http_port, "tcp_host": "127.0.0.1", "tcp_port": tcp_port}
        if args.database_url:
            config["database_url"] = url
        began = time.perf_counter()
        manager = start("litemanager", os.path.join(root, "manager"), config)
        node = None
        try:
            client = Http(http_port)
            wait_until(client.answers, manager)
            out["manager_start_s"] = round(time.perf_counter() - began, 2)
            time.sleep(1.0)
            out["manager_rss_idle"] = rss(manager.pid)
            apps, works, sample = filled["app_ids"], filled["work_ids"], filled["sample"]
            lists = {"none": "", "stage=finished": "&stage=finished", "status=fail": "&status=fail",
                     "status=success": "&status=success", "app_id": f"&app_id={apps[3]}",
                     "work_id": f"&work_id={works[len(works) // 2]}", "offset=5000": "&offset=5000"}
            out["task_list_limit_50"] = {}
            for name, query in lists.items():
                answer = client.get(f"/task/list?limit=50{query}")
                figures = timed(lambda q=query: client.get(f"/task/list?limit=50{q}"), args.requests, manager.pid)
                out["task_list_limit_50"][name] = {**figures, "total": answer["total"], "rows": len(answer["tasks"])}
            sizes = {}
            for name, query in (("limit=0 (capped)", "limit=0"), ("no limit", "")):
                client.conn.request("GET", f"/task/list?{query}")
                sizes[name] = f"{len(client.conn.getresponse().read()) / 1e6:.2f} MB"
            out["task_list_whole_answer"] = sizes
            rng = random.Random(1)
            out["task_info"] = timed(lambda: client.get(f"/task/info?task_id={rng.choice(sample)}"), args.requests,
                                    manager.pid)
            out["heartbeat_round_trip"] = heartbeat_figures(tcp_port, args.requests, manager.pid)
            out["manager_rss_after"] = rss(manager.pid)
            out["load_average"] = os.getloadavg()[0]
            node_config = {"log_level": "INFO", "log_path": os.path.join(root, "node", "logs"),
                           "data_path": os.path.join(root, "node", "data"), "http_host": "127.0.0.1",
                           "http_port": free_port(), "manager_http_host": "127.0.0.1",
                           "manager_http_port": http_port, "manager_tcp_host": "127.0.0.1",
                           "manager_tcp_port": tcp_port}
            node = start("litenode", os.path.join(root, "node"), node_config)
            wait_until(lambda: any(n.get("http_port") == node_config["http_port"]
                                   for n in client.get("/cluster/info")["info"]["nodes"]), node)
            time.sleep(1.0)
            out["node_rss_idle"] = rss(node.pid)
        finally:
            if node is not None:
                stop(node)
            stop(manager)
        if args.retention_seconds:
            if args.keep and not args.database_url:   # never empty the kept store
                shutil.copytree(args.keep, os.path.join(root, "retained"))
                config["data_path"] = os.path.join(root, "retained")
            out["retention"] = retention_figures(root, config, args.retention_seconds)
        queue = queue_figures_hook(args)
        if queue is not None:
            out["queue"] = queue
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
