"""Tarballs kept in the database as 1 MiB chunks keyed by SHA-1 (PostgreSQL only).

With PostgreSQL several managers share one database, each with its own ``data_path``;
a manager that takes over must serve every application and venv version. So every
uploaded tarball is also written to the ``blobs`` table, in the transaction that records
its version row (no version row ever names a missing blob), and each manager's
``data_path`` becomes a cache filled from it on demand (:meth:`BlobStore.fetch`). A blob
is deleted with the last version row naming its SHA-1.

Blocking: called on a worker thread, never on the event loop. Writes and deletes of one
SHA-1 take a transaction-scoped advisory lock on it, so an upload of bytes that a
deletion is removing either finds the blob gone and writes it again, or keeps it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, delete, exists, insert, select, text, union
from sqlalchemy.engine import Connection, Engine

from litepipeline.manager.store.models_blobs import BLOBS
from litepipeline.manager.store.models_versions import APP_HISTORIES, VENV_HISTORIES

LOG = logging.getLogger(__name__)
CHUNK = 1024 * 1024
HISTORIES: tuple[Table, ...] = (APP_HISTORIES, VENV_HISTORIES)


class BlobMismatch(Exception):
    """The chunks stored under a SHA-1 do not hash to it."""


def uses_blobs(engine: Engine) -> bool:
    """True when tarballs go to the database as well: a store several managers may share."""
    return engine.dialect.name == "postgresql"


def _lock(conn: Connection, sha1: str) -> None:
    # 60 bits of the SHA-1 as the lock key: fits PostgreSQL's bigint
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": int(sha1[:15], 16)})


class BlobStore:
    """The ``blobs`` table of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, conn: Connection, sha1: str, path: str) -> bool:
        """Store the file at ``path`` as ``sha1``'s chunks in ``conn``'s transaction, unless
        they are stored already. True when it wrote them."""
        _lock(conn, sha1)
        if conn.execute(select(exists().where(BLOBS.c.sha1 == sha1))).scalar():
            return False
        with open(path, "rb") as fp:
            seq = 0
            while True:
                chunk = fp.read(CHUNK)
                if not chunk and seq:
                    break
                conn.execute(insert(BLOBS).values(sha1=sha1, seq=seq, data=chunk))
                seq += 1
                if len(chunk) < CHUNK:
                    break
        return True

    def delete_unused(self, conn: Connection, sha1s: Iterable[str]) -> None:
        """Delete each blob no version row names any more, in ``conn``'s transaction."""
        for sha1 in sorted(set(sha1s)):
            _lock(conn, sha1)
            named = union(*(select(table.c.sha1).where(table.c.sha1 == sha1) for table in HISTORIES))
            if conn.execute(select(exists(named))).scalar():
                continue
            conn.execute(delete(BLOBS).where(BLOBS.c.sha1 == sha1))

    def has(self, sha1: str) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.execute(select(exists().where(BLOBS.c.sha1 == sha1))).scalar())

    def fetch(self, sha1: str, dest: str, tmp_dir: str) -> bool:
        """Write ``sha1``'s tarball to ``dest`` (a temporary file in ``tmp_dir``, on the same
        file system, renamed once its SHA-1 checks). False when the database has no such blob;
        :class:`BlobMismatch` when the stored bytes are not what their SHA-1 says."""
        digest = hashlib.sha1()
        fd, partial = tempfile.mkstemp(prefix="blob-", suffix=".tar.gz", dir=tmp_dir)
        found = False
        try:
            with os.fdopen(fd, "wb") as fp, self.engine.connect() as conn:
                query = select(BLOBS.c.data).where(BLOBS.c.sha1 == sha1).order_by(BLOBS.c.seq)
                for (data,) in conn.execution_options(stream_results=True, yield_per=4).execute(query):
                    found = True
                    digest.update(data)
                    fp.write(data)
            if not found:
                return False
            if digest.hexdigest() != sha1.lower():
                raise BlobMismatch(f"the tarball stored as {sha1} in the database hashes to {digest.hexdigest()}")
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.replace(partial, dest)
            return True
        finally:
            if os.path.exists(partial):
                os.remove(partial)

    def missing(self, sha1s: Iterable[str]) -> set[str]:
        """Those of ``sha1s`` with no blob (versions uploaded before blobs were kept)."""
        wanted = set(sha1s)
        if not wanted:
            return set()
        with self.engine.connect() as conn:
            present = set(conn.execute(select(BLOBS.c.sha1).where(BLOBS.c.sha1.in_(wanted)).distinct()).scalars())
        return wanted - present

    def backfill(self, files: Iterable[tuple[str, str]]) -> int:
        """Store ``(sha1, path)`` files whose blobs are missing (an upgraded store); the count written."""
        written = 0
        for sha1, path in files:
            try:
                with self.engine.begin() as conn:
                    written += self.put(conn, sha1, path)
            except OSError as exc:
                LOG.warning("cannot store %s in the database: %s", path, exc)
        return written


def history_sha1s(conn: Any, table: Table, id_column: str, owner_id: str) -> list[str]:
    """Every SHA-1 of one owner's history (read before the rows are deleted)."""
    return list(conn.execute(select(table.c.sha1).where(table.c[id_column] == owner_id)).scalars())
