"""Queries of ``idempotency_keys`` (blocking: the manager runs them on its database thread)."""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from litepipeline.manager.store.models_idempotency import IDEMPOTENCY_KEYS as KEYS

KEEP = dt.timedelta(hours=24)


def claim(engine: Any, key: str, task_id: str, application_id: str, now: dt.datetime) -> Optional[dict]:
    """Record ``key`` -> ``task_id``, or return the live record the key already has.

    Records older than 24 hours are removed first, so an old key starts afresh.
    """
    for _ in range(2):   # a concurrent claim of the same key wins: read what it wrote
        try:
            with engine.begin() as conn:
                conn.execute(delete(KEYS).where(KEYS.c.create_at < now - KEEP))
                row = conn.execute(select(KEYS).where(KEYS.c.key == key)).first()
                if row is not None:
                    return dict(row._mapping)
                conn.execute(insert(KEYS).values(key=key, task_id=task_id, application_id=application_id,
                                                 create_at=now))
                return None
        except IntegrityError:
            continue
    raise RuntimeError(f"idempotency key {key!r} could not be claimed")


def release(engine: Any, key: str) -> None:
    """Forget ``key`` (its create was refused: a retry must be able to succeed)."""
    with engine.begin() as conn:
        conn.execute(delete(KEYS).where(KEYS.c.key == key))


def forget_tasks(conn: Any, task_ids: list) -> None:
    """In the transaction deleting ``task_ids``: forget their keys. A retry with a key would
    otherwise make its deleted task again under the same id (the path meant for a manager
    that stopped between the claim and the task's round)."""
    conn.execute(delete(KEYS).where(KEYS.c.task_id.in_(task_ids)))
