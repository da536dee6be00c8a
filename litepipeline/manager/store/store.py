"""The manager's SQL store: engine set-up, migrations, and every query the manager makes.

All methods are blocking; the manager calls them through :class:`~litepipeline.manager.
dbthread.DbThread` so the event loop never waits on the database. Rows are returned as
plain dicts (column name → value).
"""
from __future__ import annotations

import logging
import os
from typing import Any, Iterable, Optional

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Table, and_, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Engine, make_url

from litepipeline.common.states import UNFINISHED_STAGES
from litepipeline.manager.store.models import ActionRow, Application, Attempt, Task
from litepipeline.manager.taskstate import ActionState, AttemptRecord, Batch, TaskState

LOG = logging.getLogger(__name__)
HERE = os.path.dirname(os.path.abspath(__file__))
APPS: Table = Application.__table__
TASKS: Table = Task.__table__
ACTIONS: Table = ActionRow.__table__
ATTEMPTS: Table = Attempt.__table__
UNFINISHED = [s.value for s in UNFINISHED_STAGES]
MAX_LIMIT = 10000


def sqlite_url(data_path: str) -> str:
    return "sqlite:///" + os.path.join(os.path.abspath(data_path), "litepipeline.db")


def safe_url(url: str) -> str:
    """The URL with any password masked, for logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is shown as nothing at all
        return "<unparsable database url>"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
    cursor = dbapi_conn.cursor()
    # WAL: readers don't block the writer; NORMAL is durable across process crashes in WAL mode
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # no automatic checkpoint in whichever connection commits (the event loop's, for the
    # scheduler's writes): Store.checkpoint() runs them on the database thread instead
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _rows(result: Any) -> list[dict]:
    return [dict(row._mapping) for row in result]


def _limit(query: Any, offset: int, limit: int) -> Any:
    query = query.offset(offset)
    return query.limit(limit if 0 < limit <= MAX_LIMIT else MAX_LIMIT)


class Store:
    """One database; every query of the manager."""

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._statements = self._build_statements()
        # SQLite in WAL mode with synchronous=NORMAL commits without fsync (~0.5 ms for a
        # scheduling round), less than handing the batch to the database thread and back;
        # checkpoints, which do fsync, run on the database thread (see checkpoint()). A
        # server database is always written from the database thread.
        self.inline_writes = self.engine.dialect.name == "sqlite"

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest Alembic revision."""
        cfg = AlembicConfig(os.path.join(HERE, "alembic.ini"))
        cfg.set_main_option("script_location", os.path.join(HERE, "migrations"))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    def checkpoint(self) -> None:
        """Copy the SQLite WAL into the database file (PASSIVE: never blocks a writer)."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    # -- applications -------------------------------------------------------------------
    def insert_app(self, row: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(APPS).values(**row))

    def update_app(self, application_id: str, values: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(APPS).where(APPS.c.application_id == application_id).values(**values))

    def get_app(self, application_id: str) -> Optional[dict]:
        with self.engine.connect() as conn:
            rows = _rows(conn.execute(select(APPS).where(APPS.c.application_id == application_id)))
        return rows[0] if rows else None

    def list_apps(self, offset: int, limit: int) -> tuple[list[dict], int]:
        with self.engine.connect() as conn:
            rows = _rows(conn.execute(_limit(select(APPS).order_by(APPS.c.id.desc()), offset, limit)))
            total = conn.execute(select(func.count()).select_from(APPS)).scalar_one()
        return rows, total

    def delete_app(self, application_id: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(APPS).where(APPS.c.application_id == application_id)).rowcount

    def unfinished_task_count(self, application_id: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(TASKS).where(
                and_(TASKS.c.application_id == application_id, TASKS.c.stage.in_(UNFINISHED)))).scalar_one()

    def app_versions_in_use(self) -> set[tuple[str, str]]:
        """(application_id, sha1) of every unfinished task: app versions that must be kept."""
        with self.engine.connect() as conn:
            result = conn.execute(select(TASKS.c.application_id, TASKS.c.app_sha1).where(
                TASKS.c.stage.in_(UNFINISHED)).distinct())
            return {(r[0], r[1]) for r in result}

    # -- tasks --------------------------------------------------------------------------
    def get_task(self, task_id: str) -> Optional[dict]:
        with self.engine.connect() as conn:
            rows = _rows(conn.execute(select(TASKS).where(TASKS.c.task_id == task_id)))
        return rows[0] if rows else None

    def list_tasks(self, offset: int, limit: int, stage: Optional[str] = None, application_id: Optional[str] = None,
                   status: Optional[str] = None) -> tuple[list[dict], int]:
        conditions = []
        if stage:
            conditions.append(TASKS.c.stage == stage)
        if application_id:
            conditions.append(TASKS.c.application_id == application_id)
        if status:
            conditions.append(TASKS.c.status == status)
        where = and_(*conditions) if conditions else None
        query = select(TASKS).order_by(TASKS.c.id.desc())
        count = select(func.count()).select_from(TASKS)
        if where is not None:
            query, count = query.where(where), count.where(where)
        with self.engine.connect() as conn:
            rows = _rows(conn.execute(_limit(query, offset, limit)))
            total = conn.execute(count).scalar_one()
        return rows, total

    def get_actions(self, task_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            return _rows(conn.execute(
                select(ACTIONS).where(ACTIONS.c.task_id == task_id).order_by(ACTIONS.c.seq, ACTIONS.c.id)))

    def get_attempts(self, task_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            return _rows(conn.execute(
                select(ATTEMPTS).where(ATTEMPTS.c.task_id == task_id).order_by(ATTEMPTS.c.id)))

    def delete_task(self, task_id: str) -> int:
        with self.engine.begin() as conn:
            conn.execute(delete(ATTEMPTS).where(ATTEMPTS.c.task_id == task_id))
            conn.execute(delete(ACTIONS).where(ACTIONS.c.task_id == task_id))
            return conn.execute(delete(TASKS).where(TASKS.c.task_id == task_id)).rowcount

    def load_unfinished(self) -> list[tuple[dict, list[dict]]]:
        """Every unfinished task (oldest first) with its actions: the scheduler's start state."""
        with self.engine.connect() as conn:
            tasks = _rows(conn.execute(select(TASKS).where(TASKS.c.stage.in_(UNFINISHED)).order_by(TASKS.c.id)))
            ids = [t["task_id"] for t in tasks]
            actions: dict[str, list[dict]] = {i: [] for i in ids}
            for chunk in _chunks(ids, 500):
                for row in _rows(conn.execute(select(ACTIONS).where(ACTIONS.c.task_id.in_(chunk))
                                              .order_by(ACTIONS.c.seq, ACTIONS.c.id))):
                    actions[row["task_id"]].append(row)
        return [(t, actions[t["task_id"]]) for t in tasks]

    # -- the scheduler's writes ---------------------------------------------------------
    def save(self, batch: Batch) -> None:
        """Write one scheduling round's changes in one transaction."""
        st = self._statements
        with self.engine.begin() as conn:
            if batch.new_tasks:
                conn.execute(st["insert_task"], [t.to_row() for t in batch.new_tasks])
            if batch.tasks:
                conn.execute(st["update_task"], [_keyed(t.to_row(), "task_id") for t in batch.tasks.values()])
            if batch.new_actions:
                conn.execute(st["insert_action"], [a.to_row() for a in batch.new_actions])
            if batch.actions:
                conn.execute(st["update_action"],
                             [_keyed(a.to_row(), "task_id", "name") for a in batch.actions.values()])
            if batch.new_attempts:
                conn.execute(st["insert_attempt"], [a.to_row() for a in batch.new_attempts])
            if batch.attempts:
                conn.execute(st["update_attempt"],
                             [_keyed(a.to_row(), "attempt_id") for a in batch.attempts.values()])

    @staticmethod
    def _build_statements() -> dict:
        """The write statements, built once: SQLAlchemy then reuses their compiled form."""
        def updater(table: Table, keys: tuple, fields: list) -> Any:
            where = and_(*[table.c[k] == _bind("k_" + k) for k in keys])
            return update(table).where(where).values({f: _bind(f) for f in fields if f not in keys})

        return {
            "insert_task": insert(TASKS), "insert_action": insert(ACTIONS), "insert_attempt": insert(ATTEMPTS),
            "update_task": updater(TASKS, ("task_id",), list(TaskState._ROW_FIELDS)),
            "update_action": updater(ACTIONS, ("task_id", "name"), ActionState.row_fields()),
            "update_attempt": updater(ATTEMPTS, ("attempt_id",), AttemptRecord.row_fields()),
        }


def _keyed(row: dict, *keys: str) -> dict:
    """``row`` with its key columns renamed to the ``k_`` bind names of the update statements."""
    for key in keys:
        row["k_" + key] = row.pop(key)
    return row


def _bind(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name)


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
