"""``GET /workspace/download`` and ``DELETE /workspace/delete``: a task's workspaces on this node.

Download streams an uncompressed tar whose members are ``<task_id>/<name>/...`` (every
action directory of the task, or only ``name``'s). :mod:`tarfile` runs in a thread and
hands its bytes to the loop through a bounded :class:`~litepipeline.common.streaming.Channel`,
so neither the loop nor memory waits on a large workspace. Files still being written are
sent as they were when their header was written (a file that shrank meanwhile is padded
with zeros, one that grew is cut), files that vanish are left out.

Delete removes ``workspaces/<task_id>`` (renamed away at once, removed in a thread); it
is refused (409) while an action of the task runs on this node, and is a no-op when the
directory is already gone.
"""
from __future__ import annotations

import logging
import os
import tarfile
import threading
from typing import Any, Optional

from tornado.iostream import StreamClosedError

from litepipeline.common.errors import OperationFailed
from litepipeline.node.handlers import NodeHandler
from litepipeline.node.logstream import gone, plain_arg
from litepipeline.common.streaming import EOF, Channel, ChannelAborted, ChannelWriter

LOG = logging.getLogger(__name__)


class _Exactly:
    """``size`` bytes of ``fp``: zeros make up for a file that shrank after its header was written."""

    def __init__(self, fp: Any, size: int) -> None:
        self.fp = fp
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.fp.read(n) if n else b""
        if len(data) < n:
            data += b"\0" * (n - len(data))
        self.left -= len(data)
        return data


def add_tree(tar: tarfile.TarFile, path: str, arcname: str) -> None:
    """Add ``path`` (recursively, symlinks as links) under ``arcname``; vanished entries are skipped."""
    stack = [(path, arcname)]
    while stack:
        current, name = stack.pop()
        try:
            info = tar.gettarinfo(current, name)
        except FileNotFoundError:
            continue
        if info is None:  # a socket or other unarchivable entry
            continue
        if info.isreg():
            try:
                fp = open(current, "rb")  # noqa: SIM115 - closed right below
            except (FileNotFoundError, PermissionError):
                continue
            with fp:
                tar.addfile(info, _Exactly(fp, info.size))
            continue
        tar.addfile(info)
        if info.isdir():
            try:
                children = sorted(os.listdir(current), reverse=True)
            except (FileNotFoundError, PermissionError):
                continue
            stack.extend((os.path.join(current, child), f"{name}/{child}") for child in children)


def write_tar(root: str, task_id: str, name: Optional[str], channel: Channel) -> None:
    """Thread body: the tar of ``root/task_id`` (or of one action's directory) into ``channel``."""
    writer = ChannelWriter(channel)
    try:
        base = os.path.join(root, task_id)
        names = [name] if name else sorted(os.listdir(base))
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for entry in names:
                add_tree(tar, os.path.join(base, entry), f"{task_id}/{entry}")
        writer.close()
    except ChannelAborted:
        pass   # the reader went away
    except BaseException as exc:  # noqa: BLE001 - reported to the loop side
        channel.abort(exc)


class WorkspaceDownloadHandler(NodeHandler):
    """``GET /workspace/download?task_id=&name=``: an uncompressed tar stream."""

    async def get(self) -> None:
        task_id = plain_arg(self, "task_id")
        name = plain_arg(self, "name", required=False)
        root = self.node.workspaces.root
        target = os.path.join(root, task_id, name) if name else os.path.join(root, task_id)
        if not os.path.isdir(target):
            raise gone(task_id, name)
        channel = Channel()
        thread = threading.Thread(target=write_tar, args=(root, task_id, name, channel), daemon=True,
                                  name=f"workspace-tar-{task_id}")
        thread.start()
        self.set_header("Content-Type", "application/x-tar")
        sent = False
        try:
            while True:
                chunk = await channel.get()
                if chunk == EOF:
                    break
                sent = True
                self.write(chunk)
                await self.flush()
        except ChannelAborted as exc:
            LOG.error("workspace tar of task %s failed: %s", task_id, exc)
            if not sent:
                raise
            self.request.connection.close()   # the reader must see a cut stream, not a short tar
            return
        except StreamClosedError:
            return
        finally:
            channel.abort()   # stops the thread if the reader went away; harmless when it is done
        self.finish()


class WorkspaceDeleteHandler(NodeHandler):
    """``DELETE /workspace/delete?task_id=``."""

    def delete(self) -> None:
        task_id = plain_arg(self, "task_id")
        if task_id in self.node.executor.busy_tasks():
            raise OperationFailed(f"an action of task {task_id} is running on this node")
        path = os.path.join(self.node.workspaces.root, task_id)
        if not os.path.lexists(path):
            self.reply(message="nothing to delete")
            return
        self.node.workspaces.trash.discard(path)
        LOG.info("workspaces of task %s deleted", task_id)
        self.reply()
