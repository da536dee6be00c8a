"""Workflows and works; ``tasks.work_id`` ties a task to its work.

Revision ID: 0003
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workflow_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("enable", sa.Boolean, nullable=False),
        sa.Column("configuration", sa.JSON, nullable=False),
        sa.Column("create_at", sa.DateTime, nullable=False),
        sa.Column("update_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_workflows_workflow_id", "workflows", ["workflow_id"], unique=True)
    op.create_table(
        "works",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("work_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("workflow_id", sa.String(36), nullable=False),
        sa.Column("configuration", sa.JSON, nullable=False),
        sa.Column("pinned", sa.JSON, nullable=False),
        sa.Column("input_data", sa.JSON, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16)),
        sa.Column("signal", sa.Integer),
        sa.Column("message", sa.Text),
        sa.Column("entries", sa.JSON, nullable=False),
        sa.Column("event_task_id", sa.String(36)),
        sa.Column("create_at", sa.DateTime, nullable=False),
        sa.Column("start_at", sa.DateTime),
        sa.Column("update_at", sa.DateTime, nullable=False),
        sa.Column("end_at", sa.DateTime),
    )
    op.create_index("ix_works_work_id", "works", ["work_id"], unique=True)
    op.create_index("ix_works_workflow_id", "works", ["workflow_id"])
    op.create_index("ix_works_stage_id", "works", ["stage", "id"])
    op.add_column("tasks", sa.Column("work_id", sa.String(36), nullable=True))
    op.create_index("ix_tasks_work_id", "tasks", ["work_id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_work_id", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("work_id")
    op.drop_table("works")
    op.drop_table("workflows")
