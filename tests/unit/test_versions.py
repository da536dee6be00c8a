"""Versions without a cluster: the store part and its migration, venv tarball rules, the
scheduler's pinning, the node's VenvCache and its RUN fields."""
from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import tarfile

import pytest
import tornado.web
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import insert, text
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from litepipeline.common.appspec import ActionSpec, inspect_tarball, is_venv_id
from litepipeline.common.envtar import inspect_env_tarball
from litepipeline.common.errors import InvalidApplication, InvalidParameters
from litepipeline.common.messages import Report, RunAction
from litepipeline.manager.scheduler import SchedulerCore
from litepipeline.manager.store import store as store_module
from litepipeline.manager.store.store import Store
from litepipeline.manager.store.versions_store import APPS, VENVS, VersionStore
from litepipeline.manager.taskstate import ActionState, TaskState
from litepipeline.manager.versions import parse_history_id
from litepipeline.node.appcache import VenvCache
from litepipeline.node.workspace import Trash
from tests.fixtures import make_app, member, raw_tar
from tests.unit.test_node_appcache import sha1, tarball
from tests.unit.test_store import store  # noqa: F401 - the SQLite/PostgreSQL fixture

VENV = "0d50caed-760b-40a5-bcc7-dcdb46960675"
T0 = dt.datetime(2026, 1, 1, 12, 0, 0)


def venv_bytes(members: dict | None = None, links: dict | None = None) -> bytes:
    return tarball(members if members is not None else {"bin/activate": "export X=1\n", "lib/x.py": ""},
                   raw_names=True, links=links)


# -- venv ids and tarball rules ----------------------------------------------------------


def test_venv_ids_are_uuids_and_need_no_tarball_in_the_application(tmp_path):
    assert is_venv_id(VENV) and not is_venv_id("venvs/venv") and not is_venv_id(None)
    assert not is_venv_id(VENV.upper()) and not is_venv_id(VENV + "/x")
    config = {"actions": [{"name": "a", "main": "python a.py", "env": VENV}]}
    info = inspect_tarball(make_app(str(tmp_path), config), 10 ** 8)
    assert info.spec.actions[0].env == VENV
    config["actions"][0]["env"] = "venvs/missing"
    with pytest.raises(InvalidApplication, match="env tarball 'venvs/missing.tar.gz' is not in the application"):
        inspect_tarball(make_app(str(tmp_path), config, name="b.tar.gz"), 10 ** 8)


@pytest.mark.parametrize("data, message", [
    (venv_bytes({"lib/x.py": "x"}), "has no bin/activate"),
    (venv_bytes({"bin/activate": "", "../evil": "x"}), "escapes the env directory"),
    (None, "lies below a symlink"),
    (venv_bytes({"bin/activate": "x" * 2000}), "unpacks to more than 1000 bytes"),
    (b"not a tarball", "not a valid gzip tar archive"),
])
def test_venv_upload_rules(tmp_path, data, message):
    path = tmp_path / "venv.tar.gz"
    if data is None:   # a link, then a member written through it
        raw_tar(str(path), [(member("bin/activate"), b""), (member("lib", tarfile.SYMTYPE, "/etc"), None),
                            (member("lib/passwd"), b"x")])
    else:
        path.write_bytes(data)
    with pytest.raises(InvalidApplication, match=message):
        inspect_env_tarball(str(path), 1000)


def test_a_venv_pack_shaped_tarball_passes(tmp_path):
    path = tmp_path / "venv.tar.gz"
    path.write_bytes(venv_bytes(links={"bin/python": "/usr/bin/python3"}))   # venv-pack's absolute link
    assert inspect_env_tarball(str(path), 10 ** 6) == len("export X=1\n")


def test_history_ids_from_query_strings_and_bodies():
    assert parse_history_id("12") == parse_history_id(12) == 12
    for bad in ("0", "-1", "x", True, 1.5, None, 2 ** 63):
        with pytest.raises(InvalidParameters):
            parse_history_id(bad)


# -- the store ------------------------------------------------------------------------------


def alembic_config(store: Store) -> AlembicConfig:  # noqa: F811
    cfg = AlembicConfig(os.path.join(os.path.dirname(store_module.__file__), "alembic.ini"))
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(store_module.__file__), "migrations"))
    return cfg


