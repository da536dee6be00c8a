"""Idempotency keys of task creation.

Revision ID: 0005
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0002"   # the chain: 0001, 0004, 0003, 0002, 0005 (in the order they landed)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("create_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_idempotency_keys_create_at", "idempotency_keys", ["create_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_create_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
