"""Store tables of schedules (their fires) and services, on the same METADATA as models.py.

Instants of schedules (``anchor_at``, ``last_fire_at``, ``fire_at``) are naive UTC: a
schedule's times are instants read in its own zone, and local wall-clock values would be
ambiguous in a repeated hour. Everything else follows the rest of the store (local time).
"""
from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, String, Table, Text, UniqueConstraint

from litepipeline.manager.store.models import METADATA

SCHEDULES = Table(
    "schedules", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("schedule_id", String(36), unique=True, index=True, nullable=False),
    Column("schedule_name", String(255), nullable=False),
    Column("source", String(16), nullable=False),
    Column("source_id", String(36), index=True, nullable=False),
    Column("input_data", JSON, nullable=False),
    Column("enable", Boolean, nullable=False),
    Column("cron", String(255), nullable=False),
    # 0.1.5's fields as they were given (-1 = unset); all -1 when ``cron`` was given
    Column("minute", Integer, nullable=False),
    Column("hour", Integer, nullable=False),
    Column("day_of_month", Integer, nullable=False),
    Column("day_of_week", Integer, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("catchup", String(16), nullable=False),
    Column("overlap", String(16), nullable=False),
    #: fires are counted from here (creation, or the last change of the time)
    Column("anchor_at", DateTime, nullable=False),
    Column("last_fire_at", DateTime, nullable=True),
    #: the task or work the last fire created (``overlap: skip`` looks at it)
    Column("last_target_id", String(36), nullable=True),
    Column("create_at", DateTime, nullable=False),
    Column("update_at", DateTime, nullable=False),
)

# One fire: unique per (schedule, scheduled instant), written with what it created.
SCHEDULE_FIRES = Table(
    "schedule_fires", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("schedule_id", String(36), index=True, nullable=False),
    Column("fire_at", DateTime, nullable=False),
    Column("source", String(16), nullable=False),
    Column("target_id", String(36), nullable=True),   # task or work id
    Column("outcome", String(16), nullable=False),    # created | skipped (overlap)
    Column("create_at", DateTime, nullable=False),
    UniqueConstraint("schedule_id", "fire_at", name="uq_schedule_fires_instant"),
)

SERVICES = Table(
    "services", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(36), unique=True, index=True, nullable=False),
    Column("name", String(255), nullable=False),
    Column("application_id", String(36), index=True, nullable=False),
    Column("description", Text, nullable=False),
    Column("input_data", JSON, nullable=False),
    Column("signal", Integer, nullable=False),
    Column("enable", Boolean, nullable=False),
    Column("restart", String(16), nullable=False),
    Column("task_id", String(36), nullable=True),   # the live (or last) task
    Column("started_at", DateTime, nullable=True),
    Column("restarts", Integer, nullable=False),
    Column("streak", Integer, nullable=False),       # quick exits in a row: the back-off's exponent
    Column("last_exit", String(16), nullable=True),
    Column("next_start_at", DateTime, nullable=True),
    Column("create_at", DateTime, nullable=False),
    Column("update_at", DateTime, nullable=False),
)
