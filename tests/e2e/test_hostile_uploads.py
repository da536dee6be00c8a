"""Hostile application uploads through a real ``litemanager``: refused with the exact envelope,
and nothing changes — no row, no file kept, nothing written outside, the manager still serving.
"""
from __future__ import annotations

import hashlib
import os

import pytest
import requests

from litepipeline.client.api import ClientError, ManagerClient, Reply
from tests.e2e.harness import LiteCluster, wait_for
from tests.e2e.test_manager_api import app_files, db_rows
from tests.fixtures import make_app
from tests.unit.test_appspec import HOSTILE, build_hostile, gzip_bomb

UNPACK_LIMIT = 1_000_000
OUTSIDE_TARGETS = ("evil.txt", "chain-evil.txt")
ABS_TARGET = "/tmp/litepipeline-abs-evil.txt"


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    """One manager for the module, with a small unpacked-size limit so a bomb is cheap to make."""
    root = tmp_path_factory.mktemp("hostile")
    with LiteCluster(str(root), max_unpacked_size=UNPACK_LIMIT) as cluster:
        cluster.start_manager()
        yield cluster


@pytest.fixture(scope="module")
def tarballs(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tarballs"))


def _sha1(path: str) -> str:
    with open(path, "rb") as fp:
        return hashlib.sha1(fp.read()).hexdigest()


def snapshot(cluster: LiteCluster) -> tuple:
    """Every application row and every stored file (with its SHA-1) of the manager."""
    rows = db_rows(cluster, "select application_id, name, description, sha1, create_at, update_at "
                            "from applications order by id")
    files = sorted((path, _sha1(path)) for path in app_files(cluster))
    return rows, files


def _walk_names(root: str) -> set:
    names = set()
    for _base, dirs, files in os.walk(root):
        names.update(dirs)
        names.update(files)
    return names


def _tmp_empty(cluster: LiteCluster) -> None:
    # A rejected upload's temporary file may be removed by the handler's on_finish, which
    # runs just after the response is written: allow a moment, but it must go.
    tmp = os.path.join(cluster.manager.config["data_path"], "tmp")
    wait_for(lambda: os.listdir(tmp) == [], timeout=5, what=f"{tmp} to be empty")


def _serving(cluster: LiteCluster) -> None:
    # a fresh connection: the manager may have closed the pooled one after refusing a body
    with ManagerClient(cluster.address) as client:
        assert client.service_info() == {"message": "LitePipeline manager service", "role": "single", "leader": None}
    assert cluster.manager.alive()


def assert_untouched(cluster: LiteCluster, before: tuple, name: str) -> None:
    _tmp_empty(cluster)
    assert snapshot(cluster) == before
    assert db_rows(cluster, f"select count(*) from applications where name = '{name}'") == [(0,)]
    # nothing a hostile member aimed at exists anywhere around the manager
    assert not _walk_names(cluster.root) & set(OUTSIDE_TARGETS)
    assert not set(os.listdir(os.path.dirname(cluster.root))) & set(OUTSIDE_TARGETS)
    assert not os.path.exists(ABS_TARGET)
    assert not os.path.exists(os.path.join(cluster.manager.config["data_path"], "etc"))
    _serving(cluster)


def expect_refusal(reply, message: str) -> None:
    assert (reply.http_status, dict(reply)) == (400, {"result": "InvalidParameters", "message": message})


# an empty upload never reaches the tarball rules
UPLOAD_MESSAGES = {"empty_file": "field 'up_file' is empty"}
BOMB = "tarball unpacks to more than the limit of 1000000 bytes"


def _build(tarballs: str, kind: str) -> tuple[str, str]:
    if kind == "gzip_bomb":
        return gzip_bomb(os.path.join(tarballs, "bomb.tar.gz")), BOMB
    if kind == "over_limit_members":
        path = make_app(tarballs, files={f"part{i}.bin": os.urandom(300_000) for i in range(4)},
                        name="over_limit.tar.gz")
        return path, BOMB
    path, message = build_hostile(tarballs, kind)
    return path, UPLOAD_MESSAGES.get(kind, message)


KINDS = sorted(HOSTILE) + ["gzip_bomb", "over_limit_members"]


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_create_refused(manager, tarballs, kind):
    path, message = _build(tarballs, kind)
    before = snapshot(manager)
    if kind == "empty_file":
        reply = _post_raw(manager, path, f"hostile-{kind}")  # ManagerClient cannot send 0 bytes (see below)
    else:
        reply = manager.api.app_create(path, f"hostile-{kind}", "should never be stored")
    expect_refusal(reply, message)
    assert_untouched(manager, before, f"hostile-{kind}")


def _post_raw(cluster: LiteCluster, path: str, name: str) -> Reply:
    with open(path, "rb") as fp:
        response = requests.post(f"http://{cluster.address}/app/create", data={"name": name},
                                 files={"up_file": (os.path.basename(path), fp)}, timeout=30)
    return Reply(response.json(), response.status_code)


def test_client_uploads_empty_file_and_gets_envelope(manager, tarballs):
    path, _ = build_hostile(tarballs, "empty_file")
    before = snapshot(manager)
    reply = manager.api.app_create(path, "hostile-empty-client")
    expect_refusal(reply, "field 'up_file' is empty")
    assert_untouched(manager, before, "hostile-empty-client")


def test_valid_upload_still_works_after_hostile_ones(manager, tarballs):
    path = make_app(tarballs, name="valid.tar.gz")
    reply = manager.api.app_create(path, "valid-after", "ok")
    assert reply.http_status == 200 and reply["result"] == "ok"
    info = manager.api.app_info(reply["app_id"])["app_info"]
    assert info["sha1"] == _sha1(path)
    assert manager.api.app_delete(reply["app_id"])["result"] == "ok"


@pytest.mark.parametrize("kind", ["dotdot_member", "absolute_member", "symlink_relative_escape",
                                  "hardlink_other_top", "char_device", "fifo", "two_top_dirs", "plain_tar",
                                  "config_cycle", "config_name_slash", "env_missing", "gzip_bomb"])
def test_hostile_update_refused(manager, tarballs, kind):
    good = make_app(tarballs, name=f"good-{kind}.tar.gz")
    app_id = manager.upload(good, f"update-target-{kind}")
    row = db_rows(manager, f"select sha1, update_at, name, description from applications "
                           f"where application_id = '{app_id}'")
    stored = os.path.join(manager.manager.config["data_path"], "applications", app_id, f"{_sha1(good)}.tar.gz")
    assert os.path.isfile(stored)
    before = snapshot(manager)
    path, message = _build(tarballs, kind)

    reply = manager.api.app_update(app_id, path, name=f"hostile-{kind}", description="changed")
    expect_refusal(reply, message)

    assert db_rows(manager, f"select sha1, update_at, name, description from applications "
                            f"where application_id = '{app_id}'") == row
    assert _sha1(stored) == _sha1(good)
    assert sorted(os.listdir(os.path.dirname(stored))) == [os.path.basename(stored)]
    assert_untouched(manager, before, f"hostile-{kind}")
    info = manager.api.app_info(app_id)["app_info"]
    assert (info["sha1"], info["name"]) == (_sha1(good), f"update-target-{kind}")
    assert manager.api.app_delete(app_id)["result"] == "ok"


# -- uploads larger than max_buffer_size --------------------------------------------------

@pytest.fixture(scope="module")
def small_buffer(tmp_path_factory):
    root = tmp_path_factory.mktemp("small-buffer")
    with LiteCluster(str(root), max_buffer_size=100_000) as cluster:
        cluster.start_manager()
        yield cluster


def _fresh_create(cluster: LiteCluster, path: str, name: str) -> Reply:
    """Upload on a new connection (a refused body may leave the pooled one closed by the manager)."""
    with ManagerClient(cluster.address) as client:
        return client.app_create(path, name)


def _empty(cluster: LiteCluster) -> None:
    _tmp_empty(cluster)
    assert db_rows(cluster, "select count(*) from applications") == [(0,)]
    assert app_files(cluster) == []
    _serving(cluster)


def test_upload_far_over_max_buffer_size(small_buffer, tmp_path):
    path = str(tmp_path / "big.tar.gz")
    with open(path, "wb") as fp:
        fp.write(os.urandom(300_000))
    try:
        reply = _fresh_create(small_buffer, path, "too big")
    except ClientError as exc:
        # the manager may answer (and close) before the client finished sending the body
        assert "connection" in str(exc), exc
    else:
        assert reply.http_status == 413
        assert reply["result"] == "PayloadTooLarge"
        assert reply["message"].startswith("upload of ") and "max_buffer_size (100000 bytes)" in reply["message"]
    _empty(small_buffer)


def test_upload_within_max_buffer_size_is_inspected(small_buffer, tmp_path):
    path = str(tmp_path / "junk.tar.gz")
    with open(path, "wb") as fp:
        fp.write(os.urandom(90_000))
    reply = _fresh_create(small_buffer, path, "junk")
    expect_refusal(reply, "application file is not a gzip tar archive: not a gzip file")
    _empty(small_buffer)


def test_valid_upload_just_under_max_buffer_size_accepted(small_buffer, tmp_path):
    path = make_app(str(tmp_path), files={"blob.bin": os.urandom(90_000)})
    assert 90_000 < os.path.getsize(path) < 100_000
    with ManagerClient(small_buffer.address) as client:
        reply = client.app_create(path, "fits")
        assert (reply.http_status, reply["result"]) == (200, "ok")
        assert client.app_info(reply["app_id"])["app_info"]["sha1"] == _sha1(path)
        assert client.app_delete(reply["app_id"])["result"] == "ok"
    _empty(small_buffer)


@pytest.mark.parametrize("size", [100_001, 150_000])
def test_upload_slightly_over_max_buffer_size_gets_413_envelope(small_buffer, tmp_path, size):
    path = str(tmp_path / "slightly.tar.gz")
    with open(path, "wb") as fp:
        fp.write(os.urandom(size))
    try:
        reply = _fresh_create(small_buffer, path, "slightly too big")
    finally:
        _empty(small_buffer)
    assert reply.http_status == 413
    assert dict(reply) == {"result": "PayloadTooLarge",
                           "message": "application file is larger than max_buffer_size (100000 bytes)"}
    assert "Uncaught exception" not in small_buffer.manager.output()
