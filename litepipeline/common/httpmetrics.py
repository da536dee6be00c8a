"""What the manager's and the node's ``GET /metrics`` share: HTTP request metrics and the reply.

Requests are counted by route *pattern* (the tornado rule a handler was matched by, e.g.
``/task/info``), never by raw URL, so the number of series stays bounded whatever clients
send. :class:`MeteredApplication` observes each request where tornado logs it, after the
answer was written.
"""
from __future__ import annotations

import re
from typing import Any, Optional

import tornado.web

from litepipeline.common.tallies import Buckets, Tally, TallyCollector

#: the text format 0.0.4, whatever the library's newest format is (Prometheus reads both)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: request time buckets, seconds: from a cached GET to a held ``task/info?wait=``
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   300.0)


class HttpMetrics:
    """``litepipeline_http_requests_total`` and ``litepipeline_http_request_duration_seconds``,
    labelled by route pattern (and status code for the counter): registered on ``registry``
    when given, else later through :attr:`collector`."""

    def __init__(self, registry: Any = None) -> None:
        self.requests = Tally("litepipeline_http_requests", "HTTP requests answered, by route pattern and "
                              "status code", ["route", "code"])
        self.seconds = Buckets("litepipeline_http_request_duration_seconds", "HTTP request time from its "
                               "first byte to the answer's last, by route pattern", REQUEST_BUCKETS, ["route"])
        self.collector = TallyCollector(self.requests, self.seconds)
        if registry is not None:
            registry.register(self.collector)
        # handler class -> its route patterns (a class may serve several); see learn()
        self._routes: dict[type, list[tuple[re.Pattern, str]]] = {}

    def learn(self, app: tornado.web.Application) -> None:
        """Read ``app``'s routing rules: which patterns each handler class serves."""
        for rule in app.wildcard_router.rules:
            regex = getattr(rule.matcher, "regex", None)
            if isinstance(rule.target, type) and regex is not None:
                self._routes.setdefault(rule.target, []).append((regex, regex.pattern.removesuffix("$")))

    def route(self, handler: tornado.web.RequestHandler) -> str:
        """The pattern ``handler`` was routed by; its class name for the default handler."""
        routes = self._routes.get(type(handler))
        if not routes:
            return type(handler).__name__
        if len(routes) == 1:
            return routes[0][1]
        path = handler.request.path
        return next((pattern for regex, pattern in routes if regex.match(path)), routes[0][1])

    def observe(self, handler: tornado.web.RequestHandler) -> None:
        """Count one answered request (called by :class:`MeteredApplication`)."""
        route = self.route(handler)
        self.requests.inc(route, str(handler.get_status()))
        self.seconds.observe(handler.request.request_time(), route)


class MeteredApplication(tornado.web.Application):
    """A tornado Application whose every answered request is counted in ``http_metrics``."""

    def __init__(self, handlers: list, http_metrics: Optional[HttpMetrics] = None, **settings: Any) -> None:
        super().__init__(handlers, **settings)
        self.http_metrics = http_metrics
        if http_metrics is not None:
            http_metrics.learn(self)

    def log_request(self, handler: tornado.web.RequestHandler) -> None:
        super().log_request(handler)
        if self.http_metrics is not None:
            self.http_metrics.observe(handler)


def exposition_text(registry: Any) -> bytes:
    """The registry in Prometheus text format (:data:`CONTENT_TYPE`)."""
    from prometheus_client import exposition

    return exposition.generate_latest(registry)
