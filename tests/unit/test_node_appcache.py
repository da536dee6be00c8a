"""Unit tests of the node's application cache against a tiny in-process HTTP server."""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from litepipeline.node.appcache import AppCache, AppCacheError, extract_env
from litepipeline.node.launcher import build_script
from litepipeline.node.workspace import Trash


def tarball(files: dict, top: str = "app", links: dict | None = None, raw_names: bool = False) -> bytes:
    """A gzip tar of ``files`` (name → text) under ``top/`` (or as given when raw_names)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        if not raw_names:
            info = tarfile.TarInfo(top)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, content in files.items():
            data = content if isinstance(content, bytes) else content.encode()
            info = tarfile.TarInfo(name if raw_names else f"{top}/{name}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name if raw_names else f"{top}/{name}")
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


CONFIG = json.dumps({"actions": [{"name": "a", "condition": [], "main": "true"}]})


class Download(tornado.web.RequestHandler):
    def initialize(self, apps: dict, counts: dict) -> None:
        self.apps = apps
        self.counts = counts

    async def get(self) -> None:
        app_id = self.get_query_argument("app_id")
        self.counts[app_id] = self.counts.get(app_id, 0) + 1
        await asyncio.sleep(0.1)  # long enough for concurrent ensure() calls to overlap
        if app_id not in self.apps:
            self.set_status(404)
            self.finish({"result": "AppNotExists", "message": f"application {app_id} not found"})
            return
        self.finish(self.apps[app_id])


class Harness:
    def __init__(self, tmp_path, apps: dict) -> None:
        self.tmp_path = tmp_path
        self.apps = apps
        self.counts: dict = {}

    async def __aenter__(self) -> Harness:  # noqa: PYI034 (typing.Self needs 3.11)
        sockets = bind_sockets(0, "127.0.0.1")
        port = sockets[0].getsockname()[1]
        self.server = HTTPServer(tornado.web.Application(
            [(r"/app/download", Download, {"apps": self.apps, "counts": self.counts})]))
        self.server.add_sockets(sockets)
        self.root = str(self.tmp_path / "apps")
        self.trash = Trash(str(self.tmp_path / "trash"))
        self.cache = AppCache(self.root, f"http://127.0.0.1:{port}/app/download", None, 10 ** 8, self.trash)
        self.cache.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.cache.close()
        self.server.stop()
        await self.trash.wait()


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def test_concurrent_ensure_downloads_once(tmp_path):
    app = tarball({"configuration.json": CONFIG, "run.sh": "echo hi"})

    async def run() -> None:
        async with Harness(tmp_path, {"app1": app}) as h:
            tops = await asyncio.gather(h.cache.ensure("app1", sha1(app)), h.cache.ensure("app1", sha1(app)))
            assert tops[0] == tops[1] == os.path.join(h.root, "app1", sha1(app), "app")
            assert h.counts == {"app1": 1} and h.cache.downloads == 1
            with open(os.path.join(tops[0], "run.sh")) as fp:
                assert fp.read() == "echo hi"
            assert h.cache.hits == 0   # the second waited for the download: not a hit
            # a later action finds it cached
            assert await h.cache.ensure("app1", sha1(app)) == tops[0]
            assert h.counts == {"app1": 1} and h.cache.hits == 1
            assert h.cache.acquire_ready("app1", sha1(app)) == tops[0] and h.cache.hits == 2
            assert h.cache.acquire_ready("app1", "0" * 40) is None and h.cache.hits == 2
            assert sorted(os.listdir(os.path.join(h.root, "app1"))) == [sha1(app)]

    asyncio.run(run())


class CountingFlights(dict):
    """The cache's in-flight table, failing loudly where the ensure loop would spin forever."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, key, default=None):  # noqa: ANN001
        self.gets += 1
        if self.gets > 1000:
            raise AssertionError("ensure() keeps finding the same finished download")
        return super().get(key, default)


def test_ensure_right_after_a_download_finished_does_not_spin(tmp_path):
    """An action asking for a copy in the loop turn its download finishes (the flight is done,
    its clean-up callback not yet run) gets the copy; awaiting a done future never yields."""
    app = tarball({"configuration.json": CONFIG, "run.sh": "echo hi"})

    async def run() -> None:
        async with Harness(tmp_path, {"app1": app}) as h:
            h.cache._flights = CountingFlights()
            top = await h.cache.ensure("app1", sha1(app))
            h.cache.release("app1", sha1(app))
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            h.cache._flights[("app1", sha1(app))] = done   # finished, not yet cleaned up
            assert await h.cache.ensure("app1", sha1(app)) == top
            assert h.counts == {"app1": 1}

    asyncio.run(run())


