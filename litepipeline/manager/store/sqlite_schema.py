"""A new SQLite store, made from ``sqlite_schema.sql`` instead of by running every migration.

Running the Alembic migrations on an empty store takes a child process about a second of
CPU (Python, SQLAlchemy, Alembic, every migration), at every first start and for every test
cluster. ``sqlite_schema.sql`` is what those migrations leave in a new SQLite store, as
``sqlite3``'s own ``iterdump()`` writes it (tables, their seeded rows, indexes, triggers,
and ``alembic_version`` at the newest revision); replaying it in one transaction gives the
same store in milliseconds. A store that holds anything at all is migrated as before.

A test compares the file with what the migrations make; after adding a migration,
write it again with::

    .venv/bin/python -m litepipeline.manager.store.sqlite_schema
"""
from __future__ import annotations

import os
import sqlite3
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_FILE = os.path.join(HERE, "sqlite_schema.sql")


def create_if_empty(path: str) -> bool:
    """Give the SQLite database at ``path`` the newest schema if it has no table yet; True
    if it did. False (nothing changed) when it holds anything, or cannot be read as a
    database, or another process created tables meanwhile: the migrations handle those."""
    with open(SCHEMA_FILE, encoding="utf-8") as fp:
        script = fp.read()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")   # the write lock first: nobody creates tables meanwhile
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            conn.execute("ROLLBACK")
            return False
        for statement in _statements(script):
            conn.execute(statement)
        conn.execute("COMMIT")
        return True
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return False
    finally:
        conn.close()


def _statements(script: str) -> list[str]:
    """The dump's statements, without its own BEGIN/COMMIT (the caller holds the transaction)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statement = current.strip()
            if statement.upper() not in ("BEGIN TRANSACTION;", "COMMIT;"):
                out.append(statement)
            current = ""
    return out


def dump(path: str) -> str:
    """The SQL that rebuilds the SQLite database at ``path`` (``iterdump``), one statement a line."""
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump()) + "\n"
    finally:
        conn.close()


def migrated_dump() -> str:
    """What the Alembic migrations make of a new SQLite store, dumped."""
    from litepipeline.manager.store.store import Store, sqlite_url

    with tempfile.TemporaryDirectory() as root:
        store = Store(sqlite_url(root))
        try:
            store.migrate()
        finally:
            store.close()
        return dump(os.path.join(root, "litepipeline.db"))


def main() -> int:
    with open(SCHEMA_FILE, "w", encoding="utf-8") as fp:
        fp.write(migrated_dump())
    print(f"wrote {SCHEMA_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
