"""Application tarballs on disk, by application id and SHA-1.

``data_path/applications/<app_id>/<sha1>.tar.gz`` holds every version a task may still
need; uploads arrive in ``data_path/tmp`` and are moved into place with one rename, so a
reader never sees a half-written tarball. Parsed configurations are cached by SHA-1.
With PostgreSQL the database holds every tarball too (``store/blobs.py``) and this
directory is a cache: :meth:`AppStore.ensure` fetches a missing version into it.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import tempfile
from typing import Any, Callable, Optional

from litepipeline.common.appspec import MAX_ACTIONS, AppSpec, TarballInfo, inspect_tarball
from litepipeline.common.errors import OperationFailed

LOG = logging.getLogger(__name__)


class AppStore:
    """Owns ``data_path/applications`` and the upload area ``data_path/tmp``.

    The same class keeps venvs (``folder="venvs"``, checked with another ``inspector``):
    tarballs by owner id and SHA-1 either way.
    """

    def __init__(self, data_path: str, max_unpacked_size: int, max_actions: int = MAX_ACTIONS,
                 folder: str = "applications", inspector: Optional[Callable[[str, int], Any]] = None) -> None:
        self.root = os.path.join(data_path, folder)
        self.tmp = os.path.join(data_path, "tmp")
        self.max_unpacked_size = max_unpacked_size
        self.inspector = inspector or functools.partial(inspect_tarball, max_actions=max_actions)
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.tmp, exist_ok=True)
        self._specs: dict[str, AppSpec] = {}
        #: fetches a version missing here from a shared store: ``fetch(sha1, dest, tmp_dir)``
        #: -> found (blocking; PostgreSQL's blobs). None: this directory is the only copy.
        self.fetcher: Optional[Callable[[str, str, str], bool]] = None
        self._fetching: dict[str, asyncio.Future] = {}
        # leftovers of uploads interrupted by a crash
        for name in os.listdir(self.tmp):
            _remove(os.path.join(self.tmp, name))

    def new_upload_path(self) -> str:
        fd, path = tempfile.mkstemp(prefix="upload-", suffix=".tar.gz", dir=self.tmp)
        os.close(fd)
        return path

    def path(self, app_id: str, sha1: str) -> str:
        return os.path.join(self.root, app_id, f"{sha1}.tar.gz")

    async def inspect(self, path: str) -> TarballInfo:
        """Validate an uploaded tarball (in a thread: it reads the whole archive)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.inspector, path,
                                                                self.max_unpacked_size)

    def adopt(self, upload_path: str, app_id: str, sha1: str, info: Any) -> str:
        """Move a validated upload into place; returns its final path."""
        final = self.path(app_id, sha1)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(upload_path, final)
        if isinstance(info, TarballInfo):
            self._specs[sha1] = info.spec
        return final

    def remove_version(self, app_id: str, sha1: str) -> None:
        """Remove one version's tarball (blocking: a small unlink)."""
        _remove(self.path(app_id, sha1))
        self._specs.pop(sha1, None)

    async def ensure(self, app_id: str, sha1: str) -> bool:
        """True when the version's tarball is here, fetched first from the shared store when
        it is missing (one fetch per file however many ask; on a thread)."""
        path = self.path(app_id, sha1)
        if os.path.isfile(path):
            return True
        if self.fetcher is None:
            return False
        pending = self._fetching.get(path)
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(self.fetcher, sha1, path, self.tmp))
            self._fetching[path] = pending
            pending.add_done_callback(lambda _: self._fetching.pop(path, None))
        try:
            found = await asyncio.shield(pending)
        except Exception as exc:  # noqa: BLE001 - a database error, or bytes not matching their SHA-1
            LOG.error("cannot fetch version %s of %s from the database: %s", sha1, app_id, exc)
            raise OperationFailed(f"cannot fetch version {sha1} of {app_id} from the database: "
                                  f"{type(exc).__name__}") from None
        if found:
            LOG.info("version %s of %s fetched from the database into %s", sha1, app_id, path)
        return bool(found) and os.path.isfile(path)

    async def spec(self, app_id: str, sha1: str) -> AppSpec:
        spec = self._specs.get(sha1)
        if spec is None:
            await self.ensure(app_id, sha1)
            spec = (await self.inspect(self.path(app_id, sha1))).spec
            self._specs[sha1] = spec
        return spec

    def exists(self, app_id: str, sha1: str) -> bool:
        return os.path.isfile(self.path(app_id, sha1))

    async def delete(self, app_id: str) -> None:
        path = os.path.join(self.root, app_id)
        await asyncio.get_running_loop().run_in_executor(None, _remove, path)


def _remove(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        LOG.warning("cannot remove %s: %s", path, exc)


def remove(path: Optional[str]) -> None:
    if path:
        _remove(path)
