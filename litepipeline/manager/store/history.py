"""The store's side of the task retention: finished tasks by age, and their removal.

Blocking, like every store call: the manager runs them on its database thread. Each
query reads an index (``ix_tasks_stage_end_at``, ``ix_actions_task_id``, ``ix_attempts_task_id``)
and touches at most one batch of tasks.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import and_, delete, func, select, tuple_
from sqlalchemy.engine import Engine

from litepipeline.common.states import Stage
from litepipeline.manager.store import idempotency
from litepipeline.manager.store.models import ACTIONS, ATTEMPTS, TASKS

FINISHED = Stage.FINISHED.value


def finished_before(engine: Engine, cutoff: dt.datetime, after: Optional[tuple], limit: int) -> list[dict]:
    """Up to ``limit`` finished tasks that ended before ``cutoff``, oldest first, after the
    ``(end_at, id)`` given (a keyset, so tasks kept back are not read again)."""
    query = select(TASKS.c.id, TASKS.c.task_id, TASKS.c.end_at, TASKS.c.work_id, TASKS.c.stage).where(
        and_(TASKS.c.end_at < cutoff, TASKS.c.stage == FINISHED))
    if after is not None:
        end_at, last_id = after
        # a row value: one index range on (stage, end_at, id), where an OR would rescan the
        # kept-back tasks before it for every batch
        query = query.where(tuple_(TASKS.c.end_at, TASKS.c.id) > tuple_(end_at, last_id))
    query = query.order_by(TASKS.c.end_at, TASKS.c.id).limit(limit)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def next_end(engine: Engine, cutoff: dt.datetime) -> Optional[dt.datetime]:
    """When the oldest finished task not yet past ``cutoff`` ended (None: there is none)."""
    with engine.connect() as conn:
        return conn.execute(select(func.min(TASKS.c.end_at)).where(
            and_(TASKS.c.end_at >= cutoff, TASKS.c.stage == FINISHED))).scalar_one()


def holders(engine: Engine, task_ids: list[str]) -> dict[str, set]:
    """task_id -> every node that ran an attempt of it (so may hold its workspaces)."""
    out: dict[str, set] = {t: set() for t in task_ids}
    with engine.connect() as conn:
        for table in (ACTIONS, ATTEMPTS):
            rows = conn.execute(select(table.c.task_id, table.c.node_id).where(
                and_(table.c.task_id.in_(task_ids), table.c.node_id.is_not(None))).distinct())
            for task_id, node_id in rows:
                out[task_id].add(node_id)
    return out


def delete_finished(engine: Engine, task_ids: list[str]) -> list[str]:
    """Delete those of ``task_ids`` that are still finished, with their actions and attempts,
    in one transaction; returns the ids deleted."""
    with engine.begin() as conn:
        # the stage is checked here, not in SQL: with both, SQLite's planner walked every
        # finished task through the stage index instead of the ids' unique index
        gone = [task_id for task_id, stage in conn.execute(select(TASKS.c.task_id, TASKS.c.stage).where(
            TASKS.c.task_id.in_(task_ids))) if stage == FINISHED]
        if gone:
            idempotency.forget_tasks(conn, gone)
            conn.execute(delete(ATTEMPTS).where(ATTEMPTS.c.task_id.in_(gone)))
            conn.execute(delete(ACTIONS).where(ACTIONS.c.task_id.in_(gone)))
            conn.execute(delete(TASKS).where(TASKS.c.task_id.in_(gone)))
    return gone
