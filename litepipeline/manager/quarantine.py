"""A scheduling round the store refused because of one task's text: find it, clean it.

Text is checked where it enters (see :mod:`litepipeline.common.textcheck`), so this is the
last line: should unstorable text reach a round anyway, the dispatcher fails the tasks
that carry it (with the field named) and writes the round again, instead of retrying the
same transaction until the manager gives up, which would stop every other task too.
"""
from __future__ import annotations

from typing import Any

from litepipeline.common.textcheck import find_poison, poison_message, scrub
from litepipeline.manager.taskstate import Batch


def _objects(batch: Batch) -> list:
    return [*batch.new_tasks, *batch.tasks.values(), *batch.new_actions, *batch.actions.values(),
            *batch.new_attempts, *batch.attempts.values()]


def _describe(obj: Any) -> str:
    name = getattr(obj, "name", None)
    return f"action '{scrub(name)}'" if isinstance(name, str) else "task"


def unstorable_tasks(batch: Batch) -> dict[str, str]:
    """task_id -> what in it no store can keep, for every task of ``batch`` with such text."""
    found: dict[str, str] = {}
    for obj in _objects(batch):
        task_id = scrub(obj.task_id)
        if task_id in found:
            continue
        poison = find_poison(obj.to_row())
        if poison:
            found[task_id] = f"{_describe(obj)}: {poison_message(poison)}"
    return found


def scrub_tasks(batch: Batch, task_ids: set) -> None:
    """Clean, in place, every row of those tasks in ``batch`` (the objects are the core's)."""
    for obj in _objects(batch):
        if scrub(obj.task_id) in task_ids:
            for key in obj.to_row():
                setattr(obj, key, scrub(getattr(obj, key)))


def merge(batch: Batch, extra: Batch) -> None:
    """Add ``extra``'s changes to ``batch`` (written in the same transaction)."""
    batch.new_tasks.extend(extra.new_tasks)
    batch.tasks.update(extra.tasks)
    batch.new_actions.extend(extra.new_actions)
    batch.actions.update(extra.actions)
    batch.new_attempts.extend(extra.new_attempts)
    batch.attempts.update(extra.attempts)
