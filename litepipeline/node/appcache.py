"""The node's caches of applications and venvs: download by SHA-1, verify, extract — atomically.

:class:`VersionCache` keeps copies by (owner id, SHA-1); :class:`AppCache` (applications,
with the env tarballs they contain) and :class:`VenvCache` (venvs deployed on their own,
``data_path/venvs/<venv_id>/<sha1>/venv``) differ only in how a downloaded tarball
becomes a copy. Both share every rule below: one download, references, retention.

Layout: ``data_path/apps/<app_id>/<sha1>/`` holds the tarball's top directory, a ``.ready``
marker (JSON ``{"top": NAME}``) and one ``.env-<hash>`` marker per unpacked env. A copy
counts only once ``.ready`` exists: it is written after the extracted tree was renamed into
place and every configured env is usable, so a crash at any point leaves either nothing or
a copy that the next ``ensure`` discards and fetches again.

Concurrency: one download per (app_id, sha1) however many actions wait for it; a refcount
per copy so that old copies of an application are removed only when no action uses them.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shlex
import uuid
from collections import Counter
from typing import Any, Optional
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from litepipeline.common.appspec import CONFIG_NAME, check_relative_path, is_venv_id, safe_extract
from litepipeline.common.diskspace import describe, is_disk_full
from litepipeline.common.errors import InvalidApplication
from litepipeline.common.web import auth_headers
from litepipeline.node.workspace import Trash, read_json, remove_file, write_json_atomic

LOG = logging.getLogger(__name__)

READY = ".ready"
DOWNLOAD_TRIES = 3
ENV_UNPACK_TIMEOUT = 600


class AppCacheError(Exception):
    """The application could not be made available; the message fails the action."""


def env_marker(env: str) -> str:
    return ".env-" + hashlib.sha1(env.encode("utf-8")).hexdigest()[:16]


class VersionCache:
    """Copies keyed by (owner id, sha1); see the module docstring. Subclasses say how a
    downloaded tarball becomes a copy (:meth:`_unpack`, :meth:`_complete`)."""

    label = "application"    # for logs and messages
    id_param = "app_id"      # the download route's id parameter

    def __init__(self, root: str, download_url: str, token: Optional[str], max_unpacked_size: int,
                 trash: Trash) -> None:
        self.root = root
        self.download_url = download_url
        self.token = token
        self.max_unpacked_size = max_unpacked_size
        self.trash = trash
        self._client: Optional[AsyncHTTPClient] = None
        self._flights: dict[tuple[str, str], asyncio.Future] = {}
        self._env_flights: dict[tuple[str, str], asyncio.Future] = {}
        self._refs: Counter = Counter()
        self._tops: dict[tuple[str, str], str] = {}   # ready copies seen, so a hit reads no file
        self._latest: dict[str, str] = {}
        self.downloads = 0  # how many downloads were started (tests check single-flight)
        self.hits = 0       # copies found ready, no download waited for (GET /metrics)

    # -- life cycle --------------------------------------------------------------------
    def start(self) -> None:
        """Drop leftovers of an earlier run: temp entries and copies never marked ready."""
        os.makedirs(self.root, exist_ok=True)
        # big bodies stream to disk; the limit only guards against a runaway server
        self._client = AsyncHTTPClient(force_instance=True, max_clients=8,
                                       max_body_size=self.max_unpacked_size + 256 * 1024 * 1024)
        for app_id in _listdir(self.root):
            app_dir = os.path.join(self.root, app_id)
            for name in _listdir(app_dir):
                path = os.path.join(app_dir, name)
                if name.startswith(".") or not os.path.exists(os.path.join(path, READY)):
                    LOG.info("removing incomplete %s copy %s", self.label, path)
                    self.trash.discard(path)

    async def close(self) -> None:
        """Cancel downloads nobody waits for any more (their temp files are removed)."""
        flights = list(self._flights.values()) + list(self._env_flights.values())
        for flight in flights:
            flight.cancel()
        if flights:
            await asyncio.wait(flights, timeout=5)
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- public API ---------------------------------------------------------------------
    async def ensure(self, app_id: str, sha1: str) -> str:
        """The extracted top directory of (app_id, sha1), downloading it if needed.

        Holds a reference on the copy: call :meth:`release` when the action ends.
        Raises :class:`AppCacheError`.
        """
        key = (app_id, sha1)
        waited = False
        while True:
            flight = self._flights.get(key)
            if flight is None:
                # no await between the check and the reference: the sweep cannot interleave
                top = self._acquire(app_id, sha1)
                if top is not None:
                    if not waited:
                        self.hits += 1
                    return top
                flight = asyncio.ensure_future(self._fetch(app_id, sha1))
                self._flights[key] = flight
                flight.add_done_callback(lambda f, key=key: self._flight_done(key, f))
            # shield: a waiter cancelled by a stop request must not cancel the others' download
            waited = True
            await asyncio.shield(flight)
            if self._flights.get(key) is flight:
                # awaiting a finished flight does not yield, so its clean-up callback may not
                # have run yet: without this the loop would find the same flight forever
                del self._flights[key]

    def acquire_ready(self, app_id: str, sha1: str) -> Optional[str]:
        """:meth:`ensure` without waiting: the top directory, with a reference held, when the
        copy is ready now; None when it would have to be fetched."""
        top = self._acquire(app_id, sha1)
        if top is not None:
            self.hits += 1
        return top

    def _acquire(self, app_id: str, sha1: str) -> Optional[str]:
        key = (app_id, sha1)
        if key in self._flights:
            return None
        top = self._lookup(app_id, sha1)
        if top is not None:
            self._refs[key] += 1
            self._latest[app_id] = sha1
        return top

    def release(self, app_id: str, sha1: str) -> None:
        key = (app_id, sha1)
        self._refs[key] -= 1
        if self._refs[key] <= 0:
            del self._refs[key]

    def sweep(self) -> None:
        """Remove copies of an application other than its newest, once no action uses them."""
        for app_id in _listdir(self.root):
            app_dir = os.path.join(self.root, app_id)
            copies = [n for n in _listdir(app_dir) if not n.startswith(".")]
            if len(copies) < 2:
                continue
            keep = self._latest.get(app_id)
            if keep not in copies:
                keep = max(copies, key=lambda n: _mtime(os.path.join(app_dir, n)))
            for sha1 in copies:
                key = (app_id, sha1)
                if sha1 == keep or self._refs.get(key) or key in self._flights:
                    continue
                LOG.info("removing old copy %s of %s %s", sha1, self.label, app_id)
                self._tops.pop(key, None)
                self.trash.discard(os.path.join(app_dir, sha1))

    # -- internals ------------------------------------------------------------------------
    def _flight_done(self, key: tuple[str, str], flight: asyncio.Future) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved here so a flight nobody awaits any more logs nothing

    def _lookup(self, app_id: str, sha1: str) -> Optional[str]:
        top = self._tops.get((app_id, sha1))
        if top is not None:
            return top
        copy_dir = os.path.join(self.root, app_id, sha1)
        try:
            top = os.path.join(copy_dir, read_json(os.path.join(copy_dir, READY))["top"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        self._tops[(app_id, sha1)] = top
        return top

    async def _fetch(self, app_id: str, sha1: str) -> None:
        app_dir = os.path.join(self.root, app_id)
        os.makedirs(app_dir, exist_ok=True)
        final = os.path.join(app_dir, sha1)
        if os.path.lexists(final):  # a copy that never became ready
            self._tops.pop((app_id, sha1), None)
            self.trash.discard(final)
        tag = uuid.uuid4().hex[:12]
        tarball = os.path.join(app_dir, f".dl-{sha1}-{tag}.tar.gz")
        tmp_dir = os.path.join(app_dir, f".tmp-{sha1}-{tag}")
        renamed = False
        try:
            self.downloads += 1
            LOG.info("downloading %s %s (sha1 %s)", self.label, app_id, sha1)
            got = await self._download(app_id, sha1, tarball)
            if got != sha1:
                raise AppCacheError(f"{self.label} sha1 mismatch: expected {sha1}, got {got}")
            top_name = await self._unpack(tarball, tmp_dir)
            remove_file(tarball)
            # the tree goes into place first so venv-unpack (if any) sees the final prefix;
            # .ready comes last, so until then the copy does not count
            os.rename(tmp_dir, final)
            renamed = True
            await self._complete(os.path.join(final, top_name))
            write_json_atomic(os.path.join(final, READY), {"top": top_name})
            self._latest[app_id] = sha1
            LOG.info("%s %s (sha1 %s) ready in %s", self.label, app_id, sha1, final)
        except OSError as exc:
            self._discard(tarball, tmp_dir, final, renamed, app_dir)
            if is_disk_full(exc):
                raise AppCacheError(f"cannot unpack {self.label} {app_id}: {describe(exc, tmp_dir)}") from None
            raise
        except BaseException:
            self._discard(tarball, tmp_dir, final, renamed, app_dir)
            raise

    def _discard(self, tarball: str, tmp_dir: str, final: str, renamed: bool, app_dir: str) -> None:
        """What a failed fetch leaves: gone (the download, the half-made copy)."""
        remove_file(tarball)
        for path in (tmp_dir, final) if renamed else (tmp_dir,):
            if os.path.lexists(path):
                self.trash.discard(path)
        try:
            os.rmdir(app_dir)  # only if empty: another copy may live there
        except OSError:
            pass

    async def _download(self, app_id: str, sha1: str, dest: str) -> str:
        """Stream the application to ``dest``; return the SHA-1 of what was received."""
        query = urlencode({self.id_param: app_id, "sha1": sha1})
        delay = 0.5
        for attempt in range(1, DOWNLOAD_TRIES + 1):
            digest = hashlib.sha1()
            write_errors: list = []
            with open(dest, "wb") as fp:
                def on_chunk(chunk: bytes, fp: Any = fp, digest: Any = digest, write_errors: list = write_errors) -> None:
                    # chunks are small (tornado reads 64 KiB at a time): cheap enough inline
                    if write_errors:
                        return   # the rest of the answer is read and dropped
                    try:
                        fp.write(chunk)
                    except OSError as exc:
                        # e.g. the disk is full: reported as such once the answer ends (raised
                        # here, it would surface as "Connection closed" and a logged traceback)
                        write_errors.append(exc)
                        return
                    digest.update(chunk)

                request = HTTPRequest(f"{self.download_url}?{query}", headers=auth_headers(self.token),
                                      streaming_callback=on_chunk, connect_timeout=10,
                                      request_timeout=3600)
                try:
                    response = await self._client.fetch(request, raise_error=False)
                    code, error = response.code, None
                except Exception as exc:  # noqa: BLE001 - connection refused, reset, timeout
                    code, error = 599, str(exc) or type(exc).__name__
            if write_errors:
                raise AppCacheError(
                    f"cannot download application {app_id}: {describe(write_errors[0], dest)}")
            if code == 200:
                return digest.hexdigest()
            if error is None:
                error = f"HTTP {code} {_error_message(dest)}"
            retry = code >= 500 or code in (408, 429)
            if not retry or attempt == DOWNLOAD_TRIES:
                raise AppCacheError(f"cannot download {self.label} {app_id}: {error}")
            LOG.warning("download of %s %s failed (%s); retrying in %g s", self.label, app_id, error, delay)
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    async def _unpack(self, tarball: str, tmp_dir: str) -> str:
        """Make the copy's tree in ``tmp_dir`` from ``tarball``; the name of its top directory."""
        raise NotImplementedError

    async def _complete(self, top: str) -> None:
        """Finish a copy once its tree is in place (``top``), before it is marked ready."""


