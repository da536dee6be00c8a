"""The web interface: one object owning its sessions and its push channel.

``server.py`` builds a :class:`WebUI` beside the API routes. It listens to the
dispatcher's committed rounds and to nodes joining or leaving (for the push channel) and reads the store through the
manager's database thread; it never changes scheduling state itself: every change the
pages make goes through the manager's own HTTP API.
"""
from __future__ import annotations

import asyncio
import functools
import os
import time
from typing import Any, Optional

from litepipeline.common.errors import TaskNotExists
from litepipeline.manager.store.tasks_page import task_page as query_task_page
from litepipeline.manager.ui import handlers, views
from litepipeline.manager.ui.auth import Sessions
from litepipeline.manager.ui.push import Hub

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC = os.path.join(HERE, "static")
WORK_TASKS = 1000   # a work's tasks read for its page (its entries' and event application's)


class WebUI:
    """Sessions, the push hub and the reads the pages need; ``routes()`` for tornado."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.sessions = Sessions(manager.config.auth_token)
        self.hub = Hub()
        manager.dispatcher.saved_listeners.append(self.hub.publish)
        manager.cluster.listeners.append(self.hub.nodes_changed)

    def routes(self) -> list:
        args = {"manager": self.manager, "ui": self}
        return [
            (r"/ui", handlers.RedirectHandler),
            (r"/ui/", handlers.IndexHandler, {"ui": self}),
            (r"/ui/login", handlers.LoginHandler, {"ui": self}),
            (r"/ui/logout", handlers.LogoutHandler, args),
            (r"/ui/api/session", handlers.SessionHandler, args),
            (r"/ui/api/cluster", handlers.ClusterHandler, args),
            (r"/ui/api/tasks", handlers.TasksHandler, args),
            (r"/ui/api/task", handlers.TaskHandler, args),
            (r"/ui/api/workflow", handlers.WorkflowPageHandler, args),
            (r"/ui/api/work", handlers.WorkPageHandler, args),
            (r"/ui/api/schedules", handlers.SchedulesHandler, args),
            (r"/ui/events", handlers.EventsHandler, args),
            (r"/ui/static/(.*)", handlers.StaticHandler, {"path": STATIC}),
        ]

    def settings(self) -> dict:
        """tornado Application settings: the base handler honours these sessions."""
        return {"ui_sessions": self.sessions}

    def close(self) -> None:
        """End every open event stream (the manager is stopping)."""
        self.hub.close()

    # -- reads ----------------------------------------------------------------------------
    def cluster(self) -> dict:
        core, cluster = self.manager.core, self.manager.cluster
        slots = {node_id: (n.slots, len(n.busy)) for node_id, n in core.nodes.items()}
        now = time.monotonic()
        seen = {node_id: now - n.last_seen for node_id, n in cluster.nodes.items()}
        return views.cluster_page(self.manager.cluster_info(), slots, seen)

    async def tasks(self, before: Optional[int], limit: int, **filters: Optional[str]) -> dict:
        store = self.manager.store
        page = await self.manager.db(functools.partial(query_task_page, store.engine, before, limit, **filters))
        rows = [views.task_row_view(r) for r in page["rows"]]
        return {"tasks": rows, "more": page["more"], "total": page["total"], "total_capped": page["total_capped"],
                "next_before": rows[-1]["id"] if rows and page["more"] else None}

    async def task(self, task_id: str, down: bool = False) -> dict:
        store = self.manager.store

        def read() -> tuple:
            row = store.get_task(task_id)
            if row is None:
                raise TaskNotExists(f"task {task_id} does not exist")
            return row, store.get_actions(task_id), store.get_attempts(task_id)

        row, actions, attempts = await self.manager.db(read)
        addresses = {node_id: node.address for node_id, node in self.manager.cluster.nodes.items()}
        # the layout of a large DAG takes tens of ms: not on the event loop
        return await asyncio.get_running_loop().run_in_executor(
            None, views.task_page, row, actions, attempts, addresses.get, down)

    async def workflow(self, workflow_id: str, down: bool = False) -> dict:
        info = await self.manager.works.workflow_info(workflow_id)
        return await asyncio.get_running_loop().run_in_executor(None, views.workflow_page, info, down)

    async def work(self, work_id: str, down: bool = False) -> dict:
        info = await self.manager.works.work_info(work_id)
        page = await self.manager.db(functools.partial(query_task_page, self.manager.store.engine, None,
                                                       WORK_TASKS, work_id=work_id))
        return await asyncio.get_running_loop().run_in_executor(None, views.work_page, info, page["rows"], down)

    async def schedules(self, offset: int, limit: int) -> tuple[list, int]:
        """A page of schedules, each with its next fires (``/schedule/list`` leaves them out)."""
        driver = self.manager.schedules
        rows, total = await self.manager.db(functools.partial(
            self.manager.schedule_store.list_schedules, offset, limit))
        return [driver.view(row, upcoming=True) for row in rows], total
