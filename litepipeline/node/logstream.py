"""``GET /action/log``: an action's ``stdout.data``, streamed, optionally followed live.

``?task_id=&name=&offset=0&follow=0|1``. The body is the file's bytes from ``offset``
(chunked). With ``follow=1`` and the action running on this node, the answer stays open
and sends what the action prints (see :meth:`~litepipeline.node.workspace.Workspaces.read_log`)
until that attempt has ended and the rest is sent. A workspace that does not exist
(never made here, deleted, or swept by ``workspace_retention``) is ``404 WorkspaceNotExists``.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional

from tornado.iostream import StreamClosedError

from litepipeline.common.appspec import check_plain_name
from litepipeline.common.errors import InvalidApplication, InvalidParameters, NotFound
from litepipeline.common.states import AttemptState
from litepipeline.node.handlers import NodeHandler

LOG = logging.getLogger(__name__)
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


class ActionLogHandler(NodeHandler):
    """Streams ``workspaces/<task_id>/<name>/stdout.data``."""

    closed = False

    def on_connection_close(self) -> None:
        self.closed = True

    async def get(self) -> None:
        task_id = plain_arg(self, "task_id")
        name = plain_arg(self, "name")
        offset = self.arg_int("offset", 0)
        executor = self.node.executor
        attempt_id = executor.current_attempt(task_id, name) if flag_arg(self, "follow") else None
        if attempt_id is None and not os.path.isdir(self.node.workspaces.path(task_id, name)):
            raise gone(task_id, name)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("X-LitePipeline-Following", "1" if attempt_id else "0")
        def alive() -> bool:
            return attempt_id is not None and executor.attempt_state(attempt_id) is not None

        chunks = self.node.workspaces.read_log(
            task_id, name, offset, alive, ready=lambda: executor.attempt_state(attempt_id) != AttemptState.FETCHING)
        try:
            async for chunk in chunks:
                if self.closed:
                    break
                self.write(chunk)
                await self.flush()
            if not self.closed:
                self.finish()
        except StreamClosedError:
            LOG.debug("log reader of task %s action %s went away", task_id, name)
        finally:
            await chunks.aclose()