class AppCache(VersionCache):
    """Applications by (app_id, sha1), with the env tarballs they contain unpacked."""

    async def _unpack(self, tarball: str, tmp_dir: str) -> str:
        try:
            top = await asyncio.to_thread(safe_extract, tarball, tmp_dir, self.max_unpacked_size)
        except InvalidApplication as exc:
            raise AppCacheError(f"invalid application tarball: {exc.message}") from None
        return os.path.basename(top)

    async def _complete(self, top: str) -> None:
        for env in await asyncio.to_thread(_configured_envs, top):
            await self._unpack_env(top, env)

    async def ensure_env(self, top: str, env: str) -> str:
        """The unpacked env directory ``top/env``, unpacking ``top/env.tar.gz`` once if needed.

        Configured envs are unpacked by :meth:`ensure` already; this covers envs named only
        by actions generated at run time. Raises :class:`AppCacheError`.
        """
        try:
            env = check_relative_path(env, "env")
        except InvalidApplication as exc:
            raise AppCacheError(exc.message) from None
        copy_dir = os.path.dirname(top)
        key = (copy_dir, env)
        while True:
            if os.path.exists(os.path.join(copy_dir, env_marker(env))):
                return os.path.join(top, env)
            flight = self._env_flights.get(key)
            if flight is None:
                flight = asyncio.ensure_future(self._unpack_env(top, env))
                self._env_flights[key] = flight
                flight.add_done_callback(lambda f, key=key: self._env_flights.pop(key, None))
            await asyncio.shield(flight)

    async def _unpack_env(self, top: str, env: str) -> None:
        """Extract ``top/env.tar.gz`` (a venv-pack tarball) into ``top/env`` and mark it ready."""
        copy_dir = os.path.dirname(top)
        marker = os.path.join(copy_dir, env_marker(env))
        env_dir = os.path.join(top, env)
        tarball = env_dir + ".tar.gz"
        if not os.path.isfile(tarball):
            if os.path.isfile(os.path.join(env_dir, "bin", "activate")):
                write_json_atomic(marker, {"env": env})  # shipped unpacked: use it as is
                return
            raise AppCacheError(f"env '{env}' not found: no {env}.tar.gz in the application")
        if os.path.lexists(env_dir):  # half-made by an earlier attempt
            self.trash.discard(env_dir)
        tmp_dir = os.path.join(os.path.dirname(env_dir), f".env-tmp-{uuid.uuid4().hex[:12]}")
        try:
            LOG.info("unpacking env %s of %s", env, top)
            await asyncio.to_thread(extract_env, tarball, tmp_dir, self.max_unpacked_size)
            os.rename(tmp_dir, env_dir)
        except BaseException:
            if os.path.lexists(tmp_dir):
                self.trash.discard(tmp_dir)
            raise
        try:
            await _run_venv_unpack(env_dir)
        except BaseException:
            self.trash.discard(env_dir)
            raise
        write_json_atomic(marker, {"env": env})


