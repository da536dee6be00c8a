"""Workflows and works (SPEC §10) on the store's one ``METADATA``; tasks point to their work
through ``tasks.work_id``."""
from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Index, Integer, String, Table, Text

from litepipeline.manager.store.models import METADATA

WORKFLOWS = Table(
    "workflows", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow_id", String(36), unique=True, index=True, nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, default="", nullable=False),
    Column("enable", Boolean, default=True, nullable=False),
    Column("configuration", JSON, nullable=False),
    Column("create_at", DateTime, nullable=False),
    Column("update_at", DateTime, nullable=False),
)

# One run of a workflow: its pinned configuration and versions, and its entries' state.
WORKS = Table(
    "works", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("work_id", String(36), unique=True, index=True, nullable=False),
    Column("name", String(255), nullable=False),
    Column("workflow_id", String(36), index=True, nullable=False),
    Column("configuration", JSON, nullable=False),
    Column("pinned", JSON, nullable=False),
    Column("input_data", JSON, nullable=False),
    Column("stage", String(16), nullable=False),
    Column("status", String(16), nullable=True),
    Column("signal", Integer, nullable=True),
    Column("message", Text, nullable=True),
    Column("entries", JSON, nullable=False),
    Column("event_task_id", String(36), nullable=True),
    Column("create_at", DateTime, nullable=False),
    Column("start_at", DateTime, nullable=True),
    Column("update_at", DateTime, nullable=False),
    Column("end_at", DateTime, nullable=True),
    Index("ix_works_stage_id", "stage", "id"),
)
