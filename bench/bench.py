"""LitePipeline benchmark: latency and throughput against the cost of the actions themselves.

Starts a manager and N nodes on loopback in a temporary directory and prints one JSON
object. Every part — manager, nodes, the floor measurements — runs with the same PATH,
whose first entry is this venv's bin directory, so ``python3`` is the same interpreter
everywhere (a pyenv shim would otherwise dominate the timings).

    .venv/bin/python bench/bench.py [--nodes 2] [--slots 2] [--dag-runs 20] [--tasks 300]
                                    [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

Measures:
  floor          median wall time of one no-op action command run directly
  dag_floor      first and second run by hand in parallel, then third (median; each run
                 alternates with one of LitePipeline's, so the machine's drift hits both)
  floor_rate     no-op commands/s through a thread pool as wide as the cluster's slots
                 (the mean of a run before LitePipeline's throughput run and one after)
  dag_latency    task create -> finished for first+second -> third (median, p90)
  throughput     one-action no-op tasks submitted at once, tasks/s until all finished
  peak RSS of manager and nodes, manager CPU seconds per task
  cpu_ms_per_task  the whole machine's busy CPU (/proc/stat) per task in the throughput
                 run, split into manager, nodes, this submitting client and the rest
                 (the actions, their shells, the kernel, anything else running), and
                 apart the time a hypervisor gave this machine's cores to others; beside
                 it ``floor_cpu_ms_per_command``, the same for the floor rate's commands
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from litepipeline.client.api import ManagerClient  # noqa: E402
from tests.e2e.harness import LiteCluster, wait_for  # noqa: E402
from tests.fixtures import make_app  # noqa: E402

NOOP_DAG = {"actions": [
    {"name": "first", "condition": [], "main": "python3 noop.py"},
    {"name": "second", "condition": [], "main": "python3 noop.py"},
    {"name": "third", "condition": ["first", "second"], "main": "python3 noop.py"},
]}
NOOP_ONE = {"actions": [{"name": "only", "condition": [], "main": "python3 noop.py"}]}


def percentile(values: list, q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[index]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def run_action(appdir: str, workspace: str) -> None:
    os.makedirs(workspace, exist_ok=True)
    with open(os.path.join(workspace, "input.data"), "w") as fp:
        fp.write("{}")
    subprocess.run(["bash", "-c", f"cd {appdir} && python3 noop.py {workspace}"], check=True)


def floor_dag(appdir: str, workspace: str, pool: cf.ThreadPoolExecutor) -> float:
    """Seconds for first and second by hand in parallel, then third."""
    start = time.perf_counter()
    futures = [pool.submit(run_action, appdir, os.path.join(workspace, n)) for n in ("a", "b")]
    for f in futures:
        f.result()
    run_action(appdir, os.path.join(workspace, "c"))
    return time.perf_counter() - start


def floor_rate(appdir: str, scratch: str, commands: int, slots: int) -> float:
    """No-op commands per second through a thread pool ``slots`` wide."""
    start = time.perf_counter()
    with cf.ThreadPoolExecutor(slots) as pool:
        list(pool.map(lambda i: run_action(appdir, os.path.join(scratch, f"{i}")), range(commands)))
    return commands / (time.perf_counter() - start)


def machine_cpu_s() -> tuple:
    """(busy, stolen): CPU seconds every core of this machine has spent at work since boot
    (user, nice, system, irq, softirq), and those a hypervisor ran something else while
    this machine wanted a core (steal: the noise of a shared host)."""
    with open("/proc/stat") as fp:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fp.readline().split()[1:9])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def own_cpu_s() -> float:
    """CPU seconds of this process (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def floor_single(appdir: str, scratch: str, runs: int) -> float:
    """Milliseconds of one no-op action command run directly (median of ``runs``)."""
    singles = []
    for i in range(runs):
        start = time.perf_counter()
        run_action(appdir, os.path.join(scratch, f"single{i}"))
        singles.append(time.perf_counter() - start)
    return ms(statistics.median(singles))


def latency(servers: list, walls: list) -> dict:
    return {"median": ms(statistics.median(servers)), "p90": ms(percentile(servers, 0.9)),
            "client_median": ms(statistics.median(walls))}


def proc_stat(pid: int) -> dict:
    with open(f"/proc/{pid}/status") as fp:
        status = dict(line.split(":", 1) for line in fp if ":" in line)
    with open(f"/proc/{pid}/stat") as fp:
        fields = fp.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"peak_rss_mb": round(int(status["VmHWM"].split()[0]) / 1024, 1),
            "cpu_s": (int(fields[11]) + int(fields[12])) / ticks}


