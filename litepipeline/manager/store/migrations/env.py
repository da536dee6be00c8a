"""Alembic environment: runs on the connection the manager hands over, or on ``-x url=``."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from litepipeline.manager.store.models import METADATA

config = context.config
connection = config.attributes.get("connection")


def run(conn) -> None:  # noqa: ANN001
    # batch mode lets ALTER-style migrations work on SQLite too
    context.configure(connection=conn, target_metadata=METADATA, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    with create_engine(url).connect() as conn:
        run(conn)
