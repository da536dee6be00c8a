"""Schedules, their fires, and services.

Revision ID: 0004
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("schedule_id", sa.String(36), nullable=False),
        sa.Column("schedule_name", sa.String(255), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(36), nullable=False),
        sa.Column("input_data", sa.JSON, nullable=False),
        sa.Column("enable", sa.Boolean, nullable=False),
        sa.Column("cron", sa.String(255), nullable=False),
        sa.Column("minute", sa.Integer, nullable=False),
        sa.Column("hour", sa.Integer, nullable=False),
        sa.Column("day_of_month", sa.Integer, nullable=False),
        sa.Column("day_of_week", sa.Integer, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("catchup", sa.String(16), nullable=False),
        sa.Column("overlap", sa.String(16), nullable=False),
        sa.Column("anchor_at", sa.DateTime, nullable=False),
        sa.Column("last_fire_at", sa.DateTime),
        sa.Column("last_target_id", sa.String(36)),
        sa.Column("create_at", sa.DateTime, nullable=False),
        sa.Column("update_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_schedules_schedule_id", "schedules", ["schedule_id"], unique=True)
    op.create_index("ix_schedules_source_id", "schedules", ["source_id"])
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("schedule_id", sa.String(36), nullable=False),
        sa.Column("fire_at", sa.DateTime, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("target_id", sa.String(36)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("create_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("schedule_id", "fire_at", name="uq_schedule_fires_instant"),
    )
    op.create_index("ix_schedule_fires_schedule_id", "schedule_fires", ["schedule_id"])
    op.create_table(
        "services",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("input_data", sa.JSON, nullable=False),
        sa.Column("signal", sa.Integer, nullable=False),
        sa.Column("enable", sa.Boolean, nullable=False),
        sa.Column("restart", sa.String(16), nullable=False),
        sa.Column("task_id", sa.String(36)),
        sa.Column("started_at", sa.DateTime),
        sa.Column("restarts", sa.Integer, nullable=False),
        sa.Column("streak", sa.Integer, nullable=False),
        sa.Column("last_exit", sa.String(16)),
        sa.Column("next_start_at", sa.DateTime),
        sa.Column("create_at", sa.DateTime, nullable=False),
        sa.Column("update_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_services_service_id", "services", ["service_id"], unique=True)
    op.create_index("ix_services_application_id", "services", ["application_id"])


def downgrade() -> None:
    op.drop_table("services")
    op.drop_table("schedule_fires")
    op.drop_table("schedules")
