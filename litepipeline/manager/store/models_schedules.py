"""Store models of schedules (their fires) and services, on the same Base as models.py.

Instants of schedules (``anchor_at``, ``last_fire_at``, ``fire_at``) are naive UTC: a
schedule's times are instants read in its own zone, and local wall-clock values would be
ambiguous in a repeated hour. Everything else follows the rest of the store (local time).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from litepipeline.manager.store.models import Base


class Schedule(Base):
    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule_id: Mapped[str] = mapped_column(String(36), unique=True, index=True)
    schedule_name: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str] = mapped_column(String(36), index=True)
    input_data: Mapped[Any] = mapped_column(JSON)
    enable: Mapped[bool] = mapped_column(Boolean)
    cron: Mapped[str] = mapped_column(String(255))
    # 0.1.5's fields as they were given (-1 = unset); all -1 when ``cron`` was given
    minute: Mapped[int] = mapped_column(Integer)
    hour: Mapped[int] = mapped_column(Integer)
    day_of_month: Mapped[int] = mapped_column(Integer)
    day_of_week: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    catchup: Mapped[str] = mapped_column(String(16))
    overlap: Mapped[str] = mapped_column(String(16))
    #: fires are counted from here (creation, or the last change of the time)
    anchor_at: Mapped[dt.datetime] = mapped_column(DateTime)
    last_fire_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    #: the task or work the last fire created (``overlap: skip`` looks at it)
    last_target_id: Mapped[Optional[str]] = mapped_column(String(36), nullable=True)
    create_at: Mapped[dt.datetime] = mapped_column(DateTime)
    update_at: Mapped[dt.datetime] = mapped_column(DateTime)


class ScheduleFire(Base):
    """One fire: unique per (schedule, scheduled instant), written with what it created."""

    __tablename__ = "schedule_fires"
    __table_args__ = (UniqueConstraint("schedule_id", "fire_at", name="uq_schedule_fires_instant"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule_id: Mapped[str] = mapped_column(String(36), index=True)
    fire_at: Mapped[dt.datetime] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[Optional[str]] = mapped_column(String(36), nullable=True)   # task or work id
    outcome: Mapped[str] = mapped_column(String(16))    # created | skipped (overlap)
    create_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(String(36), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(255))
    application_id: Mapped[str] = mapped_column(String(36), index=True)
    description: Mapped[str] = mapped_column(Text)
    input_data: Mapped[Any] = mapped_column(JSON)
    signal: Mapped[int] = mapped_column(Integer)
    enable: Mapped[bool] = mapped_column(Boolean)
    restart: Mapped[str] = mapped_column(String(16))
    task_id: Mapped[Optional[str]] = mapped_column(String(36), nullable=True)   # the live (or last) task
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    restarts: Mapped[int] = mapped_column(Integer)
    streak: Mapped[int] = mapped_column(Integer)       # quick exits in a row: the back-off's exponent
    last_exit: Mapped[Optional[str]] = mapped_column(String(16), nullable=True)
    next_start_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    create_at: Mapped[dt.datetime] = mapped_column(DateTime)
    update_at: Mapped[dt.datetime] = mapped_column(DateTime)
