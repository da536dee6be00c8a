"""``idempotency_keys``: a client's ``Idempotency-Key`` and the task its first request made."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from litepipeline.manager.store.models import Base


class IdempotencyKey(Base):
    """One key, kept 24 hours: a repeated ``POST /task/create`` with it gets this task back."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36))
    application_id: Mapped[str] = mapped_column(String(36))
    create_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
