"""The node's HTTP API (SPEC §4): thin handlers over the :class:`Node` object."""
from __future__ import annotations

import json
import signal
from typing import Any

import tornado.web

from litepipeline.common.errors import InvalidParameters
from litepipeline.common.web import JsonHandler, NotFoundHandler, require
from litepipeline.node.executor import ActionRequest

STOP_SIGNALS = {9: signal.SIGKILL, 15: signal.SIGTERM}
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
        request = ActionRequest.from_json(self.json_body())
        if self.node.executor.accept(request):
            self.reply()
        else:
            self.reply(message="attempt already accepted")


def parse_signal(value: Any) -> int:
    """-9/-15 (SPEC) or 9/15, as int or numeric string; missing means SIGTERM."""
    if value is None:
        return signal.SIGTERM
    try:
        number = abs(int(value)) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number not in STOP_SIGNALS:
        raise InvalidParameters(f"field 'signal' must be -9 or -15, got {value!r}")
    return STOP_SIGNALS[number]


class StopHandler(NodeHandler):
    def put(self) -> None:
        data = self.json_body()
        task_id = require(data, "task_id", str)
        name = require(data, "name", str)
        attempt_id = data.get("attempt_id")
        if attempt_id is not None and not isinstance(attempt_id, str):
            raise InvalidParameters("field 'attempt_id' must be a string")
        message = self.node.executor.stop(task_id, name, parse_signal(data.get("signal")), attempt_id or None)
        if message:
            self.reply(message=message)
        else:
            self.reply()


class FullHandler(NodeHandler):
    def get(self) -> None:
        executor = self.node.executor
        self.reply(full=executor.full or executor.draining, action_slots=self.node.config.action_slots,
                   running=executor.slots_used, draining=executor.draining)


def make_app(node: Any) -> tornado.web.Application:
    from litepipeline.node import logstream, wsarchive  # they build on NodeHandler

    args = {"node": node}
    return tornado.web.Application(
        [
            (r"/", InfoHandler, args),
            (r"/action/run", RunHandler, args),
            (r"/action/stop", StopHandler, args),
            (r"/status/full", FullHandler, args),
            (r"/action/log", logstream.ActionLogHandler, args),
            (r"/workspace/download", wsarchive.WorkspaceDownloadHandler, args),
            (r"/workspace/delete", wsarchive.WorkspaceDeleteHandler, args),
        ],
        default_handler_class=NotFoundHandler,
    )
