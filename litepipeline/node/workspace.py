"""Per-(task, action) workspaces, their input/output files, and the node's small disk helpers.

Layout under ``data_path``::

    workspaces/<task_id>/<name>/   input.data, stdout.data, output.data (SPEC §7)
    trash/                         directories renamed here are removed in a thread

Removing a directory is always "rename into trash/ (atomic, on the loop), then rmtree in a
thread": nobody can see a half-deleted directory, and a new one with the same name can be
created at once.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any, Callable, Optional

LOG = logging.getLogger(__name__)

INPUT_FILE = "input.data"
SMALL_INPUT = 64 * 1024   # bytes of input.data written on the loop rather than in a thread
OUTPUT_FILE = "output.data"
STDOUT_FILE = "stdout.data"
LOG_POLL_INTERVAL = 0.1    # seconds between looks at a followed stdout.data
LOG_CHUNK = 256 * 1024


def write_json_atomic(path: str, obj: Any, fsync: bool = False) -> None:
    """Write ``obj`` as JSON to ``path`` so that readers see the old or the new file, never half."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "w", encoding="utf-8") as fp:
            json.dump(obj, fp)
            if fsync:
                fp.flush()
                os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_json(path: str) -> Any:
    with open(path, "r", encoding="utf-8") as fp:
        return json.load(fp)


def remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class OutputError(Exception):
    """output.data exists but cannot be used; the message is reported to the manager."""


