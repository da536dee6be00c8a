"""The leadership lease of manager fail-over on PostgreSQL (one row, id 1).

Revision ID: 0009
Revises: 0008
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "leadership",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("manager_id", sa.String(36), nullable=True),
        sa.Column("leader", sa.Text, nullable=True),   # the leader's identity, JSON
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
    )
    # epoch 0, expired long ago: the first manager to look takes it over as epoch 1
    op.bulk_insert(table, [{"id": 1, "epoch": 0, "manager_id": None, "leader": None,
                            "expires_at": dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), "acquired_at": None}])


def downgrade() -> None:
    op.drop_table("leadership")