async def _run_venv_unpack(env_dir: str) -> None:
    """Run ``env/bin/venv-unpack`` if the packer shipped one (venv-pack 0.2 ships none:
    its ``activate`` finds the env's location at run time, so nothing needs fixing)."""
    script = os.path.join(env_dir, "bin", "venv-unpack")
    if not os.path.isfile(script):
        return
    command = f"source {shlex.quote(os.path.join(env_dir, 'bin', 'activate'))} && venv-unpack"
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", command, cwd=env_dir, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), ENV_UNPACK_TIMEOUT)
    except BaseException:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        raise
    if proc.returncode != 0:
        tail = output[-500:].decode("utf-8", "replace").strip()
        raise AppCacheError(f"venv-unpack failed in {env_dir} (exit {proc.returncode}): {tail}")


class VenvCache(VersionCache):
    """Venvs deployed on their own, by (venv_id, sha1): ``<sha1>/venv`` is the unpacked env.

    :meth:`ensure` gives the env directory (what ``source ENV/bin/activate`` needs)."""

    label = "venv"
    id_param = "venv_id"

    async def _unpack(self, tarball: str, tmp_dir: str) -> str:
        await asyncio.to_thread(extract_env, tarball, os.path.join(tmp_dir, "venv"), self.max_unpacked_size)
        return "venv"

    async def _complete(self, top: str) -> None:
        await _run_venv_unpack(top)


