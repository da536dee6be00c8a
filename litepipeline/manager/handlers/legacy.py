"""Routes in the shapes the original 0.1.5 client sends (SPEC Part II preamble).

Its workspace routes map onto ``/task/workspace``: workspaces stream from the nodes on
demand, so there is nothing to pack ahead — ``pack`` checks that the archive can be
made and answers ``ok``.
"""
from __future__ import annotations

from tornado.iostream import StreamClosedError

from litepipeline.common.errors import InvalidParameters, LiteError
from litepipeline.common.web import attachment
from litepipeline.manager.handlers.base import ManagerHandler
from litepipeline.manager.handlers.toolkit import StreamingHandler


class WorkspacePackHandler(ManagerHandler):
    """PUT ``/workspace/pack {task_id, name, force}``: ``ok`` once it can be downloaded."""

    async def put(self) -> None:
        body = self.json_body()
        task_id, name = body.get("task_id"), body.get("name")
        if not isinstance(task_id, str) or not task_id:
            raise InvalidParameters("missing field 'task_id'")
        if not isinstance(name, str) or not name:
            raise InvalidParameters("missing field 'name'")
        await self.manager.workspaces.workspace_plan(task_id, name)
        self.reply()


class WorkspaceDownloadHandler(StreamingHandler):
    """GET ``/workspace/download?task_id&name``: the action's workspace as a tar.gz."""

    content_type = "application/gzip"

    async def get(self) -> None:
        task_id, name = self.arg_str("task_id"), self.arg_str("name")
        self.set_header("Content-Disposition", attachment(f"{task_id}.{name}.tar.gz"))
        try:
            await self.manager.workspaces.stream_workspace(task_id, name, self.relay)
        except StreamClosedError:
            return
        self.done()


class WorkspaceDeleteHandler(ManagerHandler):
    """PUT ``/workspace/delete {task_ids}`` (a list, or one id as 0.1.5's client sends it):
    ``failed_task_ids``, those whose workspaces were not deleted."""

    async def put(self) -> None:
        task_ids = self.json_body().get("task_ids")
        if isinstance(task_ids, str):
            task_ids = [t for t in task_ids.split(",") if t.strip()]
        if not isinstance(task_ids, list) or not task_ids or not all(isinstance(t, str) for t in task_ids):
            raise InvalidParameters("field 'task_ids' must be a task id or a non-empty list of task ids")
        failed = []
        for task_id in task_ids:
            try:
                await self.manager.workspaces.delete(task_id.strip())
            except LiteError:
                failed.append(task_id)
        self.reply(failed_task_ids=failed)


ROUTES = [
    (r"/workspace/pack", WorkspacePackHandler),
    (r"/workspace/download", WorkspaceDownloadHandler),
    (r"/workspace/delete", WorkspaceDeleteHandler),
]
