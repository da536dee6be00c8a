"""Application and venv versions: app_histories, venvs, venv_histories, actions.env_sha1.

Every existing application gets one history row: its current version.

Revision ID: 0002
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0003"   # after the integration line's 0004 (schedules) and 0003 (workflows)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_histories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("application_id", sa.String(36), nullable=False),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("create_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("application_id", "sha1", name="uq_app_histories_sha1"),
    )
    op.create_index("ix_app_histories_application_id", "app_histories", ["application_id"])
    op.create_table(
        "venvs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("venv_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("create_at", sa.DateTime, nullable=False),
        sa.Column("update_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_venvs_venv_id", "venvs", ["venv_id"], unique=True)
    op.create_table(
        "venv_histories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("venv_id", sa.String(36), nullable=False),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("create_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("venv_id", "sha1", name="uq_venv_histories_sha1"),
    )
    op.create_index("ix_venv_histories_venv_id", "venv_histories", ["venv_id"])
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("env_sha1", sa.String(40)))
    # each application's current version becomes its first history entry
    op.execute("INSERT INTO app_histories (application_id, sha1, description, create_at) "
               "SELECT application_id, sha1, description, update_at FROM applications ORDER BY id")


def downgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("env_sha1")
    op.drop_table("venv_histories")
    op.drop_table("venvs")
    op.drop_table("app_histories")
