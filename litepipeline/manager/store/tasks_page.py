"""The web interface's task list: keyset pages, fast at any depth.

``OFFSET n`` reads and throws away n rows, so page 2,000 of 100k tasks costs as much as
reading them all; a page here starts below the last ``id`` seen instead (the primary
key's index). The count comes from ``task_counts`` for the stage, status and application
filters; with a name or work filter it counts rows, capped so it stays cheap.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine

from litepipeline.manager.store.models import TASK_COUNTS as COUNTS, TASKS

COUNT_CAP = 10000
LIST_COLUMNS = ("id", "task_id", "task_name", "application_id", "create_at", "start_at", "end_at", "stage",
                "status", "message")


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def task_page(engine: Engine, before: Optional[int], limit: int, stage: Optional[str] = None,
              status: Optional[str] = None, application_id: Optional[str] = None,
              name: Optional[str] = None, work_id: Optional[str] = None) -> dict[str, Any]:
    """Newest first: up to ``limit`` tasks with ``id < before``.

    Returns ``rows``, ``more`` (whether older tasks follow) and ``total`` (matching
    tasks, at most :data:`COUNT_CAP`; ``total_capped`` says when there are more).
    """
    conditions = []
    if stage:
        conditions.append(TASKS.c.stage == stage)
    if status:
        conditions.append(TASKS.c.status == status)
    if application_id:
        conditions.append(TASKS.c.application_id == application_id)
    if work_id:
        conditions.append(TASKS.c.work_id == work_id)
    if name:
        # SQLite's LIKE already ignores ASCII case (and lower() per row doubles the scan's cost)
        column = TASKS.c.task_name if engine.dialect.name == "sqlite" else func.lower(TASKS.c.task_name)
        conditions.append(column.like(_like(name.lower()), escape="\\"))
    where = and_(*conditions) if conditions else None
    page = select(*[TASKS.c[c] for c in LIST_COLUMNS]).order_by(TASKS.c.id.desc()).limit(limit + 1)
    if before is not None:
        page = page.where(TASKS.c.id < before)
    matching = select(TASKS.c.id)
    if where is not None:
        page, matching = page.where(where), matching.where(where)
    cap = COUNT_CAP
    if name or work_id:
        count = select(func.count()).select_from(matching.limit(COUNT_CAP + 1).subquery())
    else:   # kept counts: exact and cheap at any size
        kept = {"stage": stage, "status": status, "application_id": application_id}
        count = select(func.coalesce(func.sum(COUNTS.c.n), 0)).where(
            and_(True, *[COUNTS.c[k] == v for k, v in kept.items() if v]))
        cap = None
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(page)]
        total = int(conn.execute(count).scalar_one())
    capped = cap is not None and total > cap
    return {"rows": rows[:limit], "more": len(rows) > limit, "total": cap if capped else total,
            "total_capped": capped}
