"""Placement's cost in the scheduler core (pure: no network, no store).

Times ``SchedulerCore.schedule()`` dispatching one-action tasks onto ``--nodes`` nodes (half
of them labelled gpu=a100, half zone=b), and prints
µs per dispatched action (median and minimum of ``--repeat`` runs) for:

  plain          actions without a target (the hot path placement must not slow down)
  labels         every action targets a label half of the nodes have
  blocked        plain actions behind ``--blocked`` tasks whose target no node matches
                 (µs per dispatched plain action, the unmatched ones skipped every round)
  rescan         ms of a later round over ``--blocked`` such tasks with slots free and
                 nothing to place: ``rescan_shared`` when the tasks share one target
                 object (one application's), ``rescan_own`` when each has its own (targets
                 from the task's input)

    .venv/bin/python bench/placement_bench.py [--tasks 2000] [--repeat 7] [--blocked 500] [--nodes 4]
                                              [--only plain|labels|blocked|rescan]

Run it against another checkout (``PYTHONPATH=/path/to/other .venv/bin/python
bench/placement_bench.py --only plain``) to compare the plain case across versions.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time

from litepipeline.common.appspec import ActionSpec
from litepipeline.manager.scheduler import SchedulerCore
from litepipeline.manager.taskstate import ActionState, TaskState

T0 = dt.datetime(2026, 1, 1)


def task(task_id: str, target=None) -> TaskState:
    state = TaskState(task_id=task_id, task_name="t", application_id="app", app_sha1="sha", input_data={},
                      stage="pending", create_at=T0, update_at=T0)
    spec = ActionSpec("only", "run")
    action = ActionState.from_spec(task_id, spec, 0)
    if target is not None:
        action.target = target
    state.actions["only"] = action
    return state


def core_with_nodes(count: int, slots: int, labelled: bool):
    core = SchedulerCore(clock_fn=lambda: T0)
    for i in range(count):
        core.node_up(f"n{i}", [], True, slots)
        if labelled:
            from litepipeline.manager.placement import NodeFacts
            core.nodes[f"n{i}"].facts = NodeFacts.of({"gpu": "a100"} if i % 2 else {"zone": "b"}, "x86_64", None)
    return core


def run(case: str, tasks: int, blocked: int, nodes: int) -> float:
    labelled = case != "plain"
    core = core_with_nodes(nodes, tasks, labelled)
    if case == "blocked":
        for i in range(blocked):
            core.add_task(task(f"b{i}", {"labels": {"gpu": "h100"}}))
    target = {"labels": {"gpu": "a100"}} if case == "labels" else None
    for i in range(tasks):
        core.add_task(task(f"t{i}", target))
    core.take_batch()
    start = time.perf_counter()
    out = core.schedule()
    elapsed = time.perf_counter() - start
    assert len(out) == tasks, (case, len(out))
    return elapsed / tasks * 1e6


def rescan(blocked: int, nodes: int, shared: bool) -> float:
    core = core_with_nodes(nodes, 2, True)
    one = {"labels": {"gpu": "h100"}}
    for i in range(blocked):
        core.add_task(task(f"b{i}", one if shared else {"labels": {"gpu": "h100"}}))
    core.take_batch()
    core.schedule()   # the first round works out what each task could run
    start = time.perf_counter()
    assert core.schedule() == []
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--blocked", type=int, default=500)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--only", choices=("plain", "labels", "blocked", "rescan"), default=None)
    args = parser.parse_args()
    cases = [args.only] if args.only else ["plain", "labels", "blocked", "rescan"]
    out = {}
    for case in cases:
        if case == "rescan":
            for shared, name in ((True, "shared"), (False, "own")):
                runs = [rescan(args.blocked, args.nodes, shared) for _ in range(args.repeat)]
                out[f"rescan_{name}_ms"] = round(statistics.median(runs), 2)
            continue
        runs = [run(case, args.tasks, args.blocked, args.nodes) for _ in range(args.repeat)]
        out[f"{case}_us_per_action"] = round(statistics.median(runs), 2)
        out[f"{case}_us_per_action_min"] = round(min(runs), 2)   # the least disturbed run
    print(json.dumps(out))


if __name__ == "__main__":
    main()
