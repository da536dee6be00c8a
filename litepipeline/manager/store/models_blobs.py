"""``blobs``: application and venv tarballs in the database, as chunks keyed by SHA-1.

Used when the store is PostgreSQL, so that every manager sharing the database can serve
any version (each manager's ``data_path`` is then a cache of these). SQLite leaves the
table empty: its one manager keeps the tarballs in ``data_path`` only.
"""
from __future__ import annotations

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from litepipeline.manager.store.models import Base


class BlobChunk(Base):
    """One chunk (``seq`` from 0) of the tarball whose SHA-1 is ``sha1``."""

    __tablename__ = "blobs"

    sha1: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
