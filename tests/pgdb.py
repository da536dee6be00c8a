"""A PostgreSQL database of a test's own on the test server, dropped afterwards.

Tests of the PostgreSQL store and of fail-over use one each, so parallel runs never share
tables; where psycopg or the server is missing they skip, saying why.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

#: the server and the database the test databases are made from (trust auth)
PG_ADMIN = os.environ.get("LITEPIPELINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def temporary_database(prefix: str = "lp_test") -> Iterator[str]:
    """The URL of a new, empty database; dropped (its sessions ended) when the block ends."""
    try:
        import psycopg  # noqa: F401
        from sqlalchemy import create_engine, text
    except ImportError as exc:
        reason = f"PostgreSQL test skipped: psycopg is not installed ({exc})"
        print(reason)
        pytest.skip(reason)
    from litepipeline.manager.store.store import safe_url

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - no server: the test cannot run here
        admin.dispose()
        reason = f"PostgreSQL test skipped: no server at {safe_url(PG_ADMIN)} ({type(exc).__name__})"
        print(reason)
        pytest.skip(reason)
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def migrated_store(prefix: str = "lp_test") -> Iterator[tuple[str, object]]:
    """(url, Store) of a new database, migrated; closed and dropped when the block ends."""
    from litepipeline.manager.store.store import Store

    with temporary_database(prefix) as url:
        store = Store(url)
        try:
            store.migrate()
            yield url, store
        finally:
            store.close()
