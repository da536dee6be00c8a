"""SQLAlchemy Core tables of the manager's store.

``tasks`` and ``actions`` hold everything the scheduler acts on: a task's progress is
never kept only in memory. ``attempts`` is the history of every dispatch of an action.
Schema changes go through Alembic migrations in ``migrations/versions``.

Core ``Table`` definitions, not ORM models: the store only runs Core statements, and
importing ``sqlalchemy.orm`` would cost the idle manager some 6 MB of memory.
"""
from __future__ import annotations

from sqlalchemy import (
    JSON, BigInteger, Column, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
    UniqueConstraint,
)

#: every table of the store (Alembic's ``target_metadata``); index names follow the default
#: convention ``ix_<table>_<column>``, as the migrations created them
METADATA = MetaData()

APPLICATIONS = Table(
    "applications", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("application_id", String(36), unique=True, index=True, nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, default="", nullable=False),
    Column("sha1", String(40), nullable=False),
    Column("create_at", DateTime, nullable=False),
    Column("update_at", DateTime, nullable=False),
)

TASKS = Table(
    "tasks", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(36), unique=True, index=True, nullable=False),
    Column("task_name", String(255), nullable=False),
    Column("application_id", String(36), nullable=False),
    Column("app_sha1", String(40), nullable=False),
    Column("input_data", JSON, nullable=False),
    Column("stage", String(16), nullable=False),
    Column("status", String(16), nullable=True),
    Column("signal", Integer, nullable=True),
    Column("message", Text, nullable=True),
    Column("on_success", String(255), nullable=True),
    Column("on_fail", String(255), nullable=True),
    Column("create_at", DateTime, nullable=False),
    Column("start_at", DateTime, nullable=True),
    Column("update_at", DateTime, nullable=False),
    Column("end_at", DateTime, nullable=True),
    Column("work_id", String(36), nullable=True),   # its work, if any
    # an index per list filter, ending in id (newest first); end_at for the retention (migration 0006)
    Index("ix_tasks_stage_id", "stage", "id"), Index("ix_tasks_status_id", "status", "id"),
    Index("ix_tasks_application_id_id", "application_id", "id"),
    Index("ix_tasks_work_id_id", "work_id", "id"), Index("ix_tasks_stage_end_at", "stage", "end_at", "id"),
)

# How many tasks each (application, stage, status) has: ``total`` of the task lists
# without counting rows. Kept by triggers on ``tasks`` (migration 0006), in the
# transaction of every change; ``status`` is '' for none.
TASK_COUNTS = Table(
    "task_counts", METADATA,
    Column("application_id", String(36), primary_key=True),
    Column("stage", String(16), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("n", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
)

# One action of one task: its definition, its current attempt and its last report.
ACTIONS = Table(
    "actions", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(36), ForeignKey("tasks.task_id", ondelete="CASCADE"), index=True, nullable=False),
    Column("name", String(255), nullable=False),
    Column("seq", Integer, default=0, nullable=False),
    Column("main", Text, nullable=False),
    Column("condition", JSON, nullable=False),
    Column("env", String(1024), nullable=True),
    #: the venv version pinned at task creation when ``env`` is a venv id
    Column("env_sha1", String(40), nullable=True),
    Column("input_data", JSON, nullable=False),
    Column("to_action", String(255), nullable=True),
    Column("parent", String(255), nullable=True),
    Column("kind", String(16), default="dag", nullable=False),
    Column("timeout", Float, nullable=True),
    Column("retries", Integer, default=0, nullable=False),
    Column("retry_delay", Float, default=0, nullable=False),
    Column("stage", String(16), nullable=False),
    Column("status", String(16), nullable=True),
    Column("attempt", Integer, default=0, nullable=False),
    Column("attempt_id", String(36), nullable=True),
    Column("node_id", String(36), nullable=True),
    Column("dispatched_at", DateTime, nullable=True),
    Column("retry_at", DateTime, nullable=True),
    Column("start_at", DateTime, nullable=True),
    Column("end_at", DateTime, nullable=True),
    Column("returncode", Integer, nullable=True),
    Column("output", JSON, nullable=True),
    Column("message", Text, nullable=True),
    #: where the action may run (labels, node_id, node_ip, platform), migration 0006
    Column("target", JSON(none_as_null=True), nullable=True),   # no target: SQL NULL
    UniqueConstraint("task_id", "name", name="uq_actions_task_name"),
)

# History: one row per dispatch of an action, updated when its report arrives.
ATTEMPTS = Table(
    "attempts", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("attempt_id", String(36), unique=True, nullable=False),
    Column("task_id", String(36), ForeignKey("tasks.task_id", ondelete="CASCADE"), index=True, nullable=False),
    Column("name", String(255), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("node_id", String(36), nullable=True),
    Column("dispatched_at", DateTime, nullable=False),
    Column("start_at", DateTime, nullable=True),
    Column("end_at", DateTime, nullable=True),
    Column("status", String(16), nullable=True),
    Column("returncode", Integer, nullable=True),
    Column("message", Text, nullable=True),
)


# other concepts' tables, on this METADATA (imported last: they import METADATA from here)
from litepipeline.manager.store import models_schedules  # noqa: E402,F401
from litepipeline.manager.store import models_workflows  # noqa: E402,F401
from litepipeline.manager.store import models_versions  # noqa: E402,F401
from litepipeline.manager.store import models_idempotency  # noqa: E402,F401
from litepipeline.manager.store import models_blobs  # noqa: E402,F401
