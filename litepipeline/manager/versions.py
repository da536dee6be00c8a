"""Application and venv versions (SPEC §8, §9): history by SHA-1, activation, pinning.

:class:`Versions` owns both kinds of owner — an application or a venv — whose every
upload is a version, kept on disk by SHA-1 and in a history row; the owner's ``sha1`` is
its active version. Activating an older version is a rollback: new tasks run it, tasks
already created keep theirs (a task records its application's SHA-1, and each action
whose ``env`` is a venv id the SHA-1 of that venv's active version).

Deleting a version (or a venv) that a task may use is refused with 409. A task being
created is not in the store yet, so versions it is pinning are counted in memory
(:meth:`Versions.pin` .. :meth:`Versions.unpin`), and a version being deleted is marked
first, so a creation never pins what a deletion is removing.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import tarfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from litepipeline.common import clock
from litepipeline.common.appspec import CONFIG_NAME, AppSpec, is_venv_id
from litepipeline.common.envtar import inspect_env_tarball
from litepipeline.common.errors import (AppNotExists, HistoryNotExists, InvalidParameters, LiteError,
                                        OperationFailed, VenvNotExists)
from litepipeline.manager.appstore import AppStore, remove
from litepipeline.manager.dbthread import DbThread
from litepipeline.manager.store.versions_store import APPS, VENVS, Kind, VersionStore

LOG = logging.getLogger(__name__)
SHA1_RE = re.compile(r"[0-9a-fA-F]{40}")
MAX_HISTORY_ID = 2 ** 63 - 1


def missing_venv(action: str, venv_id: str) -> str:
    return f"action '{action}' env names venv {venv_id}, which does not exist"


def history_view(row: dict, id_column: str) -> dict:
    """A history row as the API shows it (``id`` too: the 0.1.5 CLI's tables read it)."""
    return {"history_id": row["id"], "id": row["id"], id_column: row[id_column], "sha1": row["sha1"],
            "create_at": clock.fmt(row["create_at"]), "description": row["description"]}


def venv_view(row: dict) -> dict:
    return {"venv_id": row["venv_id"], "name": row["name"], "create_at": clock.fmt(row["create_at"]),
            "update_at": clock.fmt(row["update_at"]), "sha1": row["sha1"], "description": row["description"]}


def parse_history_id(value: Any) -> int:
    """A history id from a query string or a JSON body (0.1.5 sends it as a string)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_HISTORY_ID:
        raise InvalidParameters(f"'history_id' must be a positive integer, got {str(value)[:60]!r}")
    return value


def read_configuration(path: str) -> Any:
    """configuration.json of a stored (validated) application tarball, parsed. Blocking."""
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            parts = [p for p in member.name.split("/") if p not in ("", ".")]
            if len(parts) == 2 and parts[1] == CONFIG_NAME and member.isfile():
                fp = tar.extractfile(member)
                return json.loads(fp.read().decode("utf-8")) if fp else None
    return None


@dataclass(frozen=True)
class Owner:
    """What differs between applications and venvs."""

    kind: Kind
    files: AppStore
    label: str                      # "application" / "venv", for messages
    missing: type                   # the 404 error of an unknown id

    @property
    def id_column(self) -> str:
        return self.kind.id_column


@dataclass
class Pins:
    """What one task creation pins: its application version and venv versions."""

    venvs: dict = field(default_factory=dict)    # venv id -> sha1
    keys: list = field(default_factory=list)     # in-use keys, released by unpin


class Versions:
    """Owns application and venv versions; the Manager and handlers call it."""

    def __init__(self, engine: Any, db: DbThread, apps: AppStore, data_path: str, max_unpacked_size: int,
                 forget_app: Callable[[str], None]) -> None:
        self.store = VersionStore(engine)
        self.db = db
        self.venv_files = AppStore(data_path, max_unpacked_size, folder="venvs", inspector=inspect_env_tarball)
        if self.store.blobs is not None:   # data_path is a cache of the database's tarballs
            apps.fetcher = self.venv_files.fetcher = self.store.blobs.fetch
        self.apps = Owner(APPS, apps, "application", AppNotExists)
        self.venvs = Owner(VENVS, self.venv_files, "venv", VenvNotExists)
        self.forget_app = forget_app
        self._active_venvs: dict[str, str] = {}   # venv id -> active sha1: pinning reads no database
        self._in_use: Counter = Counter()         # (label, owner id, sha1) pinned by creations in flight
        self._deleting: set = set()               # (label, owner id, sha1 or None for all) being deleted
        self._configs: dict[str, Any] = {}        # sha1 -> configuration.json
        #: (app_id, sha1) -> True while an unfinished work pins that version (set by the Manager)
        self.pinned_by_work: Callable[[str, str], bool] = lambda app_id, sha1: False
        self._backfill: Optional[asyncio.Future] = None

    async def start(self) -> None:
        rows = await self.db(self.store.all, VENVS)
        self._active_venvs = {r["venv_id"]: r["sha1"] for r in rows}
        if self.store.blobs is not None:
            self._backfill = asyncio.ensure_future(self.backfill_blobs())

    # -- uploads (create, update with a file) ------------------------------------------
    async def _validated(self, owner: Owner, upload_path: str) -> Any:
        try:
            info = await owner.files.inspect(upload_path)
            if owner is self.apps:
                self.check_envs(info.spec)
            return info
        except Exception:
            remove(upload_path)
            raise

    def check_envs(self, spec: AppSpec) -> None:
        """Every action env that is a venv id names an existing venv (else 404 naming the action)."""
        for action in spec.actions:
            if is_venv_id(action.env) and action.env not in self._active_venvs:
                raise VenvNotExists(missing_venv(action.name, action.env))

    async def create(self, owner: Owner, upload_path: str, sha1: str, name: str, description: str) -> str:
        info = await self._validated(owner, upload_path)
        owner_id = str(uuid.uuid4())
        owner.files.adopt(upload_path, owner_id, sha1, info)
        now = clock.now()
        row = {owner.id_column: owner_id, "name": name, "description": description, "sha1": sha1,
               "create_at": now, "update_at": now}
        try:
            await self._write(self.store.create, owner.kind, row, owner.files.path(owner_id, sha1))
        except Exception:
            await owner.files.delete(owner_id)
            raise
        if owner is self.venvs:
            self._active_venvs[owner_id] = sha1
        LOG.info("%s %s created (%s, sha1 %s)", owner.label, owner_id, name, sha1)
        return owner_id

    async def update(self, owner: Owner, owner_id: str, upload: Optional[tuple[str, str]],
                     name: Optional[str], description: Optional[str]) -> str:
        """New name/description and, with a file, a new version that becomes the active one."""
        try:
            await self.row(owner, owner_id)
        except LiteError:
            if upload is not None:
                remove(upload[0])
            raise
        values: dict[str, Any] = {"update_at": clock.now()}
        if name is not None:
            values["name"] = name
        if description is not None:
            values["description"] = description
        adopted = False
        keys = []
        if upload is not None:
            upload_path, sha1 = upload
            info = await self._validated(owner, upload_path)
            key = (owner.label, owner_id, sha1)
            if key in self._deleting or (owner.label, owner_id, None) in self._deleting:
                remove(upload_path)
                raise OperationFailed(f"version {sha1} of {owner.label} {owner_id} is being deleted; "
                                      "try again")
            keys.append(key)
            self._in_use[key] += 1   # a deletion of these same bytes waits for this update
            if owner.files.exists(owner_id, sha1):
                remove(upload_path)   # the same bytes are stored already
            else:
                owner.files.adopt(upload_path, owner_id, sha1, info)
                adopted = True
            values["sha1"] = sha1
        blob_path = owner.files.path(owner_id, values["sha1"]) if "sha1" in values else None
        try:
            await self._write(self.store.update, owner.kind, owner_id, values, blob_path)
        except Exception:
            if adopted:
                owner.files.remove_version(owner_id, values["sha1"])
            raise
        finally:
            self._release(keys)
            if owner is self.apps:
                self.forget_app(owner_id)
        if owner is self.venvs and "sha1" in values:
            self._active_venvs[owner_id] = values["sha1"]
        return owner_id

    async def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A version write: with blobs (a tarball of up to ``max_buffer_size`` written to the
        database) on a thread of its own, so the database thread's rounds never wait on it."""
        if self.store.blobs is None:
            return await self.db(fn, *args)
        return await asyncio.to_thread(fn, *args)

    async def backfill_blobs(self) -> None:
        """Store in the database the tarballs of versions uploaded before it kept them (a
        store upgraded to blobs), from this manager's ``data_path``. Runs in the background."""
        blobs = self.store.blobs
        if blobs is None:
            return
        try:
            missing = await asyncio.to_thread(lambda: blobs.missing(self.store.all_sha1s()))
            if not missing:
                return
            rows = await asyncio.to_thread(self.store.versions_of, missing)
            files = []
            for id_column, owner_id, sha1 in rows:
                owner = self.apps if id_column == self.apps.id_column else self.venvs
                path = owner.files.path(owner_id, sha1)
                if owner.files.exists(owner_id, sha1):
                    files.append((sha1, path))
            written = await asyncio.to_thread(blobs.backfill, files)
            LOG.info("%d older tarball(s) stored in the database from data_path (%d were missing there)",
                     written, len(missing))
        except Exception:   # noqa: BLE001 - a later start tries again
            LOG.exception("storing older tarballs in the database failed")

    # -- reading ------------------------------------------------------------------------
    async def row(self, owner: Owner, owner_id: str) -> dict:
        row = await self.db(self.store.get, owner.kind, owner_id)
        if row is None:
            raise owner.missing(f"{owner.label} {owner_id} does not exist")
        return row

    async def listing(self, owner: Owner, offset: int, limit: int) -> tuple[list[dict], int]:
        return await self.db(self.store.list, owner.kind, offset, limit)

    async def histories(self, owner: Owner, owner_id: str, offset: int, limit: int) -> tuple[list[dict], int]:
        await self.row(owner, owner_id)
        rows, total = await self.db(self.store.histories, owner.kind, owner_id, offset, limit)
        return [history_view(r, owner.id_column) for r in rows], total

    async def history(self, owner: Owner, owner_id: str, history_id: int) -> dict:
        await self.row(owner, owner_id)
        row = await self.db(self.store.history, owner.kind, owner_id, history_id)
        if row is None:
            raise HistoryNotExists(f"{owner.label} {owner_id} has no history {history_id}")
        return row

    async def config(self, app_id: str, sha1: str) -> Any:
        """configuration.json of one stored application version."""
        config = self._configs.get(sha1)
        if config is None:
            await self.apps.files.ensure(app_id, sha1)
            path = self.apps.files.path(app_id, sha1)
            try:
                config = await asyncio.to_thread(read_configuration, path)
            except (OSError, tarfile.TarError, ValueError) as exc:
                raise OperationFailed(f"cannot read configuration.json of application {app_id} version "
                                      f"{sha1}: {exc}") from None
            self._configs[sha1] = config
        return config

    async def download(self, owner: Owner, owner_id: str, sha1: Optional[str]) -> tuple[str, str]:
        if sha1 is not None and not SHA1_RE.fullmatch(sha1):
            raise InvalidParameters(f"parameter 'sha1' must be 40 hexadecimal digits, got {sha1[:60]!r}")
        row = await self.row(owner, owner_id)
        sha1 = (sha1 or row["sha1"]).lower()
        if not await owner.files.ensure(owner_id, sha1):
            raise owner.missing(f"{owner.label} {owner_id} has no version with sha1 {sha1}")
        return owner.files.path(owner_id, sha1), sha1

    # -- activate (rollback) and delete ---------------------------------------------------
    async def activate(self, owner: Owner, owner_id: str, history_id: int) -> dict:
        history = await self.history(owner, owner_id, history_id)
        key = (owner.label, owner_id, history["sha1"])
        if key in self._deleting or (owner.label, owner_id, None) in self._deleting:
            raise OperationFailed(f"history {history_id} of {owner.label} {owner_id} is being deleted")
        self._in_use[key] += 1   # a deletion starting now sees the activation
        try:
            await self.db(self.store.update, owner.kind, owner_id,
                          {"sha1": history["sha1"], "update_at": clock.now()})
        finally:
            self._release([key])
        if owner is self.apps:
            self.forget_app(owner_id)
        else:
            self._active_venvs[owner_id] = history["sha1"]
        LOG.info("%s %s: version %s (history %d) activated", owner.label, owner_id, history["sha1"],
                 history_id)
        return history

    async def delete_history(self, owner: Owner, owner_id: str, history_id: int) -> None:
        history = await self.history(owner, owner_id, history_id)
        sha1 = history["sha1"]
        key = (owner.label, owner_id, sha1)
        if self._in_use[key]:
            raise OperationFailed(f"history {history_id} ({sha1}) of {owner.label} {owner_id} is being used "
                                  f"by a task being created or an activation; try again")
        if key in self._deleting:
            raise OperationFailed(f"history {history_id} of {owner.label} {owner_id} is being deleted")
        self._deleting.add(key)   # from here no creation pins it and no activation picks it
        try:
            row = await self.row(owner, owner_id)
            if row["sha1"] == sha1:
                raise OperationFailed(f"history {history_id} ({sha1}) is the active version of {owner.label} "
                                      f"{owner_id}; activate another version first")
            busy = await self._busy(owner, owner_id, sha1)
            if busy:
                raise OperationFailed(f"history {history_id} ({sha1}) of {owner.label} {owner_id} is run by "
                                      f"{busy} unfinished task(s); stop or wait for them first")
            if owner is self.apps and self.pinned_by_work(owner_id, sha1):
                raise OperationFailed(f"history {history_id} ({sha1}) of {owner.label} {owner_id} is pinned by "
                                      "an unfinished work; stop or wait for it first")
            await self.db(self.store.delete_history, owner.kind, history_id)
            await asyncio.to_thread(owner.files.remove_version, owner_id, sha1)
        finally:
            self._deleting.discard(key)
        LOG.info("%s %s: history %d (%s) deleted", owner.label, owner_id, history_id, sha1)

    async def _busy(self, owner: Owner, owner_id: str, sha1: Optional[str]) -> int:
        if owner is self.apps:
            return await self.db(self.store.unfinished_app_tasks, owner_id, sha1)
        return await self.db(self.store.unfinished_venv_tasks, owner_id, sha1)

    async def delete_app(self, app_id: str) -> None:
        """An application's rows and files (the Manager checked it has no unfinished task)."""
        await self.db(self.store.delete, APPS, app_id)
        self.forget_app(app_id)
        await self.apps.files.delete(app_id)

    async def delete_venv(self, venv_id: str) -> None:
        await self.row(self.venvs, venv_id)
        if any(k[:2] == ("venv", venv_id) for k, n in self._in_use.items() if n):
            raise OperationFailed(f"venv {venv_id} is being used by a task being created; try again")
        key = ("venv", venv_id, None)
        self._deleting.add(key)
        try:
            busy = await self._busy(self.venvs, venv_id, None)
            if busy:
                raise OperationFailed(f"venv {venv_id} is used by {busy} unfinished task(s); "
                                      "stop or wait for them first")
            self._active_venvs.pop(venv_id, None)
            await self.db(self.store.delete, VENVS, venv_id)
            await self.venv_files.delete(venv_id)
        finally:
            self._deleting.discard(key)
        LOG.info("venv %s deleted", venv_id)

    # -- pinning at task creation ---------------------------------------------------------
    def pin(self, app_id: str, app_sha1: str, spec: AppSpec) -> Pins:
        """Pin a task's application version and each venv its actions name (no await: the
        checks and the marks are one step). Call :meth:`unpin` once the task is stored."""
        pins = Pins()
        app_key = ("application", app_id, app_sha1)
        if app_key in self._deleting or not self.apps.files.exists(app_id, app_sha1):
            raise OperationFailed(f"the active version of application {app_id} changed meanwhile; try again")
        pins.keys.append(app_key)
        for action in spec.actions:
            if not is_venv_id(action.env) or action.env in pins.venvs:
                continue
            sha1 = self._active_venvs.get(action.env)
            if sha1 is None or ("venv", action.env, None) in self._deleting:
                raise VenvNotExists(missing_venv(action.name, action.env))
            pins.venvs[action.env] = sha1
            pins.keys.append(("venv", action.env, sha1))
        for key in pins.keys:
            self._in_use[key] += 1
        return pins

    def unpin(self, pins: Pins) -> None:
        self._release(pins.keys)

    def _release(self, keys: list) -> None:
        for key in keys:
            self._in_use[key] -= 1
            if self._in_use[key] <= 0:
                del self._in_use[key]

    async def check_recoverable(self, task: Any) -> None:
        """A task runs again in place only with the venv versions it pinned still stored."""
        for action in task.actions.values():
            if action.succeeded or not action.env_sha1:
                continue
            if not await self.venv_files.ensure(action.env, action.env_sha1):
                raise OperationFailed(f"the venv version action '{action.name}' of task {task.task_id} "
                                      f"ran (venv {action.env}, sha1 {action.env_sha1}) is no longer stored; "
                                      "rerun makes a new task with the current versions")

    def active_venv(self, venv_id: str) -> Optional[str]:
        """The active SHA-1 of a venv (None when it does not exist): for generated actions."""
        if ("venv", venv_id, None) in self._deleting:
            return None
        return self._active_venvs.get(venv_id)
