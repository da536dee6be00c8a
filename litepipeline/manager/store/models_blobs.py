"""``blobs``: application and venv tarballs in the database, as chunks keyed by SHA-1.

Used when the store is PostgreSQL, so that every manager sharing the database can serve
any version (each manager's ``data_path`` is then a cache of these). SQLite leaves the
table empty: its one manager keeps the tarballs in ``data_path`` only.
"""
from __future__ import annotations

from sqlalchemy import Column, Integer, LargeBinary, String, Table

from litepipeline.manager.store.models import METADATA

# One chunk (``seq`` from 0) of the tarball whose SHA-1 is ``sha1``.
BLOBS = Table(
    "blobs", METADATA,
    Column("sha1", String(40), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)
