"""The SQL store on SQLite and on PostgreSQL (a fresh database per run, dropped after)."""
from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from collections.abc import Iterable
from typing import Any

import pytest
from sqlalchemy import insert, inspect, text, update

from litepipeline.manager.store import sqlite_schema
from litepipeline.manager.store import store as store_module
from litepipeline.manager.store.store import (ACTIONS, ATTEMPTS, TASKS, MigrationFailed, Store, safe_url,
                                               sqlite_url)
from litepipeline.manager.taskstate import ActionState, AttemptRecord, Batch, TaskState
from tests.pgdb import migrated_store

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, 678901)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        store = Store(sqlite_url(str(tmp_path)))
        store.migrate()
        yield store
        store.close()
        return
    with migrated_store() as (_url, store):
        yield store


def task(task_id: str, app: str = "app-1", stage: str = "pending") -> TaskState:
    return TaskState(task_id=task_id, task_name=f"name {task_id}", application_id=app, app_sha1="a" * 40,
                     input_data={"k": [1, 2]}, stage=stage, create_at=NOW, update_at=NOW)


def test_migrate_is_idempotent_and_creates_tables(store):
    store.migrate()
    tables = set(inspect(store.engine).get_table_names())
    assert {"applications", "tasks", "actions", "attempts", "alembic_version"} <= tables