def test_migration_gives_each_existing_application_one_history_row(tmp_path):
    store = Store("sqlite:///" + str(tmp_path / "old.db"))  # noqa: F811
    cfg = alembic_config(store)
    with store.engine.begin() as conn:   # a store made by the previous release
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        for i, sha in enumerate(("a" * 40, "b" * 40)):
            conn.execute(text("INSERT INTO applications (application_id, name, description, sha1, create_at, "
                              "update_at) VALUES (:i, :n, 'd', :s, :t, :t)"),
                         {"i": f"app-{i}", "n": f"n{i}", "s": sha, "t": T0})
    store.migrate()
    versions = VersionStore(store.engine)
    for i, sha in enumerate(("a" * 40, "b" * 40)):
        rows, total = versions.histories(APPS, f"app-{i}", 0, 0)
        assert total == 1 and rows[0]["sha1"] == sha and rows[0]["description"] == "d"
    with store.engine.connect() as conn:   # actions can now carry a pinned venv version
        assert "env_sha1" in [c[1] for c in conn.execute(text("PRAGMA table_info(actions)"))]
    store.close()


def test_version_store_keeps_one_row_per_sha1(store):  # noqa: F811
    """On SQLite and PostgreSQL (test_store's fixture: a fresh database, migrated)."""
    versions = VersionStore(store.engine)
    row = {"venv_id": VENV, "name": "v", "description": "first", "sha1": "a" * 40, "create_at": T0, "update_at": T0}
    first = versions.create(VENVS, row)
    second = versions.update(VENVS, VENV, {"sha1": "b" * 40, "update_at": T0})
    again = versions.update(VENVS, VENV, {"sha1": "a" * 40, "update_at": T0})   # the same bytes: same entry
    assert again == first and second > first
    assert versions.update(VENVS, VENV, {"name": "w", "update_at": T0}) is None
    rows, total = versions.histories(VENVS, VENV, 0, 0)
    assert total == 2 and [r["sha1"] for r in rows] == ["b" * 40, "a" * 40]
    assert rows[0]["description"] == "first"
    assert versions.get(VENVS, VENV)["sha1"] == "a" * 40
    assert versions.history(VENVS, VENV, second)["sha1"] == "b" * 40
    assert versions.history(VENVS, "another", second) is None   # another owner's history id
    assert versions.sha1s(VENVS, VENV) == {"a" * 40, "b" * 40}

    # a task with an action pinned to the venv's version "b"
    task = TaskState("t1", "t", "app", "c" * 40, {}, "running", T0, T0)
    action = ActionState("t1", "x", "run", env=VENV, env_sha1="b" * 40)
    with store.engine.begin() as conn:
        conn.execute(insert(store_module.TASKS).values(task.to_row()))
        conn.execute(insert(store_module.ACTIONS).values(action.to_row()))
    assert versions.unfinished_venv_tasks(VENV) == 1
    assert versions.unfinished_venv_tasks(VENV, "b" * 40) == 1
    assert versions.unfinished_venv_tasks(VENV, "a" * 40) == 0
    assert versions.unfinished_app_tasks("app", "c" * 40) == 1
    versions.delete(VENVS, VENV)
    assert versions.get(VENVS, VENV) is None and versions.histories(VENVS, VENV, 0, 0)[1] == 0


# -- pinning in the scheduler ---------------------------------------------------------------


def running_task(core: SchedulerCore, env_sha1: str | None) -> TaskState:
    task = TaskState("t1", "t", "app", "c" * 40, {}, "pending", T0, T0)
    task.actions["gen"] = ActionState("t1", "gen", "python gen.py", env=VENV, env_sha1=env_sha1)
    core.add_task(task)
    core.node_up("n1", [], True, slots=4)
    return task


def generate(core: SchedulerCore, task: TaskState, actions: list) -> dict:
    (dispatch,) = core.schedule()
    assert dispatch.message.venv_sha1 == task.actions["gen"].env_sha1
    core.report(Report.parse({"task_id": "t1", "name": "gen", "attempt_id": dispatch.message.attempt_id,
                              "node_id": "n1", "stage": "finished", "status": "success", "returncode": 0,
                              "result": {"data": {}, "actions": actions}}))
    return {d.message.name: d.message.to_dict() for d in core.schedule()}


