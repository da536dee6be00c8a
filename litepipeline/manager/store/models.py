"""SQLAlchemy 2 models of the manager's store.

``tasks`` and ``actions`` hold everything the scheduler acts on: a task's progress is
never kept only in memory. ``attempts`` is the history of every dispatch of an action.
Schema changes go through Alembic migrations in ``migrations/versions``.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Application(Base):
    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(String(36), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    sha1: Mapped[str] = mapped_column(String(40))
    create_at: Mapped[dt.datetime] = mapped_column(DateTime)
    update_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Task(Base):
    __tablename__ = "tasks"
    # an index per list filter, ending in id (newest first); end_at for the retention (migration 0006)
    __table_args__ = (Index("ix_tasks_stage_id", "stage", "id"), Index("ix_tasks_status_id", "status", "id"),
                      Index("ix_tasks_application_id_id", "application_id", "id"),
                      Index("ix_tasks_work_id_id", "work_id", "id"), Index("ix_tasks_stage_end_at", "stage", "end_at", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(36), unique=True, index=True)
    task_name: Mapped[str] = mapped_column(String(255))
    application_id: Mapped[str] = mapped_column(String(36))
    app_sha1: Mapped[str] = mapped_column(String(40))
    input_data: Mapped[Any] = mapped_column(JSON)
    stage: Mapped[str] = mapped_column(String(16))
    status: Mapped[Optional[str]] = mapped_column(String(16), nullable=True)
    signal: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    message: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    on_success: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    on_fail: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    create_at: Mapped[dt.datetime] = mapped_column(DateTime)
    start_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    update_at: Mapped[dt.datetime] = mapped_column(DateTime)
    end_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    work_id: Mapped[Optional[str]] = mapped_column(String(36), nullable=True)   # its work, if any


class TaskCount(Base):
    """How many tasks each (application, stage, status) has: ``total`` of the task lists
    without counting rows. Kept by triggers on ``tasks`` (migration 0006), in the
    transaction of every change; ``status`` is '' for none."""

    __tablename__ = "task_counts"

    application_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    stage: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))


class ActionRow(Base):
    """One action of one task: its definition, its current attempt and its last report."""

    __tablename__ = "actions"
    __table_args__ = (UniqueConstraint("task_id", "name", name="uq_actions_task_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(36), ForeignKey("tasks.task_id", ondelete="CASCADE"),
                                         index=True)
    name: Mapped[str] = mapped_column(String(255))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    main: Mapped[str] = mapped_column(Text)
    condition: Mapped[Any] = mapped_column(JSON)
    env: Mapped[Optional[str]] = mapped_column(String(1024), nullable=True)
    #: the venv version pinned at task creation when ``env`` is a venv id
    env_sha1: Mapped[Optional[str]] = mapped_column(String(40), nullable=True)
    input_data: Mapped[Any] = mapped_column(JSON)
    to_action: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    parent: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="dag")
    timeout: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    retry_delay: Mapped[float] = mapped_column(Float, default=0)
    stage: Mapped[str] = mapped_column(String(16))
    status: Mapped[Optional[str]] = mapped_column(String(16), nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    attempt_id: Mapped[Optional[str]] = mapped_column(String(36), nullable=True)
    node_id: Mapped[Optional[str]] = mapped_column(String(36), nullable=True)
    dispatched_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    retry_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    start_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    end_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    returncode: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    output: Mapped[Optional[Any]] = mapped_column(JSON, nullable=True)
    message: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    #: where the action may run (labels, node_id, node_ip, platform), migration 0006
    target: Mapped[Optional[Any]] = mapped_column(JSON(none_as_null=True), nullable=True)   # no target: SQL NULL


class Attempt(Base):
    """History: one row per dispatch of an action, updated when its report arrives."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(String(36), unique=True)
    task_id: Mapped[str] = mapped_column(String(36), ForeignKey("tasks.task_id", ondelete="CASCADE"),
                                         index=True)
    name: Mapped[str] = mapped_column(String(255))
    attempt: Mapped[int] = mapped_column(Integer)
    node_id: Mapped[Optional[str]] = mapped_column(String(36), nullable=True)
    dispatched_at: Mapped[dt.datetime] = mapped_column(DateTime)
    start_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    end_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    status: Mapped[Optional[str]] = mapped_column(String(16), nullable=True)
    returncode: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    message: Mapped[Optional[str]] = mapped_column(Text, nullable=True)


# other concepts' models, on this Base (imported last: they import Base from here)
from litepipeline.manager.store import models_schedules  # noqa: E402,F401
from litepipeline.manager.store import models_workflows  # noqa: E402,F401
from litepipeline.manager.store import models_versions  # noqa: E402,F401
from litepipeline.manager.store import models_idempotency  # noqa: E402,F401
from litepipeline.manager.store import models_blobs  # noqa: E402,F401
