"""``GET /action/log``: an action's ``stdout.data``, streamed, optionally followed live.

``?task_id=&name=&offset=0&follow=0|1``. The body is the file's bytes from ``offset``
(chunked). With ``follow=1`` and the action running on this node, the answer stays open
and sends what the action prints (the file is checked for growth every
:data:`POLL_INTERVAL` seconds) until that attempt has ended and the rest is sent. A
workspace that does not exist (never made here, deleted, or swept by
``workspace_retention``) is ``404 WorkspaceNotExists``.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Optional

from tornado.iostream import StreamClosedError

from litepipeline.common.appspec import check_plain_name
from litepipeline.common.errors import InvalidApplication, InvalidParameters, NotFound
from litepipeline.node.handlers import NodeHandler
from litepipeline.node.workspace import STDOUT_FILE

LOG = logging.getLogger(__name__)
POLL_INTERVAL = 0.1
READ_CHUNK = 256 * 1024
TRUE = ("1", "true", "yes", "on")


class WorkspaceNotExists(NotFound):
    """The workspace asked for is not (or no longer) on this node."""

    name = "WorkspaceNotExists"


def gone(task_id: str, name: Optional[str]) -> WorkspaceNotExists:
    if name:
        return WorkspaceNotExists(f"workspace of action '{name}' of task {task_id} is gone")
    return WorkspaceNotExists(f"workspaces of task {task_id} are gone")


def plain_arg(handler: Any, key: str, required: bool = True) -> Optional[str]:
    """A query argument that becomes one path component: no separators, no '..'."""
    value = handler.arg_str(key, required=required)
    if value is None:
        return None
    try:
        return check_plain_name(value, f"parameter '{key}'")
    except InvalidApplication as exc:
        raise InvalidParameters(exc.message) from None


def flag_arg(handler: Any, key: str) -> bool:
    return (handler.get_query_argument(key, "") or "").strip().lower() in TRUE


def running_attempt(executor: Any, task_id: str, name: str) -> Optional[str]:
    """The attempt id of (task_id, name) held by this node's executor, if any (read-only)."""
    for attempt_id, attempt in list(executor.attempts.items()):
        request = attempt.request
        if request.task_id == task_id and request.name == name and not attempt.abandoned:
            return attempt_id
    return None


class ActionLogHandler(NodeHandler):
    """Streams ``workspaces/<task_id>/<name>/stdout.data``."""

    closed = False

    def on_connection_close(self) -> None:
        self.closed = True

    async def get(self) -> None:
        task_id = plain_arg(self, "task_id")
        name = plain_arg(self, "name")
        offset = self.arg_int("offset", 0)
        follow = flag_arg(self, "follow")
        executor = self.node.executor
        attempt_id = running_attempt(executor, task_id, name) if follow else None
        workspace = self.node.workspaces.path(task_id, name)
        if attempt_id is None and not os.path.isdir(workspace):
            raise gone(task_id, name)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("X-LitePipeline-Following", "1" if attempt_id else "0")
        path = os.path.join(workspace, STDOUT_FILE)
        fp = None
        try:
            while not self.closed:
                # look before reading: bytes written before the attempt ended are read below
                alive = attempt_id is not None and attempt_id in executor.attempts
                if fp is None and not (alive and _preparing(executor, attempt_id)):
                    fp = _open_at(path, offset)   # (a workspace being prepared may still be the old one)
                if fp is not None:
                    while not self.closed:
                        chunk = await asyncio.to_thread(fp.read, READ_CHUNK)
                        if not chunk:
                            break
                        self.write(chunk)
                        await self.flush()
                if not alive:
                    break
                await asyncio.sleep(POLL_INTERVAL)
            if not self.closed:
                self.finish()
        except StreamClosedError:
            LOG.debug("log reader of task %s action %s went away", task_id, name)
        finally:
            if fp is not None:
                fp.close()


def _preparing(executor: Any, attempt_id: str) -> bool:
    attempt = executor.attempts.get(attempt_id)
    return attempt is not None and attempt.state == "fetching"


def _open_at(path: str, offset: int) -> Any:
    """``path`` opened for reading at ``offset``; None while it does not exist yet."""
    try:
        fp = open(path, "rb")  # noqa: SIM115 - closed by the handler
    except FileNotFoundError:
        return None
    fp.seek(offset)
    return fp
