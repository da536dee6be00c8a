"""Initial schema: applications, tasks, actions, attempts.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("create_at", sa.DateTime, nullable=False),
        sa.Column("update_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_applications_application_id", "applications", ["application_id"], unique=True)
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("task_name", sa.String(255), nullable=False),
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("app_sha1", sa.String(40), nullable=False),
        sa.Column("input_data", sa.JSON, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16)),
        sa.Column("signal", sa.Integer),
        sa.Column("message", sa.Text),
        sa.Column("on_success", sa.String(255)),
        sa.Column("on_fail", sa.String(255)),
        sa.Column("create_at", sa.DateTime, nullable=False),
        sa.Column("start_at", sa.DateTime),
        sa.Column("update_at", sa.DateTime, nullable=False),
        sa.Column("end_at", sa.DateTime),
    )
    op.create_index("ix_tasks_task_id", "tasks", ["task_id"], unique=True)
    op.create_index("ix_tasks_application_id", "tasks", ["application_id"])
    op.create_index("ix_tasks_stage_id", "tasks", ["stage", "id"])
    op.create_table(
        "actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(36), sa.ForeignKey("tasks.task_id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("main", sa.Text, nullable=False),
        sa.Column("condition", sa.JSON, nullable=False),
        sa.Column("env", sa.String(1024)),
        sa.Column("input_data", sa.JSON, nullable=False),
        sa.Column("to_action", sa.String(255)),
        sa.Column("parent", sa.String(255)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("timeout", sa.Float),
        sa.Column("retries", sa.Integer, nullable=False),
        sa.Column("retry_delay", sa.Float, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16)),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("attempt_id", sa.String(36)),
        sa.Column("node_id", sa.String(36)),
        sa.Column("dispatched_at", sa.DateTime),
        sa.Column("retry_at", sa.DateTime),
        sa.Column("start_at", sa.DateTime),
        sa.Column("end_at", sa.DateTime),
        sa.Column("returncode", sa.Integer),
        sa.Column("output", sa.JSON),
        sa.Column("message", sa.Text),
        sa.UniqueConstraint("task_id", "name", name="uq_actions_task_name"),
    )
    op.create_index("ix_actions_task_id", "actions", ["task_id"])
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("attempt_id", sa.String(36), nullable=False, unique=True),
        sa.Column("task_id", sa.String(36), sa.ForeignKey("tasks.task_id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("node_id", sa.String(36)),
        sa.Column("dispatched_at", sa.DateTime, nullable=False),
        sa.Column("start_at", sa.DateTime),
        sa.Column("end_at", sa.DateTime),
        sa.Column("status", sa.String(16)),
        sa.Column("returncode", sa.Integer),
        sa.Column("message", sa.Text),
    )
    op.create_index("ix_attempts_task_id", "attempts", ["task_id"])


def downgrade() -> None:
    op.drop_table("attempts")
    op.drop_table("actions")
    op.drop_table("tasks")
    op.drop_table("applications")
