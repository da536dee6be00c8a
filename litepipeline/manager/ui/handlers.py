"""The web interface's routes: pages (public shells, no data, no secrets), login and
logout, the pages' JSON reads, and the Server-Sent Events stream."""
from __future__ import annotations

import os
from typing import Any, Optional

import tornado.template
import tornado.web
from tornado.iostream import StreamClosedError

from litepipeline.common.errors import InvalidParameters
from litepipeline.common.states import Stage, Status
from litepipeline.manager.handlers.base import ManagerHandler
from litepipeline.manager.ui.auth import COOKIE
from litepipeline.manager.ui.push import TOPICS
from litepipeline.version import __version__

TEMPLATES = tornado.template.Loader(os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates"))
STAGES = [s.value for s in Stage]
STATUSES = [s.value for s in Status]
PAGE_LIMIT = 200
KEEPALIVE_SECONDS = 15.0
# the pages load only their own scripts and styles and talk only to this manager
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def secure_headers(handler: tornado.web.RequestHandler) -> None:
    handler.set_header("Content-Security-Policy", CSP)
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Referrer-Policy", "no-referrer")


class RedirectHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.redirect("/ui/", permanent=False)


class PageHandler(tornado.web.RequestHandler):
    """A public HTML page; it holds no data: the scripts fetch that once logged in."""

    def initialize(self, ui: Any) -> None:
        self.ui = ui

    def logged_in(self) -> bool:
        morsel = self.request.cookies.get(COOKIE)
        return self.ui.sessions.get(morsel.value if morsel is not None else None) is not None

    def page(self, template: str, status: int = 200, **values: Any) -> None:
        secure_headers(self)
        self.set_header("Cache-Control", "no-store")
        self.set_status(status)
        self.finish(TEMPLATES.load(template).generate(version=__version__, **values))


class IndexHandler(PageHandler):
    """``/ui/``: the application shell (pages are chosen by the URL's #fragment)."""

    def get(self) -> None:
        if self.ui.sessions.required and not self.logged_in():
            self.redirect("/ui/login")
            return
        self.page("index.html", auth=self.ui.sessions.required)


class LoginHandler(PageHandler):
    """``/ui/login``: the token, typed once, becomes a session cookie."""

    def get(self) -> None:
        if not self.ui.sessions.required or self.logged_in():
            self.redirect("/ui/")
            return
        self.page("login.html", error=None)

    def post(self) -> None:
        if not self.ui.sessions.required:
            self.redirect("/ui/", status=303)
            return
        session = self.ui.sessions.login(self.get_body_argument("token", ""))
        if session is None:
            self.page("login.html", status=401, error="That is not the manager's auth_token.")
            return
        self.set_cookie(COOKIE, session.session_id, path="/", httponly=True, samesite="Strict")
        self.redirect("/ui/", status=303)


class StaticHandler(tornado.web.StaticFileHandler):
    """The pages' scripts and styles (shipped in the package; no secret in them)."""

    def set_extra_headers(self, path: str) -> None:
        secure_headers(self)
        self.set_header("Cache-Control", "no-cache")   # revalidated by ETag: upgrades show at once


class UiApiHandler(ManagerHandler):
    """The pages' JSON reads: the token or the session cookie (checked by the base handler)."""

    def initialize(self, manager: Any, ui: Any) -> None:  # noqa: D102
        super().initialize(manager)
        self.ui = ui


class LogoutHandler(UiApiHandler):
    """POST ``/ui/logout`` (session + CSRF header): the session is forgotten."""

    def post(self) -> None:
        morsel = self.request.cookies.get(COOKIE)
        self.ui.sessions.logout(morsel.value if morsel is not None else None)
        self.clear_cookie(COOKIE, path="/")
        self.reply()


class SessionHandler(UiApiHandler):
    """GET ``/ui/api/session``: the CSRF value the pages echo in ``X-CSRF-Token``."""

    def get(self) -> None:
        morsel = self.request.cookies.get(COOKIE)
        session = self.ui.sessions.get(morsel.value if morsel is not None else None)
        self.set_header("Cache-Control", "no-store")
        self.reply(auth=self.ui.sessions.required, csrf=session.csrf if session else None, version=__version__)


class ClusterHandler(UiApiHandler):
    def get(self) -> None:
        self.reply(**self.ui.cluster())


class TasksHandler(UiApiHandler):
    """GET ``/ui/api/tasks?before=&limit=&stage=&status=&app_id=&work_id=&name=``: one keyset page."""

    async def get(self) -> None:
        before: Optional[int] = self.arg_int("before", 0, minimum=1) or None
        limit = self.arg_int("limit", 50, minimum=1, maximum=PAGE_LIMIT)
        stage = self.arg_str("stage", required=False)
        if stage is not None and stage not in STAGES:
            raise InvalidParameters(f"parameter 'stage' must be one of {', '.join(STAGES)}, got {stage[:40]!r}")
        status = self.arg_str("status", required=False)
        if status is not None and status not in STATUSES:
            raise InvalidParameters(f"parameter 'status' must be one of {', '.join(STATUSES)}, "
                                    f"got {status[:40]!r}")
        name = self.arg_str("name", required=False)
        if name is not None and len(name) > 255:
            raise InvalidParameters("parameter 'name' is longer than 255 characters")
        self.reply(**await self.ui.tasks(before, limit, stage=stage, status=status,
                                         application_id=self.arg_str("app_id", required=False),
                                         work_id=self.arg_str("work_id", required=False), name=name))


class TaskHandler(UiApiHandler):
    """GET ``/ui/api/task?task_id=&direction=right|down``: the task, its actions,
    attempts and DAG layout (``down``: drawn top to bottom, for narrow screens)."""

    async def get(self) -> None:
        direction = self.arg_str("direction", required=False, default="right")
        if direction not in ("right", "down"):
            raise InvalidParameters(f"parameter 'direction' must be right or down, got {direction[:40]!r}")
        self.reply(**await self.ui.task(self.arg_str("task_id"), direction == "down"))


def direction_down(handler: UiApiHandler) -> bool:
    direction = handler.arg_str("direction", required=False, default="right")
    if direction not in ("right", "down"):
        raise InvalidParameters(f"parameter 'direction' must be right or down, got {direction[:40]!r}")
    return direction == "down"


class WorkflowPageHandler(UiApiHandler):
    """GET ``/ui/api/workflow?workflow_id=&direction=``: the workflow and its applications' layout."""

    async def get(self) -> None:
        self.reply(**await self.ui.workflow(self.arg_str("workflow_id"), direction_down(self)))


class WorkPageHandler(UiApiHandler):
    """GET ``/ui/api/work?work_id=&direction=``: the work, each entry's state and task, the layout."""

    async def get(self) -> None:
        self.reply(**await self.ui.work(self.arg_str("work_id"), direction_down(self)))


class SchedulesHandler(UiApiHandler):
    """GET ``/ui/api/schedules?offset=&limit=``: ``/schedule/list`` plus each one's next fires."""

    async def get(self) -> None:
        offset = self.arg_int("offset", 0, minimum=0)
        limit = self.arg_int("limit", 50, minimum=1, maximum=PAGE_LIMIT)
        schedules, total = await self.ui.schedules(offset, limit)
        self.reply(schedules=schedules, total=total, offset=offset, limit=limit)


class EventsHandler(UiApiHandler):
    """GET ``/ui/events?topic=cluster|tasks|task|work[&task_id=][&work_id=]``: Server-Sent Events.

    Each event is what one committed round changed; ``resync`` means events were
    dropped (the browser read too slowly) and the page should fetch its state again.
    """

    sub = None
    gone = False

    async def get(self) -> None:
        topic = self.arg_str("topic")
        if topic not in TOPICS:
            raise InvalidParameters(f"parameter 'topic' must be one of {', '.join(TOPICS)}, got {topic[:40]!r}")
        if topic == "work":   # without a work id: every work (the works list)
            key = self.arg_str("work_id", required=False)
        else:
            key = self.arg_str("task_id", required=topic == "task")
        self.sub = sub = self.ui.hub.subscribe(topic, key)   # 503 when too many are open
        self.set_header("Content-Type", "text/event-stream; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Accel-Buffering", "no")
        try:
            # retry: how soon EventSource reconnects; "ready" tells the page it may fetch
            # its state now: every later change arrives on this stream
            self.write("retry: 2000\nevent: ready\ndata: {}\n\n")
            await self.flush()
            while not sub.closed:
                await sub.wait(KEEPALIVE_SECONDS)
                frames = sub.take()
                if sub.closed:
                    break
                self.write("".join(frames) if frames else ": keep-alive\n\n")
                await self.flush()
        except StreamClosedError:
            return
        finally:
            self.ui.hub.unsubscribe(sub)
        if not self.gone:   # the manager is stopping: end the response properly
            self.finish()

    def on_connection_close(self) -> None:
        self.gone = True
        if self.sub is not None:
            self.sub.close()
