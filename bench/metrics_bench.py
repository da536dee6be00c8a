"""What the manager's metrics cost per task, in-process (no network, no store).

Drives the scheduler core through one-action tasks as the dispatcher does (create, dispatch
and result: three rounds) and times only the metrics' hooks: ``ManagerMetrics.saved`` for
each round's batch, ``commit`` for each round's store commit, and two HTTP requests'
``observe`` (the task's create and one ``task info``). Prints one JSON object.

    .venv/bin/python bench/metrics_bench.py [--tasks 20000]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from litepipeline.common import clock  # noqa: E402
from litepipeline.common.appspec import ActionSpec  # noqa: E402
from litepipeline.common.messages import Report  # noqa: E402
from litepipeline.manager.metrics import ManagerMetrics  # noqa: E402
from litepipeline.manager.scheduler import SchedulerCore  # noqa: E402
from litepipeline.manager.taskstate import DAG, ActionState, TaskState  # noqa: E402


class FakeRequest:
    def request_time(self) -> float:
        return 0.0012


class FakeHandler:
    request = FakeRequest()

    def get_status(self) -> int:
        return 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20000)
    args = parser.parse_args()
    core = SchedulerCore()
    core.node_up("n1", [], True, args.tasks)
    metrics = ManagerMetrics(core, process=False)
    handler = FakeHandler()
    spent = 0.0
    start_all = time.perf_counter()
    for i in range(args.tasks):
        now = clock.now()
        task = TaskState(task_id=f"t{i}", task_name="t", application_id="a", app_sha1="s", input_data={},
                         stage="pending", create_at=now, update_at=now)
        task.actions["only"] = ActionState.from_spec(task.task_id, ActionSpec("only", "true", []), 0, DAG)
        core.add_task(task)
        (dispatch,) = core.schedule()
        batch = core.take_batch()   # created and dispatched in one round
        started = time.perf_counter()
        metrics.saved(batch)   # as the dispatcher does: before the next round changes its objects
        metrics.commit(0.0004)
        spent += time.perf_counter() - started
        message = dispatch.message
        stamp = clock.fmt(clock.now())
        core.report(Report(name="only", task_id=message.task_id, attempt_id=message.attempt_id, stage="finished",
                           node_id="n1", attempt=message.attempt, status="success", start_at=stamp, end_at=stamp,
                           returncode=0, result={}))
        batch = core.take_batch()
        started = time.perf_counter()
        metrics.saved(batch)
        metrics.commit(0.0004)
        metrics.http.observe(handler)
        metrics.http.observe(handler)
        spent += time.perf_counter() - started
    total = time.perf_counter() - start_all
    metrics_text = metrics.text()
    assert b'litepipeline_tasks_finished_total{status="success"} %d.0' % args.tasks in metrics_text
    print(json.dumps({"tasks": args.tasks, "metrics_us_per_task": round(spent / args.tasks * 1e6, 2),
                      "core_and_metrics_us_per_task": round(total / args.tasks * 1e6, 2),
                      "scrape_bytes": len(metrics_text)}, indent=2))


if __name__ == "__main__":
    main()
