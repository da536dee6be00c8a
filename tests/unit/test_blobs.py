"""Tarballs kept in PostgreSQL (``blobs``): written with a version row, fetched into a
cache atomically and checked, deleted with the last version naming them. Each test gets
a database of its own (skipped, with the reason, where no server answers)."""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import threading

import pytest
from sqlalchemy import func, select, update

from litepipeline.common.errors import OperationFailed
from litepipeline.manager.appstore import AppStore
from litepipeline.manager.dbthread import DbThread
from litepipeline.manager.store import blobs as blobs_module
from litepipeline.manager.store.blobs import BLOBS, BlobMismatch
from litepipeline.manager.store.store import Store, sqlite_url
from litepipeline.manager.store.versions_store import APPS, VENVS, VersionStore
from litepipeline.manager.versions import Versions
from tests.pgdb import migrated_store

NOW = dt.datetime(2026, 1, 2, 3, 4, 5)


@pytest.fixture
def pg_store():
    with migrated_store("lp_blobs") as (_url, store):
        yield store


def tarball(tmp_path, name: str, size: int) -> tuple[str, str]:
    path = tmp_path / name
    data = os.urandom(size)
    path.write_bytes(data)
    return str(path), hashlib.sha1(data).hexdigest()


def owner(kind, owner_id: str, sha1: str) -> dict:
    return {kind.id_column: owner_id, "name": owner_id, "description": "", "sha1": sha1, "create_at": NOW,
            "update_at": NOW}


def chunks(store: Store, sha1: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(BLOBS).where(BLOBS.c.sha1 == sha1)).scalar_one()


def test_sqlite_keeps_no_blobs(tmp_path):
    store = Store(sqlite_url(str(tmp_path)))
    try:
        store.migrate()
        assert VersionStore(store.engine).blobs is None
    finally:
        store.close()