def test_sha1_mismatch_fails_and_leaves_nothing(tmp_path):
    app = tarball({"configuration.json": CONFIG})
    wanted = "0" * 40

    async def run() -> None:
        async with Harness(tmp_path, {"app1": app}) as h:
            with pytest.raises(AppCacheError) as info:
                await h.cache.ensure("app1", wanted)
            assert str(info.value) == f"application sha1 mismatch: expected {wanted}, got {sha1(app)}"
            assert os.listdir(h.root) == []

    asyncio.run(run())


def test_missing_app_reports_the_managers_message(tmp_path):
    async def run() -> None:
        async with Harness(tmp_path, {}) as h:
            with pytest.raises(AppCacheError) as info:
                await h.cache.ensure("nope", "0" * 40)
            assert "HTTP 404 AppNotExists: application nope not found" in str(info.value)
            assert h.counts == {"nope": 1}  # a 4xx is not retried

    asyncio.run(run())


@pytest.mark.parametrize("hostile", [
    tarball({"app/configuration.json": CONFIG, "app/../../evil.txt": "x"}, raw_names=True),
    tarball({"configuration.json": CONFIG}, links={"etc": "/etc"}),
    tarball({"app/configuration.json": CONFIG, "other/evil.txt": "x"}, raw_names=True),
    tarball({"/abs/evil.txt": "x"}, raw_names=True),
])
def test_hostile_tarball_is_rejected_with_nothing_left(tmp_path, hostile):
    async def run() -> None:
        async with Harness(tmp_path, {"bad": hostile}) as h:
            with pytest.raises(AppCacheError) as info:
                await h.cache.ensure("bad", sha1(hostile))
            assert "invalid application tarball" in str(info.value)
            assert os.listdir(h.root) == []

    asyncio.run(run())
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()


def test_env_tarball_with_a_link_to_climb_through_is_rejected(tmp_path):
    path = tmp_path / "env.tar.gz"
    # a link to a directory outside, then a file written "through" it
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        link = tarfile.TarInfo("out")
        link.type = tarfile.SYMTYPE
        link.linkname = str(tmp_path / "outside")
        tar.addfile(link)
        info = tarfile.TarInfo("out/evil.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    path.write_bytes(buf.getvalue())
    os.makedirs(tmp_path / "outside")
    with pytest.raises(AppCacheError, match="below a symlink"):
        extract_env(str(path), str(tmp_path / "env"), 10 ** 6)
    assert os.listdir(tmp_path / "outside") == []


def test_old_copies_are_removed_when_unused(tmp_path):
    v1 = tarball({"configuration.json": CONFIG, "v": "1"})
    v2 = tarball({"configuration.json": CONFIG, "v": "2"})
    apps = {"app1": v1}

    async def run() -> None:
        async with Harness(tmp_path, apps) as h:
            await h.cache.ensure("app1", sha1(v1))  # held by a running action
            apps["app1"] = v2
            await h.cache.ensure("app1", sha1(v2))
            h.cache.sweep()
            assert sorted(os.listdir(os.path.join(h.root, "app1"))) == sorted([sha1(v1), sha1(v2)])
            h.cache.release("app1", sha1(v1))
            h.cache.sweep()
            assert os.listdir(os.path.join(h.root, "app1")) == [sha1(v2)]

    asyncio.run(run())


def test_venv_pack_env_is_unpacked_and_activated(tmp_path):
    venv_pack = pytest.importorskip("venv_pack")
    del venv_pack
    env_src = tmp_path / "build" / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_src)], check=True)
    packed = tmp_path / "build" / "venv.tar.gz"
    subprocess.run([sys.executable, "-m", "venv_pack", "-q", "-p", str(env_src), "-o", str(packed)], check=True)
    config = json.dumps({"actions": [{"name": "a", "condition": [], "env": "venvs/venv", "main": "python a.py"}]})
    app = tarball({"configuration.json": config, "venvs/venv.tar.gz": packed.read_bytes(),
                   "a.py": "import sys; print(sys.prefix)"})

    async def run() -> tuple[str, str]:
        async with Harness(tmp_path, {"app1": app}) as h:
            top = await h.cache.ensure("app1", sha1(app))
            env_dir = await h.cache.ensure_env(top, "venvs/venv")  # already unpacked: no work
            assert env_dir == os.path.join(top, "venvs", "venv")
            assert os.path.isfile(os.path.join(env_dir, "bin", "activate"))
            ws = tmp_path / "ws"
            ws.mkdir()
            proc = await asyncio.create_subprocess_exec(
                "bash", "-c", build_script(top, "python a.py", str(ws), env_dir), stdout=asyncio.subprocess.PIPE,
                start_new_session=True)
            out, _ = await proc.communicate()
            assert proc.returncode == 0
            return out.decode().strip(), env_dir

    prefix, env_dir = asyncio.run(run())
    assert os.path.realpath(prefix) == os.path.realpath(env_dir)
