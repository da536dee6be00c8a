"""The store's queries for workflows and works (blocking: called through the DbThread).

A work's progress is written by the scheduler's rounds (``Store.save`` of a ``Batch``);
what is here are the user's requests: workflows' rows, and reading and deleting works.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import Table, and_, delete, func, insert, select, update
from sqlalchemy.engine import Engine

from litepipeline.common.states import UNFINISHED_STAGES
from litepipeline.manager.store.models_workflows import WORKFLOWS, WORKS
from litepipeline.manager.store.store import _limit, _rows

UNFINISHED = [s.value for s in UNFINISHED_STAGES]


def _name_filter(column: Any, pattern: str) -> Any:
    """0.1.5's name filter: ``*`` is a wildcard (``'*load*'``); without one, the exact name."""
    if "*" not in pattern:
        return column == pattern
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
    return column.like(escaped, escape="\\")


class WorkflowStore:
    """Workflow and work queries on the manager's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- workflows ----------------------------------------------------------------------
    def insert_workflow(self, row: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(WORKFLOWS).values(**row))

    def update_workflow(self, workflow_id: str, values: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(WORKFLOWS).where(WORKFLOWS.c.workflow_id == workflow_id).values(**values))

    def get_workflow(self, workflow_id: str) -> Optional[dict]:
        with self.engine.connect() as conn:
            rows = _rows(conn.execute(select(WORKFLOWS).where(WORKFLOWS.c.workflow_id == workflow_id)))
        return rows[0] if rows else None

    def list_workflows(self, offset: int, limit: int, name: Optional[str] = None,
                       workflow_id: Optional[str] = None) -> tuple[list[dict], int]:
        conditions = []
        if name:
            conditions.append(_name_filter(WORKFLOWS.c.name, name))
        if workflow_id:
            conditions.append(WORKFLOWS.c.workflow_id == workflow_id)
        return self._list(WORKFLOWS, conditions, offset, limit)

    def delete_workflow_if_idle(self, workflow_id: str) -> tuple[int, int]:
        """Delete the workflow unless a work of it is unfinished: (unfinished works, rows deleted)."""
        with self.engine.begin() as conn:
            busy = conn.execute(select(func.count()).select_from(WORKS).where(
                and_(WORKS.c.workflow_id == workflow_id, WORKS.c.stage.in_(UNFINISHED)))).scalar_one()
            if busy:
                return busy, 0
            return 0, conn.execute(delete(WORKFLOWS).where(WORKFLOWS.c.workflow_id == workflow_id)).rowcount

    # -- works --------------------------------------------------------------------------
    def get_work(self, work_id: str) -> Optional[dict]:
        with self.engine.connect() as conn:
            rows = _rows(conn.execute(select(WORKS).where(WORKS.c.work_id == work_id)))
        return rows[0] if rows else None

    def list_works(self, offset: int, limit: int, work_id: Optional[str] = None, workflow_id: Optional[str] = None,
                   name: Optional[str] = None, stage: Optional[str] = None,
                   status: Optional[str] = None) -> tuple[list[dict], int]:
        conditions = []
        if work_id:
            conditions.append(WORKS.c.work_id == work_id)
        if workflow_id:
            conditions.append(WORKS.c.workflow_id == workflow_id)
        if name:
            conditions.append(_name_filter(WORKS.c.name, name))
        if stage:
            conditions.append(WORKS.c.stage == stage)
        if status:
            conditions.append(WORKS.c.status == status)
        return self._list(WORKS, conditions, offset, limit)

    def delete_work(self, work_id: str) -> int:
        """Delete a finished work's row (its tasks stay, with their ``work_id``)."""
        with self.engine.begin() as conn:
            return conn.execute(delete(WORKS).where(
                and_(WORKS.c.work_id == work_id, WORKS.c.stage.notin_(UNFINISHED)))).rowcount

    def load_unfinished_works(self) -> list[dict]:
        """Every unfinished work, oldest first: the work controller's start state."""
        with self.engine.connect() as conn:
            return _rows(conn.execute(select(WORKS).where(WORKS.c.stage.in_(UNFINISHED)).order_by(WORKS.c.id)))

    def pinned_versions_in_use(self) -> set[tuple[str, str]]:
        """(application_id, sha1) pinned by unfinished works: versions that must be kept."""
        out = set()
        for row in self.load_unfinished_works():
            for app_id, pin in (row["pinned"] or {}).items():
                out.add((app_id, pin["sha1"]))
        return out

    def _list(self, table: Table, conditions: list, offset: int, limit: int) -> tuple[list[dict], int]:
        query = select(table).order_by(table.c.id.desc())
        count = select(func.count()).select_from(table)
        if conditions:
            query, count = query.where(and_(*conditions)), count.where(and_(*conditions))
        with self.engine.connect() as conn:
            rows = _rows(conn.execute(_limit(query, offset, limit)))
            total = conn.execute(count).scalar_one()
        return rows, total
