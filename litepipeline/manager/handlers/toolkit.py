"""The operator's routes: ``/task/log``, ``/task/workspace``, ``/task/rerun``, ``/task/recover``."""
from __future__ import annotations

from typing import Optional

from tornado.iostream import StreamClosedError

from litepipeline.common.web import attachment, require
from litepipeline.manager.handlers.base import ManagerHandler

TRUE = ("1", "true", "yes", "on")


class StreamingHandler(ManagerHandler):
    """Relays bytes from the nodes; a client that goes away ends the relay quietly."""

    content_type = "application/octet-stream"
    started = False

    async def relay(self, chunk: bytes) -> None:
        if not self.started:
            self.started = True
            self.set_header("Content-Type", self.content_type)
        self.write(chunk)
        await self.flush()

    def done(self) -> None:
        if not self.started:
            self.set_header("Content-Type", self.content_type)
        self.finish()


class TaskLogHandler(StreamingHandler):
    """GET ``/task/log?task_id=&name=&follow=0|1``: an action's stdout.data, from its node."""

    async def get(self) -> None:
        task_id = self.arg_str("task_id")
        name = self.arg_str("name")
        follow = (self.get_query_argument("follow", "") or "").strip().lower() in TRUE
        try:
            await self.manager.workspaces.stream_log(task_id, name, follow, self.relay)
        except StreamClosedError:
            return
        self.done()


class TaskWorkspaceHandler(StreamingHandler):
    """GET ``/task/workspace?task_id=&name=``: one tar.gz; DELETE ``/task/workspace?task_id=``."""

    content_type = "application/gzip"

    async def get(self) -> None:
        task_id = self.arg_str("task_id")
        name: Optional[str] = self.arg_str("name", required=False)
        filename = f"{task_id}-{name}.tar.gz" if name else f"{task_id}.tar.gz"
        self.set_header("Content-Disposition", attachment(filename))
        try:
            await self.manager.workspaces.stream_workspace(task_id, name, self.relay)
        except StreamClosedError:
            return
        self.done()

    async def delete(self) -> None:
        nodes = await self.manager.workspaces.delete(self.arg_str("task_id"))
        self.reply(nodes=nodes)


class TaskRerunHandler(ManagerHandler):
    """POST ``/task/rerun`` ``{task_id}``: a new task with the same application and input."""

    async def post(self) -> None:
        task_id = require(self.json_body(), "task_id", str, "a string")
        self.reply(task_id=await self.manager.rerun_task(task_id), rerun_of=task_id)

    put = post   # the 0.1.5 client sends PUT


class TaskRecoverHandler(ManagerHandler):
    """PUT ``/task/recover`` ``{task_id}``: a failed or killed task runs again in place."""

    async def put(self) -> None:
        task_id = require(self.json_body(), "task_id", str, "a string")
        await self.manager.recover_task(task_id)
        self.reply(task_id=task_id)