def test_version_row_and_blob_round_trip(pg_store, tmp_path, monkeypatch):
    monkeypatch.setattr(blobs_module, "CHUNK", 1000)
    versions = VersionStore(pg_store.engine)
    path, sha1 = tarball(tmp_path, "app.tar.gz", 2500)
    versions.create(APPS, owner(APPS, "app-1", sha1), path)
    assert chunks(pg_store, sha1) == 3
    cache = tmp_path / "cache"
    cache.mkdir()
    dest = str(cache / "app-1" / f"{sha1}.tar.gz")
    assert versions.blobs.fetch(sha1, dest, str(cache))
    with open(dest, "rb") as fp, open(path, "rb") as original:
        assert fp.read() == original.read()
    assert sorted(os.listdir(cache)) == ["app-1"]   # no temporary file left
    assert not versions.blobs.fetch("0" * 40, str(cache / "x.tar.gz"), str(cache))
    assert sorted(os.listdir(cache)) == ["app-1"]
    # an empty file and files of whole chunks
    for index, size in enumerate((0, 1000, 2000)):
        path, sha1 = tarball(tmp_path, f"f{index}", size)
        versions.create(VENVS, owner(VENVS, f"venv-{index}", sha1), path)
        assert chunks(pg_store, sha1) == max(1, size // 1000)
        dest = str(tmp_path / f"out{index}")
        assert versions.blobs.fetch(sha1, dest, str(tmp_path))
        assert os.path.getsize(dest) == size


def test_corrupt_blob_is_refused_and_a_failed_write_leaves_none(pg_store, tmp_path):
    versions = VersionStore(pg_store.engine)
    path, sha1 = tarball(tmp_path, "app.tar.gz", 100)
    versions.create(APPS, owner(APPS, "app-1", sha1), path)
    with pg_store.engine.begin() as conn:
        conn.execute(update(BLOBS).values(data=b"not the bytes"))
    cache = tmp_path / "cache"
    cache.mkdir()
    with pytest.raises(BlobMismatch):
        versions.blobs.fetch(sha1, str(cache / "a.tar.gz"), str(cache))
    assert os.listdir(cache) == []
    # a version write that fails leaves no blob
    other, other_sha1 = tarball(tmp_path, "other.tar.gz", 100)
    with pytest.raises(Exception):   # noqa: B017,PT011 - the same application id again: the insert fails
        versions.create(APPS, {**owner(APPS, "app-1", other_sha1), "id": 1}, other)
    assert chunks(pg_store, other_sha1) == 0


def test_blob_goes_with_the_last_version_naming_it(pg_store, tmp_path):
    versions = VersionStore(pg_store.engine)
    shared, shared_sha1 = tarball(tmp_path, "shared.tar.gz", 100)
    own, own_sha1 = tarball(tmp_path, "own.tar.gz", 100)
    versions.create(APPS, owner(APPS, "app-1", shared_sha1), shared)
    versions.create(APPS, owner(APPS, "app-2", shared_sha1), shared)   # the same bytes: one blob
    versions.update(APPS, "app-1", {"sha1": own_sha1, "update_at": NOW}, own)
    assert chunks(pg_store, shared_sha1) == 1 and chunks(pg_store, own_sha1) == 1
    first = versions.histories(APPS, "app-1", 0, 0)[0][-1]
    assert first["sha1"] == shared_sha1
    versions.delete_history(APPS, first["id"])
    assert chunks(pg_store, shared_sha1) == 1   # app-2 still names it
    versions.delete(APPS, "app-2")
    assert chunks(pg_store, shared_sha1) == 0
    versions.delete(APPS, "app-1")
    assert chunks(pg_store, own_sha1) == 0


def test_backfill_stores_older_tarballs(pg_store, tmp_path):
    versions = VersionStore(pg_store.engine)
    path, sha1 = tarball(tmp_path, "old.tar.gz", 100)
    versions.create(APPS, owner(APPS, "app-1", sha1))   # as before blobs: no tarball given
    assert versions.blobs.missing(versions.all_sha1s()) == {sha1}
    assert versions.versions_of({sha1}) == [("application_id", "app-1", sha1)]
    assert versions.blobs.backfill([(sha1, path)]) == 1
    assert versions.blobs.backfill([(sha1, path)]) == 0
    assert versions.blobs.missing(versions.all_sha1s()) == set()


def test_manager_start_backfills_from_its_data_path(pg_store, tmp_path):
    """Versions.start stores the tarballs of versions recorded before blobs were kept,
    from this manager's data_path (those it does not hold stay missing)."""
    data_path = tmp_path / "data"
    apps = AppStore(str(data_path), 1 << 20)
    held, held_sha1 = tarball(tmp_path, "held.tar.gz", 300)
    _, gone_sha1 = tarball(tmp_path, "gone.tar.gz", 300)
    store = VersionStore(pg_store.engine)
    store.create(APPS, owner(APPS, "app-1", held_sha1))
    store.create(VENVS, owner(VENVS, "venv-1", gone_sha1))
    os.makedirs(os.path.dirname(apps.path("app-1", held_sha1)))
    os.replace(held, apps.path("app-1", held_sha1))
    db = DbThread()

    async def run() -> None:
        versions = Versions(pg_store.engine, db, apps, str(data_path), 1 << 20, lambda app_id: None)
        await versions.start()
        await versions._backfill

    try:
        asyncio.run(run())
    finally:
        db.shutdown()
    assert chunks(pg_store, held_sha1) == 1
    assert store.blobs.missing({held_sha1, gone_sha1}) == {gone_sha1}


# -- the cache side (no database: a fake fetcher) -------------------------------------------


def test_cache_fetches_a_missing_version_once(tmp_path):
    apps = AppStore(str(tmp_path), 1 << 20)
    calls = []
    release = threading.Event()

    def fetch(sha1: str, dest: str, tmp_dir: str) -> bool:
        calls.append(sha1)
        release.wait(5)
        if sha1 == "b" * 40:
            raise BlobMismatch("corrupt")
        if sha1 != "a" * 40:
            return False
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as fp:
            fp.write(b"bytes")
        return True

    async def run() -> None:
        assert not await apps.ensure("app-1", "a" * 40)   # no fetcher: data_path is all there is
        apps.fetcher = fetch
        waiters = [asyncio.ensure_future(apps.ensure("app-1", "a" * 40)) for _ in range(3)]
        await asyncio.sleep(0.05)
        release.set()
        assert await asyncio.gather(*waiters) == [True, True, True]
        assert calls == ["a" * 40]                         # one fetch for the three
        assert await apps.ensure("app-1", "a" * 40)        # now a cache hit
        assert calls == ["a" * 40]
        assert not await apps.ensure("app-1", "c" * 40)   # in neither place
        with pytest.raises(OperationFailed, match="cannot fetch version b+ of app-1 from the database"):
            await apps.ensure("app-1", "b" * 40)

    asyncio.run(run())
    with open(apps.path("app-1", "a" * 40), "rb") as fp:
        assert fp.read() == b"bytes"