def read_output(path: str, max_size: int) -> dict:
    """Parse an action's output.data into ``{"data": ..., "actions": [...]}``; ``{}`` if absent.

    Blocking (up to ``max_size`` bytes of JSON): run it in a thread.
    """
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return {}
    if size > max_size:
        raise OutputError(f"output.data is {size} bytes, larger than the limit of {max_size} bytes")
    try:
        with open(path, "rb") as fp:
            raw = json.loads(fp.read().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise OutputError(f"output.data is not valid JSON: {exc}") from None
    except OSError as exc:
        raise OutputError(f"cannot read output.data: {exc}") from None
    if not isinstance(raw, dict):
        raise OutputError(f"output.data is not valid JSON: expected an object, got {type(raw).__name__}")
    data = raw.get("data")
    actions = raw.get("actions")
    if actions is None:
        actions = []
    if not isinstance(actions, list):
        raise OutputError(f"output.data 'actions' must be a list, got {type(actions).__name__}")
    return {"data": {} if data is None else data, "actions": actions}


class Trash:
    """Removes directories without blocking the loop: rename now, rmtree in a thread."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._tasks: set[asyncio.Task] = set()

    def discard(self, path: str) -> None:
        """Move ``path`` (file or directory) out of the way now; delete it in the background."""
        os.makedirs(self.root, exist_ok=True)
        dest = os.path.join(self.root, uuid.uuid4().hex)
        try:
            os.rename(path, dest)
        except FileNotFoundError:
            return
        task = asyncio.ensure_future(asyncio.to_thread(_remove_tree, dest))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def empty(self) -> None:
        """Delete whatever an earlier run left in trash/ (start-up)."""
        if os.path.isdir(self.root):
            await asyncio.to_thread(_remove_children, self.root)

    async def wait(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks))


def _remove_tree(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        remove_file(path)


def _remove_children(root: str) -> None:
    for name in os.listdir(root):
        _remove_tree(os.path.join(root, name))


def _newest_mtime(task_dir: str) -> float:
    """Newest mtime of the task dir, its action dirs and the files directly in them.

    Shallow on purpose (the sweep runs often): writes deep inside an action's own
    subdirectories do not count, the action dir's stdout.data does.
    """
    newest = os.stat(task_dir).st_mtime
    with os.scandir(task_dir) as actions:
        for action in actions:
            try:
                newest = max(newest, action.stat(follow_symlinks=False).st_mtime)
                if action.is_dir(follow_symlinks=False):
                    with os.scandir(action.path) as files:
                        for entry in files:
                            newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
            except OSError:
                continue
    return newest


def _stale_task_dirs(root: str, cutoff: float) -> list[str]:
    stale = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return stale
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False) and _newest_mtime(entry.path) < cutoff:
                stale.append(entry.name)
        except OSError:
            continue
    return stale


class Workspaces:
    """``data_path/workspaces/<task_id>/<name>/`` directories."""

    def __init__(self, root: str, trash: Trash) -> None:
        self.root = root
        self.trash = trash

    def path(self, task_id: str, name: str) -> str:
        return os.path.join(self.root, task_id, name)

    async def prepare(self, task_id: str, name: str, input_data: dict) -> str:
        """A fresh workspace holding input.data (SPEC §7); returns its absolute path.

        Whatever an earlier attempt of the same action left there is removed first.
        """
        if self.can_prepare_now(input_data):
            return self.prepare_now(task_id, name, input_data)
        path = self._fresh(task_id, name)
        await asyncio.to_thread(_write_input, path, task_id, input_data)
        return path

    @staticmethod
    def can_prepare_now(input_data: dict) -> bool:
        """True for a small input: writing it inline costs less than a thread hop."""
        return len(json.dumps(input_data)) <= SMALL_INPUT

    def prepare_now(self, task_id: str, name: str, input_data: dict) -> str:
        """:meth:`prepare` for a small input, on the caller's thread."""
        path = self._fresh(task_id, name)
        _write_input(path, task_id, input_data)
        return path

    def _fresh(self, task_id: str, name: str) -> str:
        path = self.path(task_id, name)
        if os.path.lexists(path):
            self.trash.discard(path)
        return path

    async def read_log(self, task_id: str, name: str, offset: int,
                       alive: Callable[[], bool], ready: Callable[[], bool]) -> AsyncIterator[bytes]:
        """An action's stdout.data from ``offset``, then what it prints while ``alive()``
        (checked every :data:`LOG_POLL_INTERVAL` s); nothing is read before ``ready()``
        (a workspace being prepared may still be the old attempt's). Reads go to a thread."""
        path = os.path.join(self.path(task_id, name), STDOUT_FILE)
        fp = None
        try:
            while True:
                # look before reading: bytes written before the attempt ended are read below
                still = alive()
                if fp is None and (not still or ready()):
                    fp = _open_at(path, offset)
                if fp is not None:
                    while True:
                        chunk = await asyncio.to_thread(fp.read, LOG_CHUNK)
                        if not chunk:
                            break
                        yield chunk
                if not still:
                    return
                await asyncio.sleep(LOG_POLL_INTERVAL)
        finally:
            if fp is not None:
                fp.close()

    async def sweep(self, retention: float, busy_tasks: Callable[[], Iterable[str]]) -> int:
        """Remove task directories untouched for ``retention`` seconds; returns how many."""
        if retention <= 0:
            return 0
        stale = await asyncio.to_thread(_stale_task_dirs, self.root, time.time() - retention)
        # decided in a thread, acted on here: an action accepted meanwhile makes its task busy
        busy = set(busy_tasks())
        removed = 0
        for task_id in stale:
            if task_id not in busy:
                LOG.info("removing workspaces of task %s (older than %g s)", task_id, retention)
                self.trash.discard(os.path.join(self.root, task_id))
                removed += 1
        return removed


def _open_at(path: str, offset: int) -> Any:
    """``path`` opened for reading at ``offset``; None while it does not exist yet."""
    try:
        fp = open(path, "rb")  # noqa: SIM115 - closed by read_log
    except FileNotFoundError:
        return None
    fp.seek(offset)
    return fp


def input_document(task_id: str, workspace: str, input_data: Optional[dict]) -> dict:
    """input.data's content: the dispatched input plus ``task_id`` and ``workspace`` (ours win)."""
    doc = dict(input_data or {})
    doc["task_id"] = task_id
    doc["workspace"] = workspace
    return doc


def _write_input(path: str, task_id: str, input_data: dict) -> None:
    os.makedirs(path, exist_ok=True)
    text = json.dumps(input_document(task_id, path, input_data))   # one write: json.dump writes per chunk
    with open(os.path.join(path, INPUT_FILE), "w", encoding="utf-8") as fp:
        fp.write(text)