def server_seconds(info: dict) -> float:
    from litepipeline.common import clock

    task = info["task_info"]
    return (clock.parse(task["end_at"]) - clock.parse(task["create_at"])).total_seconds()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--slots", type=int, default=2, help="action_slots per node")
    parser.add_argument("--dag-runs", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--database-url", default=None, help="default: SQLite in the manager's data_path")
    parser.add_argument("--postgres", default=None, metavar="URL",
                        help="a PostgreSQL database beside which the run makes its own (a unique name, "
                             "dropped after), e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--pg-synchronous-commit", choices=("on", "off"), default="on",
                        help="the manager's pg_synchronous_commit")


def prepare(root: str) -> str:
    """The no-op application directory; puts the actions' python3 first on PATH."""
    # the actions' python3: an empty venv of this interpreter, first on PATH for every part
    # (the daemons themselves run from this venv's console scripts, by absolute path)
    action_venv = os.path.join(root, "action-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", action_venv], check=True)
    os.environ["PATH"] = os.path.join(action_venv, "bin") + os.pathsep + os.environ.get("PATH", "")
    appdir = os.path.join(root, "floor-app")
    os.makedirs(appdir)
    with open(os.path.join(appdir, "noop.py"), "w") as fp:
        fp.write("import sys\n")
    return appdir


def with_ratios(result: dict, floor: dict) -> dict:
    """``result`` with its ratios to the floors measured in the same run."""
    result["dag_ratio_to_floor"] = round(result["dag_latency_ms"]["median"] / floor["dag_floor_ms"], 2)
    result["throughput_ratio_to_floor_rate"] = round(result["throughput"]["tasks_per_s"]
                                                     / floor["floor_rate_per_s"], 2)
    return result