def test_a_new_sqlite_store_is_made_from_the_schema_file_without_alembic_or_a_child(tmp_path):
    code = ("import subprocess, sys; from litepipeline.manager.store.store import Store; "
            "subprocess.run = None; "   # a child process would fail the start
            "store = Store(sys.argv[1]); store.migrate_in_child(); print(store.at_head(), 'alembic' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, sqlite_url(str(tmp_path))], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]


def test_the_sqlite_schema_file_makes_what_the_migrations_make(tmp_path):
    made = str(tmp_path / "made.db")
    assert sqlite_schema.create_if_empty(made)
    assert sqlite_schema.dump(made) == sqlite_schema.migrated_dump(), \
        "the migrations changed: python -m litepipeline.manager.store.sqlite_schema writes the file again"
    assert not sqlite_schema.create_if_empty(made)   # a store that holds anything is left alone
    with open(tmp_path / "junk.db", "wb") as fp:
        fp.write(b"this is not a database" * 100)
    assert not sqlite_schema.create_if_empty(str(tmp_path / "junk.db"))


def test_an_older_store_is_migrated_in_a_child_process(tmp_path):
    """The manager's start migrates in a child (store/migrate.py): the schema is there,
    and this process has not loaded Alembic (a fresh interpreter, as the manager is)."""
    from alembic import command
    from alembic.config import Config

    older = Store(sqlite_url(str(tmp_path)))
    cfg = Config(os.path.join(store_module.HERE, "alembic.ini"))
    cfg.set_main_option("script_location", os.path.join(store_module.HERE, "migrations"))
    with older.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0008")
    older.close()
    code = ("import sys; from litepipeline.manager.store.store import Store; "
            "store = Store(sys.argv[1]); store.migrate_in_child(); print(store.at_head(), 'alembic' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, sqlite_url(str(tmp_path))], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]
    store = Store(sqlite_url(str(tmp_path)))
    try:
        assert {"tasks", "actions", "alembic_version"} <= set(inspect(store.engine).get_table_names())
        store.migrate_in_child()   # at the newest revision: no child at all
    finally:
        store.close()


def test_a_migration_that_fails_in_the_child_says_why(tmp_path):
    with open(tmp_path / "litepipeline.db", "wb") as fp:
        fp.write(b"this is not a database" * 100)
    store = Store(sqlite_url(str(tmp_path)))
    try:
        with pytest.raises(MigrationFailed, match=r"^cannot bring the store to the newest schema: "
                                                   r"DatabaseError: .*file is not a database"):
            store.migrate_in_child()
    finally:
        store.close()


def test_apps_roundtrip_and_order(store):
    for i in range(3):
        store.insert_app({"application_id": f"app-{i}", "name": f"n{i}", "description": "d", "sha1": "s" * 40,
                          "create_at": NOW, "update_at": NOW})
    rows, total = store.list_apps(0, 2)
    assert total == 3 and [r["application_id"] for r in rows] == ["app-2", "app-1"]
    assert store.get_app("app-0")["create_at"] == NOW          # microseconds survive
    store.update_app("app-0", {"name": "new"})
    assert store.get_app("app-0")["name"] == "new"
    assert store.delete_app("app-0") == 1 and store.get_app("app-0") is None


def test_batch_save_and_load_unfinished(store):
    t1, t2 = task("t1"), task("t2")
    a = ActionState("t1", "a", "python a.py", condition=[], input_data={"x": 1})
    b = ActionState("t1", "b", "python b.py", seq=1, condition=["a"])
    store.save(Batch(new_tasks=[t1, t2], new_actions=[a, b]))
    t1.stage, a.stage, a.attempt, a.attempt_id, a.node_id, a.dispatched_at = "running", "running", 1, "at1", "n", NOW
    t2.stage, t2.status = "finished", "kill"
    record = AttemptRecord("at1", "t1", "a", 1, "n", NOW)
    store.save(Batch(tasks={"t1": t1, "t2": t2}, actions={("t1", "a"): a}, new_attempts=[record]))
    record.status, record.returncode, a.output = "success", 0, {"data": {"ok": True}, "actions": []}
    store.save(Batch(actions={("t1", "a"): a}, attempts={"at1": record}))
    loaded = store.load_unfinished()
    assert [t["task_id"] for t, _ in loaded] == ["t1"]
    actions = loaded[0][1]
    assert [r["name"] for r in actions] == ["a", "b"]
    assert actions[0]["attempt_id"] == "at1" and actions[0]["output"] == {"data": {"ok": True}, "actions": []}
    assert actions[1]["condition"] == ["a"]
    assert store.get_attempts("t1")[0]["status"] == "success"
    assert store.unfinished_task_count("app-1") == 1
    assert store.app_versions_in_use() == {("app-1", "a" * 40)}


def test_action_target_survives_a_restart(store):
    placed = ActionState("t1", "train", "run", target={"labels": {"gpu": "a100"}, "platform": "x86_64"})
    plain = ActionState("t1", "prep", "run", seq=1)
    store.save(Batch(new_tasks=[task("t1")], new_actions=[placed, plain]))
    (_, rows), = store.load_unfinished()
    loaded = {r["name"]: ActionState.from_row(r) for r in rows}
    assert loaded["train"].target == {"labels": {"gpu": "a100"}, "platform": "x86_64"}
    assert loaded["prep"].target is None
    with store.engine.connect() as conn:   # SQL NULL, not JSON 'null': "has a target" is a plain IS NOT NULL
        assert conn.execute(text("SELECT name FROM actions WHERE target IS NOT NULL")).scalars().all() == ["train"]


def test_list_tasks_filters_and_paging(store):
    tasks = [task(f"t{i}", app="x" if i % 2 else "y", stage="finished" if i < 3 else "pending") for i in range(6)]
    tasks[0].status = "fail"
    store.save(Batch(new_tasks=tasks))
    rows, total = store.list_tasks(0, 0)
    assert total == 6 and [r["task_id"] for r in rows][:2] == ["t5", "t4"]
    assert [r["task_id"] for r in store.list_tasks(1, 2)[0]] == ["t4", "t3"]
    assert {r["task_id"] for r in store.list_tasks(0, 0, stage="finished")[0]} == {"t0", "t1", "t2"}
    assert {r["task_id"] for r in store.list_tasks(0, 0, application_id="x")[0]} == {"t1", "t3", "t5"}
    assert [r["task_id"] for r in store.list_tasks(0, 0, status="fail")[0]] == ["t0"]
    assert store.list_tasks(0, 0, stage="running") == ([], 0)


def _counted_totals(store) -> dict:
    """``total`` for every filter combination, next to a count of the rows themselves."""
    out = {}
    for stage in (None, "pending", "running", "finished"):
        for status in (None, "success", "fail"):
            for app in (None, "x", "y"):
                filters = {"stage": stage, "status": status, "application_id": app}
                where = [TASKS.c[k] == v for k, v in filters.items() if v]
                with store.engine.connect() as conn:
                    query = TASKS.select()
                    rows = len(conn.execute(query.where(*where) if where else query).fetchall())
                out[(stage, status, app)] = (store.list_tasks(0, 1, **filters)[1], rows)
    return out


def test_list_totals_follow_every_insert_change_and_delete(store):
    tasks = [task(f"t{i}", app="x" if i % 3 else "y") for i in range(9)]
    store.save(Batch(new_tasks=tasks))
    for t in tasks[:6]:   # the scheduler's updates: pending -> running -> finished
        t.stage = "running"
    store.save(Batch(tasks={t.task_id: t for t in tasks[:6]}))
    for i, t in enumerate(tasks[:4]):
        t.stage, t.status = "finished", "fail" if i == 1 else "success"
    store.save(Batch(tasks={t.task_id: t for t in tasks[:4]}))
    store.save(Batch(tasks={t.task_id: t for t in tasks[:4]}))   # written again unchanged: counted once
    store.delete_task("t2")
    store.delete_task("t7")
    totals = _counted_totals(store)
    assert all(counted == rows for counted, rows in totals.values()), totals
    assert totals[(None, None, None)] == (7, 7) and totals[("finished", "success", "y")] == (2, 2)
    assert totals[("running", None, None)][0] == 2 and totals[(None, "fail", "x")][0] == 1
    assert store.list_tasks(0, 1, work_id="nothing") == ([], 0)


def test_migration_counts_the_tasks_already_stored(tmp_path):
    """Upgrading a store that has tasks (0005 -> 0007) counts them once."""
    from alembic import command
    from alembic.config import Config

    from litepipeline.manager.store.store import HERE

    store = Store(sqlite_url(str(tmp_path)))
    cfg = Config(os.path.join(HERE, "alembic.ini"))
    cfg.set_main_option("script_location", os.path.join(HERE, "migrations"))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    with store.engine.begin() as conn:
        conn.execute(insert(TASKS), [dict(task(f"t{i}", app="x" if i % 2 else "y", stage="finished").to_row(),
                                          status="success") for i in range(5)])
    store.migrate()
    assert store.list_tasks(0, 1)[1] == 5
    assert store.list_tasks(0, 1, application_id="x", status="success")[1] == 2
    store.save(Batch(new_tasks=[task("new", app="x")]))
    assert store.list_tasks(0, 1, application_id="x")[1] == 3
    store.close()


def test_delete_task_removes_actions_and_attempts(store):
    t = task("t1")
    store.save(Batch(new_tasks=[t], new_actions=[ActionState("t1", "a", "x")],
                     new_attempts=[AttemptRecord("at", "t1", "a", 1, None, NOW)]))
    assert store.delete_task("t1") == 1
    assert store.get_task("t1") is None and store.get_actions("t1") == [] and store.get_attempts("t1") == []


def test_failed_batch_leaves_nothing(store):
    t = task("t1")
    store.save(Batch(new_tasks=[t]))
    with pytest.raises(store.engine.dialect.loaded_dbapi.IntegrityError):
        # a duplicate task id violates the unique index: the whole batch must roll back
        store.save(Batch(new_tasks=[task("t2"), task("t1")], new_actions=[ActionState("t2", "a", "x")]))
    assert store.get_task("t2") is None and store.get_actions("t2") == []


def awkward(prefix: str) -> tuple[TaskState, list[ActionState], AttemptRecord]:
    """A task, two actions and an attempt with values that need converting on the way in."""
    t = task(f"{prefix}-t", stage="running")
    t.task_name, t.start_at, t.message = "tâche ✓", NOW.replace(microsecond=1), "it's 100% ✓"
    t.input_data = {"text": 'ünï 日本 "q" \\ %(x)s', "list": [1, 2.5, None, True, {"a": []}], "empty": {}}
    a = ActionState(t.task_id, "a", "python a.py", input_data={"x": 1.5}, timeout=2.5, retry_delay=0,
                    stage="running", attempt=1, attempt_id=f"{prefix}-at", node_id="n", dispatched_at=NOW)
    b = ActionState(t.task_id, "b", "python b.py", seq=1, condition=["a"], retries=3, retry_delay=0.125,
                    env="ENV=1", output={"data": {"ü": [1, None]}, "actions": []}, returncode=-9)
    return t, [a, b], AttemptRecord(f"{prefix}-at", t.task_id, "a", 1, "n", NOW, start_at=NOW)


def change(t: TaskState, actions: list, record: AttemptRecord) -> None:
    later = NOW + dt.timedelta(seconds=1, microseconds=7)
    record.start_at = NOW.replace(microsecond=0)   # SQLAlchemy writes its ".000000" too
    t.stage, t.signal, t.update_at = "stopping", -15, later
    first, second = actions
    first.stage, first.status, first.end_at, first.returncode = "finished", "success", later, 0
    first.output, first.message = {"data": {"k": "v ✓"}, "actions": []}, "ok"
    second.output, second.returncode, second.retry_at = None, None, later
    record.status, record.returncode, record.end_at, record.message = "success", 0, later, "ñ"


def sqlalchemy_save(store: Store, batch: Batch) -> None:
    """What save() did before it went to the DBAPI: SQLAlchemy Core, the reference to match."""
    with store.engine.begin() as conn:
        inserts = ((TASKS, batch.new_tasks), (ACTIONS, batch.new_actions), (ATTEMPTS, batch.new_attempts))
        for table, new in inserts:
            if new:
                conn.execute(insert(table), [o.to_row() for o in new])
        updates = ((TASKS, ("task_id",), batch.tasks), (ACTIONS, ("task_id", "name"), batch.actions),
                   (ATTEMPTS, ("attempt_id",), batch.attempts))
        for table, keys, changed in updates:
            for o in changed.values():
                row = o.to_row()
                conn.execute(update(table).where(*[table.c[k] == row[k] for k in keys]).values(**row))


def test_updates_write_only_the_fields_that_change(store):
    t, actions, record = awkward("w")
    store.save(Batch(new_tasks=[t], new_actions=list(actions), new_attempts=[record]))
    # fields fixed at creation: an update leaves them as stored (and does not re-encode them)
    t.input_data, t.task_name, t.stage = {"changed": True}, "renamed", "stopping"
    actions[0].input_data, actions[0].main, actions[0].stage = {"changed": True}, "other", "finished"
    store.save(Batch(tasks={t.task_id: t}, actions={(a.task_id, a.name): a for a in actions}))
    row = store.get_task(t.task_id)
    assert row["stage"] == "stopping" and row["task_name"] == "tâche ✓" and row["input_data"]["empty"] == {}
    first = store.get_actions(t.task_id)[0]
    assert first["stage"] == "finished" and first["main"] == "python a.py" and first["input_data"] == {"x": 1.5}


def test_save_writes_what_sqlalchemy_writes(store):
    raw, ref = awkward("raw"), awkward("ref")
    for objects, save in ((raw, store.save), (ref, lambda b: sqlalchemy_save(store, b))):
        t, actions, record = objects
        save(Batch(new_tasks=[t], new_actions=list(actions), new_attempts=[record]))
        change(t, actions, record)
        save(Batch(tasks={t.task_id: t}, actions={(a.task_id, a.name): a for a in actions},
                   attempts={record.attempt_id: record}))

    def same(rows: Iterable) -> list:   # the rows without what differs between raw and ref
        return [{k: v for k, v in r.items() if k not in ("id", "task_id", "attempt_id")} for r in rows]

    t, actions, record = raw   # read back: as SQLAlchemy wrote them, and as they were in memory
    assert same([store.get_task("raw-t")]) == same([store.get_task("ref-t")]) == same([t.to_row()])
    assert same(store.get_actions("raw-t")) == same(store.get_actions("ref-t")) \
        == same(a.to_row() for a in actions)
    assert same(store.get_attempts("raw-t")) == same(store.get_attempts("ref-t")) == same([record.to_row()])
    loaded = {row["task_id"]: (same([row]), same(rows)) for row, rows in store.load_unfinished()}
    assert loaded["raw-t"] == loaded["ref-t"]
    # stored alike too, as the driver returns it (SQLite: the same text for dates and JSON)
    with store.engine.connect() as conn:
        for table in ("tasks", "actions", "attempts"):
            rows = [dict(r._mapping) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
            assert same(r for r in rows if r["task_id"] == "raw-t") == \
                same(r for r in rows if r["task_id"] == "ref-t")


def test_failed_save_midway_leaves_nothing_and_the_store_goes_on(store):
    t1 = task("t1")
    store.save(Batch(new_tasks=[t1]))
    t1.stage, t1.message = "running", "changed"
    twins = [ActionState("t2", "a", "x"), ActionState("t2", "a", "y")]
    with pytest.raises(store.engine.dialect.loaded_dbapi.IntegrityError):
        # the task insert and update go through; the action insert breaks uq_actions_task_name
        store.save(Batch(new_tasks=[task("t2")], tasks={"t1": t1}, new_actions=twins))
    assert store.get_task("t2") is None and store.get_actions("t2") == []
    assert (store.get_task("t1")["stage"], store.get_task("t1")["message"]) == ("pending", None)
    for i in range(3):   # whichever connection it takes next is usable
        store.save(Batch(new_tasks=[task(f"t{3 + i}")], tasks={"t1": t1}))
    store.save(Batch(new_tasks=[task("t2")], new_actions=twins[:1]))
    assert store.get_task("t1")["message"] == "changed" and store.get_task("t5") is not None
    assert [a["main"] for a in store.get_actions("t2")] == ["x"]
    # save() keeps its one writer connection, on SQLite and on a server database alike
    assert store.engine.pool.checkedout() == 1


class LosingCommit:
    """A DBAPI cursor whose COMMIT statement fails (PostgreSQL's save() commits with one)."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            raise OSError("commit lost")
        return self.cursor.execute(sql, *args)


class Unrollbackable:
    """A DBAPI connection whose commit and rollback fail, as over a dropped link."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.invalidated = conn, False

    @property
    def driver_connection(self) -> Any:
        return self.conn.driver_connection

    def cursor(self) -> Any:
        return LosingCommit(self.conn.cursor())

    def commit(self) -> None:
        raise OSError("commit lost")

    def rollback(self) -> None:
        raise OSError("rollback lost")

    def invalidate(self) -> None:
        self.invalidated = True
        self.conn.invalidate()

    def close(self) -> None:
        self.conn.close()


def test_a_connection_that_cannot_roll_back_is_dropped(store, monkeypatch):
    real, broken = store.engine.raw_connection, []

    def raw_connection() -> Any:   # the first connection save() takes is broken
        if broken:
            return real()
        broken.append(Unrollbackable(real()))
        return broken[0]

    monkeypatch.setattr(store.engine, "raw_connection", raw_connection)
    with pytest.raises(OSError, match="commit lost"):
        store.save(Batch(new_tasks=[task("t1")]))
    assert broken[0].invalidated and store.get_task("t1") is None
    store.save(Batch(new_tasks=[task("t1")]))
    assert store.get_task("t1") is not None
    assert store.engine.pool.checkedout() == 1


def test_a_writer_the_server_dropped_fails_one_round_then_is_replaced(store):
    if store.inline_writes:
        pytest.skip("a server database's connection")
    store.save(Batch(new_tasks=[task("t1")]))
    writer = store._writer
    store.save(Batch(new_tasks=[task("t2")]))
    assert store._writer is writer   # kept between rounds: no check-out (and ping) per round
    pid = writer.driver_connection.info.backend_pid
    with store.engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.commit()
    with pytest.raises(store.engine.dialect.loaded_dbapi.OperationalError):
        store.save(Batch(new_tasks=[task("t3")]))
    assert store.get_task("t3") is None
    store.save(Batch(new_tasks=[task("t3")]))   # the dispatcher's retry
    assert store._writer is not writer and store.get_task("t3") is not None


def test_text_the_server_refuses_fails_its_round_alone(store):
    if store.inline_writes:
        pytest.skip("PostgreSQL refuses NUL in text; SQLite stores it")
    store.save(Batch(new_tasks=[task("t1")]))
    bad = task("t2")
    bad.task_name = "nul \x00 here"
    t1 = task("t1", stage="running")
    with pytest.raises(store.engine.dialect.loaded_dbapi.DataError):   # raised inside the pipeline
        store.save(Batch(new_tasks=[bad], tasks={"t1": t1}))
    assert store.get_task("t2") is None and store.get_task("t1")["stage"] == "pending"
    bad.task_name = "clean"   # what the dispatcher's quarantine does, then writes the round again
    store.save(Batch(new_tasks=[bad], tasks={"t1": t1}))
    assert store.get_task("t2")["task_name"] == "clean" and store.get_task("t1")["stage"] == "running"


def test_a_statement_the_server_refuses_leaves_nothing_of_its_round(store):
    """On PostgreSQL the round is one pipeline with one sync: the server skips the rest and
    the transaction is rolled back, and the same writer takes the next round."""
    store.save(Batch(new_tasks=[task("t1")]))
    writer = store._writer
    t1 = task("t1", stage="running")
    with pytest.raises(store.engine.dialect.loaded_dbapi.IntegrityError):   # t1 exists
        store.save(Batch(new_tasks=[task("t2"), task("t1")], tasks={"t1": t1}))
    assert store.get_task("t2") is None and store.get_task("t1")["stage"] == "pending"
    store.save(Batch(new_tasks=[task("t2")], tasks={"t1": t1}))
    assert store.get_task("t2") is not None and store.get_task("t1")["stage"] == "running"
    assert store._writer is writer


def test_pg_commits_wait_for_the_wal_flush_unless_told_not_to(store):
    if store.inline_writes:
        pytest.skip("a PostgreSQL setting")
    fast = Store(store.url, synchronous_commit=False)
    try:
        for each in (store, fast):
            each.save(Batch(new_tasks=[task(f"sync-{id(each)}")]))
            with closing(each._writer.cursor()) as cursor:
                cursor.execute("SHOW synchronous_commit")
                value = cursor.fetchone()[0]
            each._writer.rollback()
            assert value == ("on" if each is store else "off")
        assert fast.get_task(f"sync-{id(fast)}") is not None
    finally:
        fast.close()


def test_close_releases_the_sqlite_writer(tmp_path):
    store = Store(sqlite_url(str(tmp_path)))
    store.migrate()
    store.save(Batch(new_tasks=[task("t1")]))
    writer = store._writer.driver_connection
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):   # closed
        writer.execute("SELECT 1")


def test_safe_url_masks_password():
    assert "secret" not in safe_url("postgresql+psycopg://u:secret@h/db")
    assert safe_url("postgresql+psycopg://u:secret@h/db").startswith("postgresql+psycopg://u:***@h/db")


def test_sqlite_checkpoint_moves_the_wal_into_the_database(tmp_path):
    store = Store(sqlite_url(str(tmp_path)))
    store.migrate()
    assert store.inline_writes
    store.save(Batch(new_tasks=[task(f"t{i}") for i in range(50)]))
    wal = os.path.join(str(tmp_path), "litepipeline.db-wal")
    assert os.path.getsize(wal) > 0            # autocheckpoint is off: the WAL keeps the writes
    store.checkpoint()
    with store.engine.connect() as conn:
        busy, log, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    assert (busy, log) == (0, done)            # every WAL frame is in the database file now
    store.close()


def test_head_revision_read_from_the_files_is_alembics(store):
    """migrate() skips Alembic at start when the store is at this revision."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from litepipeline.manager.store.store import HERE, head_revision
    cfg = Config(os.path.join(HERE, "alembic.ini"))
    cfg.set_main_option("script_location", os.path.join(HERE, "migrations"))
    assert head_revision() == ScriptDirectory.from_config(cfg).get_current_head()
    assert store.at_head()
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    assert not store.at_head()


def test_write_params_skip_only_the_processors_that_keep_none(store):
    """What save() hands the driver for a row with None values equals SQLAlchemy's own
    conversion of every value (a JSON column's None is JSON null, a time's None stays NULL)."""
    row = task("t-none").to_row()
    row["input_data"] = None
    write = store._compile_writes()["insert_task"]
    params = write.params(row)
    processed = list(params) if write.positional else [params[name] for name in write.names]
    processors = {i: process for i, process, _ in write.processors}
    values = write.get(row)
    expected = [processors[i](v) if i in processors else v for i, v in enumerate(values)]
    assert [repr(v) for v in processed] == [repr(v) for v in expected]   # psycopg's Json has no ==
    names = [name.removeprefix("k_") for name in write.names]
    assert processed[names.index("input_data")] is not None   # JSON null, not SQL NULL
    assert processed[names.index("end_at")] is None


def test_manager_does_not_import_the_orm_nor_prometheus_client_before_a_scrape():
    """The store is Core tables and statements: ``sqlalchemy.orm`` would be ~6 MB of the idle
    manager's memory for nothing; prometheus_client (~1.5 MB) comes with the first scrape of
    /metrics (a fresh interpreter, so no other test has imported them)."""
    code = ("import litepipeline.manager.server, sys; "
            "print('sqlalchemy.orm' in sys.modules, 'prometheus_client' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False False"
