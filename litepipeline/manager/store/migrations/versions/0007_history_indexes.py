"""A large task history: an index per list filter, kept counts, the retention index.

- ``GET /task/list`` filters by stage, status, app_id or work_id, newest first: each
  filter gets an index ending in ``id`` (one range read per page on SQLite and
  PostgreSQL alike; ``status`` had none, so a rare status scanned the whole table).
- ``total`` must not count 100,000 rows per request (a filtered ``count(*)`` reads
  every matching index entry: ~20-40 ms on SQLite at 100k), so ``task_counts`` keeps the
  number of tasks per (application, stage, status), maintained by triggers in the same
  transaction as every insert, delete and stage/status change of a task (the scheduler's
  writes go straight to the DBAPI cursor; a trigger cannot be bypassed by them).
- ``(stage, end_at, id)`` serves the retention's "finished before, oldest first" reads
  (an index on ``end_at`` alone lost to ``ix_tasks_stage_id`` in SQLite's planner).

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    """CREATE TRIGGER tasks_counted_insert AFTER INSERT ON tasks BEGIN
         INSERT INTO task_counts (application_id, stage, status, n)
           VALUES (new.application_id, new.stage, coalesce(new.status, ''), 1)
           ON CONFLICT (application_id, stage, status) DO UPDATE SET n = n + 1;
       END""",
    """CREATE TRIGGER tasks_counted_delete AFTER DELETE ON tasks BEGIN
         UPDATE task_counts SET n = n - 1 WHERE application_id = old.application_id AND stage = old.stage
           AND status = coalesce(old.status, '');
       END""",
    """CREATE TRIGGER tasks_counted_update AFTER UPDATE OF application_id, stage, status ON tasks
       WHEN old.application_id IS NOT new.application_id OR old.stage IS NOT new.stage
            OR old.status IS NOT new.status BEGIN
         UPDATE task_counts SET n = n - 1 WHERE application_id = old.application_id AND stage = old.stage
           AND status = coalesce(old.status, '');
         INSERT INTO task_counts (application_id, stage, status, n)
           VALUES (new.application_id, new.stage, coalesce(new.status, ''), 1)
           ON CONFLICT (application_id, stage, status) DO UPDATE SET n = n + 1;
       END""",
]
POSTGRES_TRIGGERS = [
    """CREATE FUNCTION task_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP IN ('UPDATE', 'DELETE') THEN
           UPDATE task_counts SET n = n - 1 WHERE application_id = OLD.application_id AND stage = OLD.stage
             AND status = coalesce(OLD.status, '');
         END IF;
         IF TG_OP IN ('INSERT', 'UPDATE') THEN
           INSERT INTO task_counts (application_id, stage, status, n)
             VALUES (NEW.application_id, NEW.stage, coalesce(NEW.status, ''), 1)
             ON CONFLICT (application_id, stage, status) DO UPDATE SET n = task_counts.n + 1;
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER tasks_counted AFTER INSERT OR DELETE ON tasks
       FOR EACH ROW EXECUTE FUNCTION task_counts_track()""",
    """CREATE TRIGGER tasks_counted_update AFTER UPDATE OF application_id, stage, status ON tasks
       FOR EACH ROW WHEN (OLD.application_id IS DISTINCT FROM NEW.application_id
                          OR OLD.stage IS DISTINCT FROM NEW.stage OR OLD.status IS DISTINCT FROM NEW.status)
       EXECUTE FUNCTION task_counts_track()""",
]


def upgrade() -> None:
    op.drop_index("ix_tasks_application_id", table_name="tasks")
    op.create_index("ix_tasks_application_id_id", "tasks", ["application_id", "id"])
    op.drop_index("ix_tasks_work_id", table_name="tasks")
    op.create_index("ix_tasks_work_id_id", "tasks", ["work_id", "id"])
    op.create_index("ix_tasks_status_id", "tasks", ["status", "id"])
    op.create_index("ix_tasks_stage_end_at", "tasks", ["stage", "end_at", "id"])
    op.create_table(
        "task_counts",
        sa.Column("application_id", sa.String(36), primary_key=True),
        sa.Column("stage", sa.String(16), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),   # '' for none (a key column cannot be NULL)
        sa.Column("n", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    )
    op.execute("INSERT INTO task_counts (application_id, stage, status, n) SELECT application_id, stage, "
               "coalesce(status, ''), count(*) FROM tasks GROUP BY application_id, stage, coalesce(status, '')")
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_TRIGGERS if dialect == "sqlite" else POSTGRES_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("tasks_counted_insert", "tasks_counted_delete", "tasks_counted_update"):
            op.execute(f"DROP TRIGGER {name}")
    else:
        op.execute("DROP TRIGGER tasks_counted ON tasks")
        op.execute("DROP TRIGGER tasks_counted_update ON tasks")
        op.execute("DROP FUNCTION task_counts_track()")
    op.drop_table("task_counts")
    op.drop_index("ix_tasks_stage_end_at", table_name="tasks")
    op.drop_index("ix_tasks_status_id", table_name="tasks")
    op.drop_index("ix_tasks_work_id_id", table_name="tasks")
    op.create_index("ix_tasks_work_id", "tasks", ["work_id"])
    op.drop_index("ix_tasks_application_id_id", table_name="tasks")
    op.create_index("ix_tasks_application_id", "tasks", ["application_id"])
