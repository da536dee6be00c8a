#!/usr/bin/env python3
"""How the web interface's task pages cost over a large task table (SQLite).

Fills a temporary store with N finished tasks (default 100,000), then times, each as the
median of 20 runs: the first page, a page deep in the table by keyset (what /ui/api/tasks
does) and by OFFSET (what /task/list does), and filtered pages (status; a name
substring). Prints JSON; asserts nothing.

    .venv/bin/python bench/ui_tasks_bench.py [--tasks 100000]
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from litepipeline.manager.store.store import Store, sqlite_url  # noqa: E402
from litepipeline.manager.store.tasks_page import task_page  # noqa: E402
from litepipeline.manager.taskstate import Batch, TaskState  # noqa: E402


def fill(store: Store, count: int) -> None:
    now = dt.datetime(2026, 1, 1)
    for start in range(0, count, 5000):
        store.save(Batch(new_tasks=[
            TaskState(task_id=f"{i:036}", task_name=f"job {i}", application_id=f"app-{i % 7}", app_sha1="s" * 40,
                      input_data={}, stage="finished", status="fail" if i % 50 == 0 else "success", create_at=now,
                      update_at=now) for i in range(start, min(start + 5000, count))]))


def median_ms(fn, runs: int = 20) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lp-ui-bench-") as root:
        store = Store(sqlite_url(root))
        store.migrate()
        fill(store, args.tasks)
        deep = args.tasks // 2
        # the id a keyset walk would hold after `deep` rows (the table's ids are 1..N)
        before = args.tasks - deep + 1
        out = {
            "tasks": args.tasks,
            "first_page_ms": median_ms(lambda: task_page(store.engine, None, 50)),
            "deep_page_keyset_ms": median_ms(lambda: task_page(store.engine, before, 50)),
            "deep_page_offset_ms": median_ms(lambda: store.list_tasks(deep, 50)),
            "status_fail_first_page_ms": median_ms(lambda: task_page(store.engine, None, 50, status="fail")),
            "name_substring_first_page_ms": median_ms(lambda: task_page(store.engine, None, 50, name="job 4242")),
        }
        store.close()
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