def extract_env(path: str, dest: str, max_size: int) -> None:
    """Extract a venv-pack tarball into ``dest`` (blocking; run it in a thread) under the
    env rules the manager checked at upload (:mod:`litepipeline.common.envtar`, applied by
    :class:`~litepipeline.common.appspec.MemberRules`)."""
    try:
        safe_extract(path, dest, max_size, one_top=False)
    except InvalidApplication as exc:
        raise AppCacheError(f"env tarball {os.path.basename(path)}: {exc.message}") from None
    except OSError as exc:
        raise AppCacheError(f"env tarball {os.path.basename(path)} cannot be extracted: {exc}") from None


def _configured_envs(top: str) -> list[str]:
    """The distinct, valid ``env`` paths named in top/configuration.json (order kept)."""
    try:
        config = read_json(os.path.join(top, CONFIG_NAME))
    except (OSError, ValueError):
        return []
    envs: list[str] = []
    actions = config.get("actions") if isinstance(config, dict) else None
    for action in actions if isinstance(actions, list) else []:
        env = action.get("env") if isinstance(action, dict) else None
        if not env or is_venv_id(env):
            continue   # a venv deployed on its own comes from the VenvCache
        try:
            env = check_relative_path(env, "env")
        except InvalidApplication:
            continue  # the action naming it fails when it runs
        if env not in envs:
            envs.append(env)
    return envs


def _error_message(path: str) -> str:
    """The manager's error message from a small JSON error body saved at ``path``."""
    try:
        if os.path.getsize(path) > 65536:
            return ""
        with open(path, "rb") as fp:
            body = json.loads(fp.read().decode("utf-8"))
        return f"{body.get('result', '')}: {body.get('message', '')}".strip(": ")
    except (OSError, ValueError, AttributeError):
        return ""


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