@contextlib.contextmanager
def own_database(url: str) -> Iterator[str]:
    """A new PostgreSQL database beside ``url``'s, uniquely named; dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"lp_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Lite:
    """A LitePipeline cluster under measurement (a context manager: started, its apps
    uploaded and warmed up on entry, stopped on exit)."""

    def __init__(self, args: argparse.Namespace, root: str) -> None:
        self.args, self.root = args, root
        self.total_slots = args.nodes * args.slots
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "Lite":  # noqa: PYI034 (typing.Self needs 3.11)
        args = self.args
        try:
            database_url = args.database_url
            if args.postgres and not database_url:
                database_url = self._stack.enter_context(own_database(args.postgres))
            # the daemons' own defaults for their sweeps (the test harness makes them faster)
            overrides = {"log_level": "WARNING", "scheduler_interval": 1}
            if database_url:
                overrides["database_url"] = database_url
                if args.pg_synchronous_commit != "on":   # a manager older than the key refuses it
                    overrides["pg_synchronous_commit"] = args.pg_synchronous_commit
            self.cluster = cluster = self._stack.enter_context(
                LiteCluster(os.path.join(self.root, "cluster"), **overrides))
            cluster.start_manager()
            for _ in range(args.nodes):
                cluster.add_node(slots=args.slots, log_level="WARNING", heartbeat_interval=1, heartbeat_timeout=30,
                                 executor_interval=1, retry_interval=5)
            self.dag_app = cluster.upload(make_app(self.root, NOOP_DAG, name="dag.tar.gz"))
            self.one_app = cluster.upload(make_app(self.root, NOOP_ONE, name="one.tar.gz"))
            # warm-up: every node fetches both apps once
            for _ in range(self.total_slots):
                cluster.run_task(self.dag_app)
                cluster.run_task(self.one_app)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def dag(self) -> tuple:
        """One DAG task: (seconds from its create_at to its end_at, the client's seconds)."""
        start = time.perf_counter()
        # the latency is read from the task's own timestamps; the client creates the task
        # and waits for it in one held request instead of loading the machine it measures
        info = self.cluster.api.task_run(self.dag_app, "dag", {}, 60)
        wall = time.perf_counter() - start
        assert info["task_info"]["status"] == "success", info
        return server_seconds(info), wall

    def throughput(self, tasks: int) -> dict:
        """``tasks`` one-action tasks submitted at once: their rate, and what they cost."""
        cluster, one_app = self.cluster, self.one_app
        api = cluster.api
        result: dict = {}
        sched_before = api.cluster_info()["scheduler"]
        finished_before = api.task_list(limit=1, stage="finished", app_id=one_app)["total"]
        manager_before = proc_stat(cluster.manager.pid)
        nodes_before = [proc_stat(n.pid) for n in cluster.nodes]
        machine_before, client_before = machine_cpu_s(), own_cpu_s()
        start = time.perf_counter()
        # one client (one kept-alive connection) per thread: a shared one keeps only 10
        # connections, so 16 threads would open a new one for most requests
        clients = threading.local()

        def create(i: int) -> str:
            if not hasattr(clients, "api"):
                clients.api = ManagerClient(cluster.address, token=cluster.token)
                opened.append(clients.api)
            return clients.api.task_create(one_app, f"t{i}", {})["task_id"]

        opened: list = []
        with cf.ThreadPoolExecutor(16) as pool:
            ids = set(pool.map(create, range(tasks)))
        for client in opened:
            client.close()
        submitted = time.perf_counter() - start

        def all_done() -> bool:
            # limit=1: only the count matters, and a big page would cost the manager CPU
            reply = api.task_list(limit=1, stage="finished", app_id=one_app)
            return reply["total"] >= finished_before + tasks

        # the rate is read from the tasks' own timestamps: polling rarely keeps the client's
        # (and the manager's) work for the poll out of what is measured
        wait_for(all_done, 600, 0.5, "all tasks")
        elapsed = time.perf_counter() - start
        (busy, stolen), client = (b - a for a, b in zip(machine_before, machine_cpu_s())), own_cpu_s() - client_before
        manager_after = proc_stat(cluster.manager.pid)
        sched_after = api.cluster_info()["scheduler"]
        nodes_after = [proc_stat(n.pid) for n in cluster.nodes]
        rows = api.task_list(limit=tasks, app_id=one_app)["tasks"]
        mine = [r for r in rows if r["task_id"] in ids]
        from litepipeline.common import clock

        first = min(clock.parse(r["create_at"]) for r in mine)
        last = max(clock.parse(r["end_at"]) for r in mine)
        span = (last - first).total_seconds()
        result["throughput"] = {"tasks": tasks, "tasks_per_s": round(tasks / span, 1),
                                "client_tasks_per_s": round(tasks / elapsed, 1),
                                "submit_s": round(submitted, 2), "statuses": sorted({r["status"] for r in mine})}
        result["manager"] = {"peak_rss_mb": manager_after["peak_rss_mb"],
                             "cpu_ms_per_task": round((manager_after["cpu_s"] - manager_before["cpu_s"])
                                                      / tasks * 1000, 2)}
        commits = sched_after["commits"] - sched_before["commits"]
        result["store"] = {"commits_per_task": round(commits / tasks, 2),
                           "rounds_per_task": round((sched_after["rounds"] - sched_before["rounds"]) / tasks, 2),
                           "ms_per_commit": round((sched_after["commit_ms"] - sched_before["commit_ms"])
                                                  / max(commits, 1), 3)}
        result["nodes_peak_rss_mb"] = [proc_stat(n.pid)["peak_rss_mb"] for n in cluster.nodes]
        result["nodes_cpu_ms_per_task"] = round(sum(a["cpu_s"] - b["cpu_s"] for a, b in zip(nodes_after, nodes_before))
                                                / tasks * 1000, 2)
        split = {"machine": busy, "manager": manager_after["cpu_s"] - manager_before["cpu_s"],
                 "nodes": sum(a["cpu_s"] - b["cpu_s"] for a, b in zip(nodes_after, nodes_before)), "client": client}
        split["actions_and_other"] = split["machine"] - split["manager"] - split["nodes"] - split["client"]
        split["stolen"] = stolen   # not in "machine": the host's, not this run's
        result["cpu_ms_per_task"] = {k: round(v / tasks * 1000, 2) for k, v in split.items()}
        return result


def measure(args: argparse.Namespace, appdir: str, root: str, peers: tuple = ()) -> dict:
    """LitePipeline (and each of ``peers``: (name, a context manager factory) pairs) up at
    once; their DAG runs interleaved with the floor's, one of each in turn, and the
    throughput runs back to back between two floor-rate runs, so a load that comes and goes
    on the machine (a VM here drifts between faster and slower phases) falls on the floors
    and the systems alike. Returns ``{"floors": ..., name: result with its ratios}``."""
    slots = args.nodes * args.slots
    scratch = os.path.join(root, "floor-ws")
    with contextlib.ExitStack() as stack, cf.ThreadPoolExecutor(2) as pool:
        systems = {"litepipeline": stack.enter_context(Lite(args, root))}
        for name, factory in peers:
            systems[name] = stack.enter_context(factory())
        floor_dags: list = []
        dags: dict = {name: [] for name in systems}
        for i in range(args.dag_runs):
            floor_dags.append(floor_dag(appdir, os.path.join(scratch, f"dag{i}"), pool))
            for name, system in systems.items():
                dags[name].append(system.dag())
        before = machine_cpu_s()
        rates = [floor_rate(appdir, os.path.join(scratch, "rate0"), args.tasks, slots)]
        floor_cpu = [b - a for a, b in zip(before, machine_cpu_s())]
        results = {name: system.throughput(args.tasks) for name, system in systems.items()}
        before = machine_cpu_s()
        rates.append(floor_rate(appdir, os.path.join(scratch, "rate1"), args.tasks, slots))
        floor_cpu = [c + b - a for c, a, b in zip(floor_cpu, before, machine_cpu_s())]
    per_command = 1000 / (2 * args.tasks)
    floor = {"dag_floor_ms": ms(statistics.median(floor_dags)),
             "floor_rate_per_s": round(statistics.mean(rates), 1),
             "floor_rates_before_after": [round(r, 1) for r in rates],
             "floor_cpu_ms_per_command": round(floor_cpu[0] * per_command, 2),
             "floor_stolen_ms_per_command": round(floor_cpu[1] * per_command, 2)}
    out: dict = {"floors": floor}
    for name, runs in dags.items():
        result = {"dag_latency_ms": latency([s for s, _ in runs], [w for _, w in runs]), **results[name]}
        out[name] = with_ratios(result, floor)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="litepipeline-bench-")
    try:
        appdir = prepare(root)
        result: dict = {"nodes": args.nodes, "slots_per_node": args.slots, "python3": sys.version.split()[0]}
        result["floor_ms"] = floor_single(appdir, os.path.join(root, "floor-ws"), args.dag_runs)
        measured = measure(args, appdir, root)
        result.update(measured["floors"])
        result.update(measured["litepipeline"])
    finally:
        subprocess.run(["rm", "-rf", root], check=False)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
