"""Store queries of versions: applications' and venvs' history rows, venvs, pinned venvs.

Blocking, like :class:`~litepipeline.manager.store.store.Store`; the manager calls them
through its DbThread. One :class:`VersionStore` serves both kinds of owner (an
application or a venv), described by a :class:`Kind`. Every change that touches an
owner and its history is one transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import Table, and_, delete, func, insert, select, update
from sqlalchemy.engine import Engine

from litepipeline.common.states import UNFINISHED_STAGES
from litepipeline.manager.store.blobs import BlobStore, history_sha1s, uses_blobs
from litepipeline.manager.store.models import ACTIONS, APPLICATIONS, TASKS
from litepipeline.manager.store.models_versions import APP_HISTORIES, VENV_HISTORIES, VENVS as VENV_TABLE
from litepipeline.manager.store.store import MAX_LIMIT

UNFINISHED = [s.value for s in UNFINISHED_STAGES]


@dataclass(frozen=True)
class Kind:
    """An owner of versions: its table, id column and history table."""

    owners: Table
    id_column: str
    histories: Table

    def owner_id(self) -> Any:
        return self.owners.c[self.id_column]

    def history_owner(self) -> Any:
        return self.histories.c[self.id_column]


APPS = Kind(APPLICATIONS, "application_id", APP_HISTORIES)
VENVS = Kind(VENV_TABLE, "venv_id", VENV_HISTORIES)


def _rows(result: Any) -> list[dict]:
    return [dict(row._mapping) for row in result]


def _page(query: Any, offset: int, limit: int) -> Any:
    return query.offset(offset).limit(limit if 0 < limit <= MAX_LIMIT else MAX_LIMIT)


class VersionStore:
    """Every query about versions, on the manager's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: PostgreSQL: tarballs kept in the database too, with their version rows
        self.blobs: Optional[BlobStore] = BlobStore(engine) if uses_blobs(engine) else None

    # -- owners ---------------------------------------------------------------------------
    def create(self, kind: Kind, row: dict, blob_path: Optional[str] = None) -> int:
        """Insert an owner and its first version; the new history id. ``blob_path``: the
        version's tarball, stored in the same transaction when the store keeps blobs."""
        with self.engine.begin() as conn:
            self._put_blob(conn, row["sha1"], blob_path)
            conn.execute(insert(kind.owners).values(**row))
            return self._add_history(conn, kind, row[kind.id_column], row["sha1"], row["description"],
                                     row["create_at"])

    def update(self, kind: Kind, owner_id: str, values: dict, blob_path: Optional[str] = None) -> Optional[int]:
        """Update an owner; with a ``sha1``, that version is recorded (once per SHA-1) and
        becomes the active one (``blob_path``: as for :meth:`create`). The history id of
        that version, or None."""
        with self.engine.begin() as conn:
            if "sha1" in values:
                self._put_blob(conn, values["sha1"], blob_path)
            conn.execute(update(kind.owners).where(kind.owner_id() == owner_id).values(**values))
            if "sha1" not in values:
                return None
            found = conn.execute(select(kind.histories.c.id).where(and_(
                kind.history_owner() == owner_id, kind.histories.c.sha1 == values["sha1"]))).scalar()
            if found is not None:
                return found
            description = values.get("description")
            if description is None:
                description = conn.execute(select(kind.owners.c.description).where(
                    kind.owner_id() == owner_id)).scalar_one()
            return self._add_history(conn, kind, owner_id, values["sha1"], description, values["update_at"])

    def _put_blob(self, conn: Any, sha1: str, blob_path: Optional[str]) -> None:
        if self.blobs is not None and blob_path is not None:
            self.blobs.put(conn, sha1, blob_path)

    @staticmethod
    def _add_history(conn: Any, kind: Kind, owner_id: str, sha1: str, description: str, at: Any) -> int:
        result = conn.execute(insert(kind.histories).values(
            {kind.id_column: owner_id, "sha1": sha1, "description": description, "create_at": at}))
        return result.inserted_primary_key[0]

    def get(self, kind: Kind, owner_id: str) -> Optional[dict]:
        with self.engine.connect() as conn:
            rows = _rows(conn.execute(select(kind.owners).where(kind.owner_id() == owner_id)))
        return rows[0] if rows else None

    def all(self, kind: Kind) -> list[dict]:
        with self.engine.connect() as conn:
            return _rows(conn.execute(select(kind.owners)))

    def list(self, kind: Kind, offset: int, limit: int) -> tuple[list[dict], int]:
        with self.engine.connect() as conn:
            query = select(kind.owners).order_by(kind.owners.c.id.desc())
            rows = _rows(conn.execute(_page(query, offset, limit)))
            total = conn.execute(select(func.count()).select_from(kind.owners)).scalar_one()
        return rows, total

    def delete(self, kind: Kind, owner_id: str) -> None:
        """An owner and its whole history (and the blobs no other version names), in one transaction."""
        with self.engine.begin() as conn:
            sha1s = history_sha1s(conn, kind.histories, kind.id_column, owner_id)
            conn.execute(delete(kind.histories).where(kind.history_owner() == owner_id))
            conn.execute(delete(kind.owners).where(kind.owner_id() == owner_id))
            if self.blobs is not None:
                self.blobs.delete_unused(conn, sha1s)

    # -- history --------------------------------------------------------------------------
    def histories(self, kind: Kind, owner_id: str, offset: int, limit: int) -> tuple[list[dict], int]:
        where = kind.history_owner() == owner_id
        with self.engine.connect() as conn:
            rows = _rows(conn.execute(_page(select(kind.histories).where(where)
                                            .order_by(kind.histories.c.id.desc()), offset, limit)))
            total = conn.execute(select(func.count()).select_from(kind.histories).where(where)).scalar_one()
        return rows, total

    def history(self, kind: Kind, owner_id: str, history_id: int) -> Optional[dict]:
        """The history row ``history_id`` if it belongs to ``owner_id``."""
        with self.engine.connect() as conn:
            rows = _rows(conn.execute(select(kind.histories).where(and_(
                kind.histories.c.id == history_id, kind.history_owner() == owner_id))))
        return rows[0] if rows else None

    def sha1s(self, kind: Kind, owner_id: str) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(kind.histories.c.sha1).where(kind.history_owner() == owner_id))
                       .scalars())

    def delete_history(self, kind: Kind, history_id: int) -> None:
        """One version row, and its blob when no other version names that SHA-1."""
        with self.engine.begin() as conn:
            if self.blobs is None:
                conn.execute(delete(kind.histories).where(kind.histories.c.id == history_id))
                return
            sha1s = conn.execute(delete(kind.histories).where(kind.histories.c.id == history_id)
                                 .returning(kind.histories.c.sha1)).scalars().all()
            self.blobs.delete_unused(conn, sha1s)

    def all_sha1s(self) -> set[str]:
        """Every version's SHA-1, of applications and venvs."""
        with self.engine.connect() as conn:
            return {sha1 for kind in (APPS, VENVS)
                    for sha1 in conn.execute(select(kind.histories.c.sha1)).scalars()}

    def versions_of(self, sha1s: set[str]) -> list[tuple[str, str, str]]:
        """``(kind's id column, owner id, sha1)`` of every version among ``sha1s``."""
        out = []
        with self.engine.connect() as conn:
            for kind in (APPS, VENVS):
                query = select(kind.history_owner(), kind.histories.c.sha1).where(kind.histories.c.sha1.in_(sha1s))
                out.extend((kind.id_column, owner, sha1) for owner, sha1 in conn.execute(query))
        return out

    # -- what unfinished tasks use --------------------------------------------------------
    def unfinished_app_tasks(self, application_id: str, sha1: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(TASKS).where(and_(
                TASKS.c.application_id == application_id, TASKS.c.app_sha1 == sha1,
                TASKS.c.stage.in_(UNFINISHED)))).scalar_one()

    def unfinished_venv_tasks(self, venv_id: str, sha1: Optional[str] = None) -> int:
        """Unfinished tasks with an action pinned to the venv (to that version when ``sha1``)."""
        where = [ACTIONS.c.env == venv_id, ACTIONS.c.env_sha1.is_not(None), TASKS.c.stage.in_(UNFINISHED)]
        if sha1 is not None:
            where.append(ACTIONS.c.env_sha1 == sha1)
        query = (select(func.count(func.distinct(TASKS.c.task_id)))
                 .select_from(ACTIONS.join(TASKS, ACTIONS.c.task_id == TASKS.c.task_id)).where(and_(*where)))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()
