"""``idempotency_keys``: a client's ``Idempotency-Key`` and the task its first request made."""
from __future__ import annotations

from sqlalchemy import Column, DateTime, String, Table

from litepipeline.manager.store.models import METADATA

# One key, kept 24 hours: a repeated ``POST /task/create`` with it gets this task back.
IDEMPOTENCY_KEYS = Table(
    "idempotency_keys", METADATA,
    Column("key", String(255), primary_key=True),
    Column("task_id", String(36), nullable=False),
    Column("application_id", String(36), nullable=False),
    Column("create_at", DateTime, index=True, nullable=False),
)
