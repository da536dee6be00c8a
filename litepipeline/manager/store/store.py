"""The manager's SQL store: engine set-up, migrations, and every query the manager makes.

All methods are blocking; the manager calls them through :class:`~litepipeline.manager.
dbthread.DbThread` so the event loop never waits on the database. Rows are returned as
plain dicts (column name → value).
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from contextlib import closing
from itertools import groupby
from operator import itemgetter
from typing import Any, Callable, NamedTuple, Optional

from sqlalchemy import Table, and_, bindparam, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Engine, make_url

from litepipeline.common.states import UNFINISHED_STAGES, Stage
from litepipeline.manager.store import idempotency
from litepipeline.manager.store import writes as extra_writes
from litepipeline.manager.store.sqlite_schema import create_if_empty
from litepipeline.manager.store.models import ACTIONS, ATTEMPTS, TASKS
from litepipeline.manager.store.models import APPLICATIONS as APPS, TASK_COUNTS as COUNTS
from litepipeline.manager.store.models_workflows import WORKS
from litepipeline.manager.taskstate import ActionState, AttemptRecord, Batch, TaskState
from litepipeline.manager.workflows import WorkState

LOG = logging.getLogger(__name__)
HERE = os.path.dirname(os.path.abspath(__file__))
UNFINISHED = [s.value for s in UNFINISHED_STAGES]
MAX_LIMIT = 10000
# PostgreSQL ends a session left inside a transaction this long (a manager frozen by
# SIGSTOP mid-write): its locks must not stop the next leader for ever
IDLE_IN_TRANSACTION_MS = 5000
MIGRATION_LOCK = 0x4C697465   # the advisory lock two managers starting together migrate under
# fails (a cast error naming the lease's epoch) unless the lease holds ours: the check needs
# no answer read back, so it can go in a pipeline with the writes and the commit
FENCE = ("SELECT CAST(CASE WHEN epoch = {epoch} THEN '0' ELSE 'deposed: the lease holds epoch ' || epoch END "
         "AS integer) FROM leadership WHERE id = 1 FOR SHARE")
DEPOSED_RE = re.compile(r"deposed: the lease holds epoch (\d+)")


class MigrationFailed(Exception):
    """The store could not be brought to the newest schema (the reason is in the message)."""


class Deposed(Exception):
    """A write of a manager whose leadership epoch is over: refused, nothing written."""


def head_revision(versions: str = os.path.join(HERE, "migrations", "versions")) -> Optional[str]:
    """The newest migration's revision, read from the migration files themselves."""
    revisions, parents = set(), set()
    for name in os.listdir(versions):
        if name.endswith(".py"):
            with open(os.path.join(versions, name), encoding="utf-8") as fp:
                text = fp.read()
            revision = re.search(r'^revision\s*=\s*["\']([^"\']+)', text, re.M)
            parent = re.search(r'^down_revision\s*=\s*["\']([^"\']+)', text, re.M)
            if revision:
                revisions.add(revision.group(1))
            if parent:
                parents.add(parent.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


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


def _asynchronous_commit(dbapi_conn, _record) -> None:  # noqa: ANN001
    # a commit is still atomic, ordered and seen by every reader at once; only the wait for
    # the WAL's fsync (milliseconds on a busy disk, per round) is skipped
    cursor = dbapi_conn.cursor()
    cursor.execute("SET synchronous_commit = off")
    cursor.close()
    dbapi_conn.commit()


def _rows(result: Any) -> list[dict]:
    return [dict(row._mapping) for row in result]


def _limit(query: Any, offset: int, limit: int) -> Any:
    query = query.offset(offset)
    return query.limit(limit if 0 < limit <= MAX_LIMIT else MAX_LIMIT)


class Store:
    """One database; every query of the manager."""

    def __init__(self, url: str, application_name: Optional[str] = None, synchronous_commit: bool = True) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        if make_url(url).get_backend_name() == "postgresql":
            kwargs["connect_args"] = {"options": f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"}
            if application_name:   # fail-over: the next leader ends this manager's sessions by this name
                kwargs["connect_args"]["application_name"] = application_name
        self.engine: Engine = create_engine(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        elif self.engine.dialect.name == "postgresql" and not synchronous_commit:
            event.listen(self.engine, "connect", _asynchronous_commit)
        self._statements = self._build_statements()
        self._writes: dict[str, _Write] = {}   # compiled on the first save
        self._writer: Any = None    # the DBAPI connection save() keeps for itself
        # SQLite in WAL mode with synchronous=NORMAL commits without fsync, which costs less
        # than handing the batch to the database thread and back;
        # checkpoints, which do fsync, run on the database thread (see checkpoint()). A
        # server database is always written from the database thread.
        self.inline_writes = self.engine.dialect.name == "sqlite"
        # psycopg's pipeline mode: statements sent without waiting for each answer
        self._pipelined = self.engine.dialect.driver == "psycopg"
        self.epoch: Optional[int] = None   # fenced: every commit checks the lease still has it
        self._on_deposed: Callable[[Optional[int]], None] = lambda found: None

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest Alembic revision.

        Alembic (and what it imports: ~10 MB, a second of start-up) is loaded only when the
        store is not already at the newest revision."""
        if self.at_head():
            return
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig(os.path.join(HERE, "alembic.ini"))
        cfg.set_main_option("script_location", os.path.join(HERE, "migrations"))
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":   # managers starting together: one at a time
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def migrate_in_child(self) -> None:
        """:meth:`migrate` in a child process (store/migrate.py), so Alembic is never loaded
        into the calling process; raises :class:`MigrationFailed` with the child's reason.
        A new SQLite store needs no migration: it is made from ``sqlite_schema.sql``."""
        if self.at_head():
            return
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            if create_if_empty(database):
                LOG.info("new store created at revision %s", head_revision())
                return
        result = subprocess.run([sys.executable, "-m", "litepipeline.manager.store.migrate"], input=self.url,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines()
            raise MigrationFailed(f"cannot bring the store to the newest schema: "
                                  f"{lines[-1] if lines else f'exit status {result.returncode}'}")
        LOG.info("store migrated to revision %s", head_revision())   # the child's own log is not kept

    def at_head(self) -> bool:
        """Whether the store's Alembic revision is the newest migration's."""
        try:
            with self.engine.connect() as conn:
                stored = {r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}
        except Exception:  # noqa: BLE001 - no version table yet: a new store
            return False
        return stored == {head_revision()}

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.engine.dispose()

    def checkpoint(self) -> None:
        """Copy the SQLite WAL into the database file (PASSIVE: never blocks a writer)."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    # -- fencing (fail-over on PostgreSQL) ----------------------------------------------
    def fence(self, epoch: int, on_deposed: Callable[[Optional[int]], None]) -> None:
        """From now on every transaction commits only while the lease row holds ``epoch``.

        The check runs just before each commit and locks the row (``FOR SHARE``) until the
        commit is done, so a take-over (which updates the row) comes either before the
        check, which then fails and rolls the transaction back, or after the commit.
        ``on_deposed(found_epoch)`` is called (on the calling thread) when a check fails.
        """
        self.epoch = epoch
        self._on_deposed = on_deposed
        event.listen(self.engine, "commit", self._check_commit)

    def _check_commit(self, conn: Any) -> None:
        self.check_epoch(conn.connection)

    def check_epoch(self, dbapi_conn: Any) -> None:
        """Raise :class:`Deposed` unless the lease row holds our epoch (fenced stores only)."""
        if self.epoch is None:
            return
        try:
            with closing(dbapi_conn.cursor()) as cursor:
                cursor.execute(self.fence_sql())
        except Exception as exc:
            deposed = self.deposed_from(exc)
            if deposed is None:
                raise
            raise deposed from None

    def fence_sql(self) -> str:
        """The epoch check as one statement (it fails the transaction when the epoch is not ours)."""
        return FENCE.format(epoch=int(self.epoch))

    def deposed_from(self, exc: BaseException) -> Optional[Deposed]:
        """The :class:`Deposed` an error of :meth:`fence_sql` stands for (``on_deposed`` told), or None."""
        found = DEPOSED_RE.search(str(exc))
        if self.epoch is None or found is None:
            return None
        self._on_deposed(int(found.group(1)))
        return Deposed(f"this manager's leadership (epoch {self.epoch}) is over: the lease holds epoch "
                       f"{found.group(1)}")

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
        """From the kept counts: the application's finished tasks are never read."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.sum(COUNTS.c.n), 0)).where(
                and_(COUNTS.c.application_id == application_id, COUNTS.c.stage.in_(UNFINISHED)))).scalar_one())

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
                   status: Optional[str] = None, work_id: Optional[str] = None) -> tuple[list[dict], int]:
        """Newest first, with the number of matching tasks.

        Every filter has an index ending in ``id``, so a page is one index range read. The
        count comes from ``task_counts`` (a few rows per application) unless ``work_id`` is
        given, whose tasks are few and counted through their index.
        """
        filters = {"stage": stage, "application_id": application_id, "status": status, "work_id": work_id}
        conditions = [TASKS.c[k] == v for k, v in filters.items() if v]
        query = select(TASKS).order_by(TASKS.c.id.desc())
        if conditions:
            query = query.where(and_(*conditions))
        if work_id:
            count = select(func.count()).select_from(TASKS).where(and_(*conditions))
        else:
            kept = [COUNTS.c[k] == v for k, v in filters.items() if v and k != "work_id"]
            count = select(func.coalesce(func.sum(COUNTS.c.n), 0))
            if kept:
                count = count.where(and_(*kept))
        with self.engine.connect() as conn:
            rows = _rows(conn.execute(_limit(query, offset, limit)))
            total = int(conn.execute(count).scalar_one())
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
            idempotency.forget_tasks(conn, [task_id])
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

    def load_start(self, window: int) -> tuple[list[tuple[dict, list[dict]]], list[str]]:
        """The scheduler's start state with a bounded window of pending tasks: every running
        or stopping task and the oldest ``window`` pending ones, each with its actions (oldest
        first), and the ids of the other pending tasks, oldest first (the backlog)."""
        pending = Stage.PENDING.value
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(select(TASKS.c.task_id).where(TASKS.c.stage == pending)
                                              .order_by(TASKS.c.id))]
            active = [r[0] for r in conn.execute(select(TASKS.c.task_id).where(
                TASKS.c.stage.in_([s for s in UNFINISHED if s != pending])).order_by(TASKS.c.id))]
            loaded = self._load_tasks(conn, active + ids[:window])
        return loaded, ids[window:]

    def load_tasks(self, task_ids: list[str]) -> list[tuple[dict, list[dict]]]:
        """These tasks (the ones that exist) with their actions, oldest first."""
        with self.engine.connect() as conn:
            return self._load_tasks(conn, task_ids)

    @staticmethod
    def _load_tasks(conn: Any, task_ids: list[str]) -> list[tuple[dict, list[dict]]]:
        tasks: list[dict] = []
        actions: dict[str, list[dict]] = {}
        for chunk in _chunks(task_ids, 500):
            tasks.extend(_rows(conn.execute(select(TASKS).where(TASKS.c.task_id.in_(chunk)))))
            for row in _rows(conn.execute(select(ACTIONS).where(ACTIONS.c.task_id.in_(chunk))
                                          .order_by(ACTIONS.c.seq, ACTIONS.c.id))):
                actions.setdefault(row["task_id"], []).append(row)
        tasks.sort(key=itemgetter("id"))
        return [(t, actions.get(t["task_id"], [])) for t in tasks]

    # -- the scheduler's writes ---------------------------------------------------------
    def save(self, batch: Batch) -> None:
        """Write one scheduling round's changes in one transaction.

        On the hot path of every task (inline on the event loop for SQLite), so the rows go
        straight to the DBAPI cursor: SQLAlchemy's execute() costs many times the statement
        itself, and a round runs up to six (bench/store_bench.py measures it; the numbers are
        in docs/architecture.md). The SQL and the value conversions are still SQLAlchemy's,
        compiled once (see _compile_writes), so what SQLAlchemy reads back is the same.
        """
        changes = (("insert_task", batch.new_tasks), ("update_task", batch.tasks.values()),
                   ("insert_action", batch.new_actions), ("update_action", batch.actions.values()),
                   ("insert_attempt", batch.new_attempts), ("update_attempt", batch.attempts.values()),
                   ("insert_work", batch.new_works), ("update_work", batch.works),
                   # other controllers' rows in the order they were recorded, runs of one write together
                   *((name, [row for _, row in run]) for name, run in groupby(batch.extra, key=itemgetter(0))))
        conn = self._connection()
        try:
            writes = self._writes or self._compile_writes()
            if self._pipelined:
                # psycopg: the whole transaction (BEGIN, every statement, COMMIT) in one
                # pipeline with one sync, so one round trip; each waits for a busy server's
                # CPU. The writer is in autocommit mode: psycopg's own BEGIN and COMMIT
                # would each add a sync and a wait for its answer.
                with conn.driver_connection.pipeline(), closing(conn.cursor()) as cursor:
                    cursor.execute("BEGIN")
                    self._write_changes(cursor, writes, changes)
                    cursor.execute("COMMIT")
            else:
                with closing(conn.cursor()) as cursor:
                    self._write_changes(cursor, writes, changes)
                conn.commit()
        except BaseException as exc:
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 - the original error is the one to raise
                conn.invalidate()   # reused neither by the pool nor as the writer
                if conn is self._writer:
                    self._writer = None
            deposed = self.deposed_from(exc) if isinstance(exc, Exception) else None
            if deposed is not None:
                raise deposed from None
            raise
        finally:
            if conn is not self._writer:
                conn.close()   # back to the pool

    def _write_changes(self, cursor: Any, writes: dict, changes: Iterable) -> None:
        for name, objects in changes:
            if objects:
                write = writes[name]
                cursor.executemany(write.sql, [write.params(o.to_row()) for o in objects])
        if self.epoch is not None:
            # fencing: fails the transaction server-side when the lease is not ours; it reads
            # nothing back, so in a pipeline it costs no round trip
            cursor.execute(self.fence_sql())

    def _connection(self) -> Any:
        """save()'s own connection, kept for the next round (rounds are written one at a
        time): SQLite's one writer; on a server database no pool check-out, whose ping cost
        a round trip per round (a connection the server dropped fails one round, is
        invalidated by save(), and the dispatcher's retry gets a new one). From the engine,
        so the connect event's settings apply."""
        if self._writer is None:
            self._writer = self.engine.raw_connection()
            if self._pipelined:
                self._writer.driver_connection.autocommit = True   # save() sends BEGIN itself
        return self._writer

    def _compile_writes(self) -> dict:
        """The write statements as SQL strings of this dialect, each with its bind names (in
        order, for a positional paramstyle such as SQLite's), the row keys they take their
        values from, and the bind processors of the columns' types for this dialect."""
        dialect = self.engine.dialect
        writes = {}
        for name, (stmt, fields) in self._statements.items():
            columns = fields if name.startswith("insert") else None   # updates: the SET clause's
            compiled = stmt.compile(dialect=dialect, column_keys=columns, for_executemany=True)
            binds = []
            for bind in compiled.positiontup or compiled.binds:   # positional: in their order
                key = bind.removeprefix("k_")
                if key not in fields:   # e.g. a column default SQLAlchemy would fill in
                    raise RuntimeError(f"{name}: the rows have no value for {bind!r}")
                processor = compiled.binds[bind].type.dialect_impl(dialect).bind_processor(dialect)
                binds.append((bind, key, processor))
            writes[name] = _Write.of(compiled.string, binds, dialect.positional)
        self._writes = writes
        return writes

    @staticmethod
    def _build_statements() -> dict:
        """The write statements with the row fields they are given (``to_row()``'s keys).

        An insert lists exactly those fields; an update sets every field but its key
        columns, which it matches on through the ``k_`` bind names."""
        def updater(table: Table, keys: tuple, changing: tuple) -> Any:
            where = and_(*[table.c[k] == bindparam("k_" + k) for k in keys])
            return update(table).where(where).values({f: bindparam(f) for f in changing})

        task_fields, action_fields = list(TaskState._ROW_FIELDS), ActionState.row_fields()
        attempt_fields = AttemptRecord.row_fields()
        return {
            "insert_task": (insert(TASKS), task_fields),
            "insert_action": (insert(ACTIONS), action_fields),
            "insert_attempt": (insert(ATTEMPTS), attempt_fields),
            "update_task": (updater(TASKS, ("task_id",), TaskState.CHANGING), task_fields),
            "update_action": (updater(ACTIONS, ("task_id", "name"), ActionState.CHANGING), action_fields),
            "update_attempt": (updater(ATTEMPTS, ("attempt_id",), AttemptRecord.CHANGING), attempt_fields),
            "insert_work": (insert(WORKS), list(WorkState.ROW_FIELDS)),
            "update_work": (updater(WORKS, ("work_id",), WorkState.CHANGING), list(WorkState.ROW_FIELDS)),
            **extra_writes.EXTRA,   # other controllers' rows, in the same transaction (store/writes.py)
        }


class _Write(NamedTuple):
    """One compiled write statement: ``params(row)`` gives the DBAPI parameters of a row."""

    sql: str
    names: tuple      # the bind names, in order
    get: Callable     # row -> the tuple of its values for the binds
    # (position, bind processor, whether it maps None to None): a row's None values (many
    # of its times) skip the Python call
    processors: tuple
    positional: bool

    @classmethod
    def of(cls, sql: str, binds: list, positional: bool) -> "_Write":
        """From (bind name, row key, bind processor or None) in the statement's order."""
        keys = [key for _, key, _ in binds]
        pick = itemgetter(*keys)
        get = pick if len(keys) > 1 else (lambda row: (pick(row),))
        processors = tuple((i, process, _keeps_none(process))
                           for i, (_, _, process) in enumerate(binds) if process is not None)
        return cls(sql, tuple(name for name, _, _ in binds), get, processors, positional)

    def params(self, row: dict) -> Any:
        values = self.get(row)
        if self.processors:
            values = list(values)
            for i, process, keeps_none in self.processors:
                value = values[i]
                if value is not None or not keeps_none:
                    values[i] = process(value)
        if self.positional:
            return tuple(values)
        return dict(zip(self.names, values))


def _keeps_none(process: Callable) -> bool:
    try:
        return process(None) is None
    except Exception:  # noqa: BLE001 - then None goes through it like any value
        return False


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