def test_generated_actions_naming_a_venv_are_pinned():
    core = SchedulerCore(clock_fn=lambda: T0)
    core.venv_sha1 = {VENV: "d" * 40, "1d50caed-760b-40a5-bcc7-dcdb46960675": "e" * 40}.get
    task = running_task(core, "b" * 40)
    other = "1d50caed-760b-40a5-bcc7-dcdb46960675"
    sent = generate(core, task, [ActionSpec("same", "run", env=VENV).to_dict(),
                                 ActionSpec("other", "run", env=other).to_dict(),
                                 ActionSpec("plain", "run", env="venvs/venv").to_dict()])
    # the venv the task pinned keeps its version; another venv is pinned to its active one
    assert (sent["same"]["venv_id"], sent["same"]["venv_sha1"]) == (VENV, "b" * 40)
    assert (sent["other"]["venv_id"], sent["other"]["venv_sha1"]) == (other, "e" * 40)
    assert "venv_id" not in sent["plain"]
    assert task.actions["other"].env_sha1 == "e" * 40


def test_a_generated_action_naming_a_missing_venv_fails_its_parent():
    core = SchedulerCore(clock_fn=lambda: T0)
    task = running_task(core, None)
    task.actions["gen"].env = "venvs/venv"
    generate(core, task, [ActionSpec("x", "run", env=VENV).to_dict()])
    assert task.actions["gen"].status == "fail"
    assert f"env names venv {VENV}, which does not exist" in task.actions["gen"].message


# -- the node -------------------------------------------------------------------------------


def test_run_message_venv_fields():
    base = {"name": "a", "main": "run", "task_id": "t", "app_id": "app", "app_sha1": "a" * 40, "attempt_id": "x",
            "env": VENV}
    req = RunAction.parse(dict(base, venv_id=VENV, venv_sha1="B" * 40))
    assert (req.venv_id, req.venv_sha1) == (VENV, "b" * 40)
    assert RunAction.parse(base).venv_sha1 is None   # from a manager that pins no venv
    assert "venv_id" not in RunAction.parse(base).to_dict()   # an older node sees the RUN it knows
    with pytest.raises(InvalidParameters, match="venv_sha1"):
        RunAction.parse(dict(base, venv_id=VENV, venv_sha1="x"))
    with pytest.raises(InvalidParameters, match="venv_id"):
        RunAction.parse(dict(base, venv_id="../x", venv_sha1="b" * 40))


class VenvDownload(tornado.web.RequestHandler):
    def initialize(self, venvs: dict, counts: dict) -> None:
        self.venvs, self.counts = venvs, counts

    async def get(self) -> None:
        key = (self.get_query_argument("venv_id"), self.get_query_argument("sha1"))
        self.counts[key] = self.counts.get(key, 0) + 1
        await asyncio.sleep(0.1)   # long enough for concurrent ensure() calls to overlap
        self.finish(self.venvs[key])


def test_venv_cache_one_download_references_and_retention(tmp_path):
    one, two = venv_bytes(), venv_bytes({"bin/activate": "export X=2\n"})

    async def run() -> None:
        counts: dict = {}
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(tornado.web.Application([(r"/venv/download", VenvDownload, {
            "venvs": {(VENV, sha1(one)): one, (VENV, sha1(two)): two}, "counts": counts})]))
        server.add_sockets(sockets)
        trash = Trash(str(tmp_path / "trash"))
        cache = VenvCache(str(tmp_path / "venvs"), f"http://127.0.0.1:{sockets[0].getsockname()[1]}/venv/download",
                          None, 10 ** 6, trash)
        cache.start()
        try:
            dirs = await asyncio.gather(*[cache.ensure(VENV, sha1(one)) for _ in range(4)])
            assert set(dirs) == {str(tmp_path / "venvs" / VENV / sha1(one) / "venv")}
            assert counts == {(VENV, sha1(one)): 1} and cache.downloads == 1
            with open(os.path.join(dirs[0], "bin", "activate")) as fp:
                assert fp.read() == "export X=1\n"
            newer = await cache.ensure(VENV, sha1(two))
            cache.sweep()   # four actions still use the old copy: it stays
            assert os.path.isdir(dirs[0])
            for _ in range(4):
                cache.release(VENV, sha1(one))
            cache.sweep()   # unused and not the newest: removed, as an application's old copy is
            await trash.wait()
            assert not os.path.exists(os.path.dirname(dirs[0])) and os.path.isdir(newer)
            cache.release(VENV, sha1(two))
        finally:
            await cache.close()
            server.stop()
            await trash.wait()

    asyncio.run(run())


def test_extracted_env_members_follow_the_rules(tmp_path):
    from litepipeline.node.appcache import AppCacheError, extract_env

    path = tmp_path / "v.tar.gz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("dev")
        info.type = tarfile.CHRTYPE
        tar.addfile(info)
    path.write_bytes(buf.getvalue())
    with pytest.raises(AppCacheError, match="has an unsupported type"):
        extract_env(str(path), str(tmp_path / "out"), 10 ** 6)
