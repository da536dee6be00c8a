"""Two managers on one PostgreSQL database, each with its own data_path: what the first
stored, the second serves (application and venv tarballs come from the database)."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, func, select

from litepipeline.manager.store.blobs import BLOBS
from tests.e2e.harness import LiteCluster, free_port
from tests.e2e.test_versions import fake_venv, outputs, sha1_of, versioned_app
from tests.pgdb import temporary_database

@pytest.fixture
def pg_database():
    with temporary_database("lp_blobs") as url:
        yield url


def blob_sha1s(url: str) -> set:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(select(BLOBS.c.sha1).group_by(BLOBS.c.sha1).having(func.count() > 0)).scalars())
    finally:
        engine.dispose()


def test_second_manager_serves_what_the_first_stored(pg_database, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    venv = fake_venv(str(files), "shared")
    with LiteCluster(str(tmp_path / "a"), database_url=pg_database) as first:
        first.start_manager()
        created = first.api.venv_create(venv, "venv")
        assert created.ok, created
        venv_id = created["venv_id"]
        app = versioned_app(str(files), 1, env=venv_id)
        app_id = first.upload(app)
    assert not first.manager.alive()
    assert blob_sha1s(pg_database) == {sha1_of(app), sha1_of(venv)}

    with LiteCluster(str(tmp_path / "b"), database_url=pg_database) as second:
        second.start_manager()
        data_path = second.manager.config["data_path"]
        assert not os.path.exists(os.path.join(data_path, "applications", app_id))

        second.address = f"127.0.0.1:{free_port()},{second.address}"   # the CLI passes over a dead manager
        done = second.cli("app", "download", "-a", app_id, check=True)
        assert app_id in done.stdout
        assert sha1_of(os.path.join(second.root, f"{app_id}.tar.gz")) == sha1_of(app)
        cached = os.path.join(data_path, "applications", app_id, f"{sha1_of(app)}.tar.gz")
        assert sha1_of(cached) == sha1_of(app)   # now in this manager's cache too

        second.add_node(slots=1)
        info = second.run_task(app_id)
        assert info["task_info"]["status"] == "success", info
        assert outputs(info) == {"a": {"version": 1, "venv": "shared"}}   # the venv came from the database
        assert os.path.isfile(os.path.join(data_path, "venvs", venv_id, f"{sha1_of(venv)}.tar.gz"))

        assert second.api.app_delete(app_id).ok
        assert second.api.venv_delete(venv_id).ok
        assert blob_sha1s(pg_database) == set()
