"""The node's HTTP API (SPEC §4): thin handlers over the :class:`Node` object."""
from __future__ import annotations

import json
import signal
from typing import Any

import tornado.web

from litepipeline.common.httpmetrics import CONTENT_TYPE, MeteredApplication
from litepipeline.common.messages import RunAction, StopAction
from litepipeline.common.web import JsonHandler, NotFoundHandler

STOP_SIGNALS = {-9: signal.SIGKILL, -15: signal.SIGTERM}
DISPATCH_BODY_LIMIT = 100 * 1024 * 1024   # what the node's HTTP server took before limits per route


class NodeHandler(JsonHandler):
    def initialize(self, node: Any) -> None:
        self.node = node
        self.auth_token = node.config.auth_token
        self.max_json_body = node.config.max_json_body


class InfoHandler(NodeHandler):
    public = True

    def get(self) -> None:
        # exactly the original's body, no "result" (SPEC §4)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"message": "LitePipeline node service"}))


class RunHandler(NodeHandler):
    def body_limit(self) -> int:
        # an action's input carries its upstreams' outputs (each up to max_output_size);
        # the token is checked first, so only the manager can send this much
        return max(self.max_json_body, DISPATCH_BODY_LIMIT)

    def post(self) -> None:
        request = RunAction.parse(self.json_body())
        if self.node.executor.accept(request):
            self.reply()
        else:
            self.reply(message="attempt already accepted")


class StopHandler(NodeHandler):
    def put(self) -> None:
        stop = StopAction.parse(self.json_body())
        message = self.node.executor.stop(stop.task_id, stop.name, STOP_SIGNALS[stop.signal], stop.attempt_id or None)
        if message:
            self.reply(message=message)
        else:
            self.reply()


class FullHandler(NodeHandler):
    def get(self) -> None:
        executor = self.node.executor
        self.reply(full=executor.full or executor.draining, action_slots=self.node.config.action_slots,
                   running=executor.slots_used, draining=executor.draining)


class MetricsHandler(NodeHandler):
    """Prometheus text format; needs the token like every route unless ``metrics_public``."""

    def initialize(self, node: Any) -> None:
        super().initialize(node)
        self.public = bool(node.config.metrics_public)

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(self.node.metrics.text())


def make_app(node: Any) -> tornado.web.Application:
    from litepipeline.node import logstream, wsarchive  # they build on NodeHandler

    args = {"node": node}
    return MeteredApplication(
        [
            (r"/", InfoHandler, args),
            (r"/action/run", RunHandler, args),
            (r"/action/stop", StopHandler, args),
            (r"/status/full", FullHandler, args),
            (r"/action/log", logstream.ActionLogHandler, args),
            (r"/workspace/download", wsarchive.WorkspaceDownloadHandler, args),
            (r"/workspace/delete", wsarchive.WorkspaceDeleteHandler, args),
            (r"/metrics", MetricsHandler, args),
        ],
        getattr(getattr(node, "metrics", None), "http", None),   # a stand-in node without metrics counts nothing
        default_handler_class=NotFoundHandler,
    )
