"""Workflows and works (SPEC §10) on the store's one ``Base``; tasks point to their work
through ``tasks.work_id``."""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from litepipeline.manager.store.models import Base


class Workflow(Base):
    __tablename__ = "workflows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(String(36), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    enable: Mapped[bool] = mapped_column(Boolean, default=True)
    configuration: Mapped[Any] = mapped_column(JSON)
    create_at: Mapped[dt.datetime] = mapped_column(DateTime)
    update_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Work(Base):
    """One run of a workflow: its pinned configuration and versions, and its entries' state."""

    __tablename__ = "works"
    __table_args__ = (Index("ix_works_stage_id", "stage", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    work_id: Mapped[str] = mapped_column(String(36), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(255))
    workflow_id: Mapped[str] = mapped_column(String(36), index=True)
    configuration: Mapped[Any] = mapped_column(JSON)
    pinned: Mapped[Any] = mapped_column(JSON)
    input_data: Mapped[Any] = mapped_column(JSON)
    stage: Mapped[str] = mapped_column(String(16))
    status: Mapped[Optional[str]] = mapped_column(String(16), nullable=True)
    signal: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    message: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    entries: Mapped[Any] = mapped_column(JSON)
    event_task_id: Mapped[Optional[str]] = mapped_column(String(36), nullable=True)
    create_at: Mapped[dt.datetime] = mapped_column(DateTime)
    start_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
    update_at: Mapped[dt.datetime] = mapped_column(DateTime)
    end_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime, nullable=True)
