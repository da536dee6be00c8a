"""The operator's CLI operations: logs, workspaces, rerun/recover, attempts and ``--long``.

:mod:`litepipeline.client.cli` lists them in its ``OPERATIONS``; what they need beyond a
plain call lives here.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from contextlib import AbstractContextManager
from typing import Callable, Optional

from litepipeline.client.api import ManagerClient, Progress, Reply
from litepipeline.common import clock

LONG_COLUMNS = ("duration", "message")
ATTEMPT_COLUMNS = ("name", "attempt", "node_id", "start_at", "end_at", "duration", "status", "returncode",
                   "message")
UNFINISHED = ("running", "stopping")


def duration(start_at: Optional[str], end_at: Optional[str], running: bool,
             now: Optional[dt.datetime] = None) -> str:
    """``end - start`` as ``1.234s``; while ``running``, the time so far; ``""`` when unknown."""
    start = clock.parse(start_at)
    end = clock.parse(end_at)
    if start is None:
        return ""
    if end is None:
        if not running:
            return ""
        end = now or clock.now()   # the manager's times are local times, like ours
    return f"{max((end - start).total_seconds(), 0.0):.3f}s"


def long_items(items: Callable[[Reply], list]) -> Callable[[Reply], list]:
    """``items`` with a ``duration`` added to each task (``--long``)."""
    def with_duration(reply: Reply) -> list:
        return [dict(item, duration=duration(item.get("start_at"), item.get("end_at"),
                                             item.get("stage") in UNFINISHED))
                for item in items(reply) if isinstance(item, dict)]

    return with_duration


def add_long(p: argparse.ArgumentParser) -> None:
    p.add_argument("--long", action="store_true", help="add the duration and message columns")


def attempt_items(reply: Reply) -> list:
    """The rows of ``task attempts``: ``task_info.attempts`` with their durations."""
    attempts = (reply.get("task_info") or {}).get("attempts") or []
    return [dict(a, duration=duration(a.get("start_at"), a.get("end_at"), a.get("status") is None))
            for a in attempts if isinstance(a, dict)]


def _task_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--task_id", "--task-id", dest="task_id", required=True, help="task id")


def log_args(p: argparse.ArgumentParser) -> None:
    _task_id(p)
    p.add_argument("-a", "--action", required=True, help="action name")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until the action ends")


def task_log(client: ManagerClient, args: argparse.Namespace) -> Reply:
    """Print the action's output to stdout as it arrives; nothing else on success."""
    out = sys.stdout.buffer
    sys.stdout.flush()
    try:
        return client.task_log(args.task_id, args.action, out, follow=args.follow)
    except KeyboardInterrupt:
        return Reply({"result": "ok", "message": "interrupted"})


def workspace_args(p: argparse.ArgumentParser) -> None:
    _task_id(p)
    p.add_argument("-a", "--action", help="only this action's workspace")
    p.add_argument("-o", "--output", help="file (or existing directory) to write; "
                                          "default ./TASK_ID.tar.gz or ./TASK_ID-ACTION.tar.gz")


def task_workspace(client: ManagerClient, args: argparse.Namespace,
                   progress_bar: Callable[[str], AbstractContextManager[Optional[Progress]]]) -> Reply:
    name = f"{args.task_id}-{args.action}.tar.gz" if args.action else f"{args.task_id}.tar.gz"
    dest = args.output or os.path.join(".", name)
    if os.path.isdir(dest):
        dest = os.path.join(dest, name)
    with progress_bar("downloading") as bar:
        return client.task_workspace(args.task_id, dest, args.action, progress=bar)

