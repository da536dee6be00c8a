"""Application tarballs on disk, by application id and SHA-1.

``data_path/applications/<app_id>/<sha1>.tar.gz`` holds every version a task may still
need; uploads arrive in ``data_path/tmp`` and are moved into place with one rename, so a
reader never sees a half-written tarball. Parsed configurations are cached by SHA-1.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from typing import Optional

from litepipeline.common.appspec import MAX_ACTIONS, AppSpec, TarballInfo, inspect_tarball

LOG = logging.getLogger(__name__)


class AppStore:
    """Owns ``data_path/applications`` and the upload area ``data_path/tmp``."""

    def __init__(self, data_path: str, max_unpacked_size: int, max_actions: int = MAX_ACTIONS) -> None:
        self.root = os.path.join(data_path, "applications")
        self.tmp = os.path.join(data_path, "tmp")
        self.max_unpacked_size = max_unpacked_size
        self.max_actions = max_actions
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.tmp, exist_ok=True)
        self._specs: dict[str, AppSpec] = {}
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
        return await asyncio.get_running_loop().run_in_executor(None, inspect_tarball, path,
                                                                self.max_unpacked_size, self.max_actions)

    def adopt(self, upload_path: str, app_id: str, sha1: str, info: TarballInfo) -> str:
        """Move a validated upload into place; returns its final path."""
        final = self.path(app_id, sha1)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(upload_path, final)
        self._specs[sha1] = info.spec
        return final

    async def spec(self, app_id: str, sha1: str) -> AppSpec:
        spec = self._specs.get(sha1)
        if spec is None:
            spec = (await self.inspect(self.path(app_id, sha1))).spec
            self._specs[sha1] = spec
        return spec

    def exists(self, app_id: str, sha1: str) -> bool:
        return os.path.isfile(self.path(app_id, sha1))

    async def delete(self, app_id: str) -> None:
        path = os.path.join(self.root, app_id)
        await asyncio.get_running_loop().run_in_executor(None, _remove, path)

    def prune(self, app_id: str, keep: set) -> None:
        """Remove versions of ``app_id`` whose SHA-1 is not in ``keep``."""
        folder = os.path.join(self.root, app_id)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return
        for name in names:
            sha1 = name.split(".", 1)[0]
            if sha1 not in keep:
                _remove(os.path.join(folder, name))
                self._specs.pop(sha1, None)


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
