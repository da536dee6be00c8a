"""Store.save() micro-benchmark: µs per scheduling round written, on SQLite and PostgreSQL.

Not a test: prints one JSON object. Two typical rounds, timed one save at a time (median
and p90 of ``--rounds`` saves each):

  new_task  a new task with 3 actions, 2 new attempts and the 2 dispatched actions updated
  report    an action finished: the action, its attempt and the task updated; the next action
            dispatched (one new attempt, one more action updated)

    .venv/bin/python bench/store_bench.py [--rounds 300] [--pg postgresql+psycopg://...]

PostgreSQL runs in a database of its own, created and dropped here; it is skipped (and
said so in the output) when no server answers.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import uuid

from sqlalchemy import create_engine, text

from litepipeline.manager.store.store import Store, safe_url, sqlite_url
from litepipeline.manager.taskstate import ActionState, AttemptRecord, Batch, TaskState

PG_DEFAULT = os.environ.get("LITEPIPELINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START = dt.datetime(2026, 1, 2, 3, 4, 5, 678901)


def new_task_round(i: int) -> tuple[Batch, TaskState]:
    """Round (a): task created and its two root actions dispatched."""
    now = START + dt.timedelta(seconds=i, microseconds=i)
    task_id = str(uuid.uuid4())
    task = TaskState(task_id=task_id, task_name=f"bench {i}", application_id=str(uuid.uuid4()),
                     app_sha1="a" * 40, input_data={"n": i, "ß": "ü"}, stage="running", create_at=now,
                     update_at=now, start_at=now)
    actions = [ActionState(task_id, "first", "python3 noop.py", seq=0),
               ActionState(task_id, "second", "python3 noop.py", seq=1),
               ActionState(task_id, "third", "python3 noop.py", seq=2, condition=["first", "second"],
                           input_data={"k": [1, 2.5, None]})]
    task.actions = {a.name: a for a in actions}
    batch = Batch(new_tasks=[task], new_actions=list(actions))
    for action in actions[:2]:
        action.attempt, action.attempt_id, action.node_id = 1, str(uuid.uuid4()), "node-1"
        action.stage, action.dispatched_at = "running", now
        batch.new_attempts.append(AttemptRecord(action.attempt_id, task_id, action.name, 1, "node-1", now))
        batch.actions[(task_id, action.name)] = action
    return batch, task


def report_round(task: TaskState, records: list) -> Batch:
    """Round (b): ``first`` finished with an output; ``third`` is dispatched."""
    now = task.update_at + dt.timedelta(milliseconds=250)
    first, third = task.actions["first"], task.actions["third"]
    first.stage, first.status, first.start_at, first.end_at = "finished", "success", now, now
    first.returncode, first.output = 0, {"data": {"result": [1, 2, 3], "name": "ok"}, "actions": []}
    record = records[0]
    record.status, record.returncode, record.start_at, record.end_at = "success", 0, now, now
    task.update_at = now
    third.attempt, third.attempt_id, third.node_id = 1, str(uuid.uuid4()), "node-2"
    third.stage, third.dispatched_at = "running", now
    new = AttemptRecord(third.attempt_id, task.task_id, third.name, 1, "node-2", now)
    return Batch(tasks={task.task_id: task},
                 actions={(task.task_id, "first"): first, (task.task_id, "third"): third},
                 new_attempts=[new], attempts={record.attempt_id: record})


def timed(store: Store, batch: Batch) -> float:
    start = time.perf_counter()
    store.save(batch)
    return time.perf_counter() - start


def stats(seconds: list) -> dict:
    ordered = sorted(seconds)
    return {"median_us": round(statistics.median(ordered) * 1e6, 1),
            "p90_us": round(ordered[int(0.9 * (len(ordered) - 1))] * 1e6, 1)}


def run(store: Store, rounds: int, warmup: int = 20) -> dict:
    store.migrate()
    made = [new_task_round(i) for i in range(rounds + warmup)]
    new_times = [timed(store, batch) for batch, _ in made]
    report_times = [timed(store, report_round(task, batch.new_attempts)) for batch, task in made]
    return {"new_task": stats(new_times[warmup:]), "report": stats(report_times[warmup:])}


def postgres(url: str, rounds: int) -> dict:
    name = f"lp_bench_{uuid.uuid4().hex[:12]}"
    try:   # psycopg missing, or no server
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        return {"skipped": f"no server at {safe_url(url)} ({type(exc).__name__})"}
    store = Store(url.rsplit("/", 1)[0] + "/" + name)
    try:
        return run(store, rounds)
    finally:
        store.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--pg", default=PG_DEFAULT,
                        help="an existing PostgreSQL database (the bench makes its own beside it)")
    args = parser.parse_args()
    result: dict = {"rounds": args.rounds, "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory(prefix="litepipeline-store-bench-") as root:
        store = Store(sqlite_url(root))
        try:
            result["sqlite"] = run(store, args.rounds)
        finally:
            store.close()
    result["postgresql"] = postgres(args.pg, args.rounds)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
