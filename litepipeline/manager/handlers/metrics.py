"""``GET /metrics``: the manager's Prometheus metrics (see :mod:`litepipeline.manager.metrics`)."""
from __future__ import annotations

from typing import Optional

from litepipeline.common.errors import NotFound
from litepipeline.common.httpmetrics import CONTENT_TYPE
from litepipeline.manager.handlers.base import ManagerHandler
from litepipeline.manager.manager import Manager
from litepipeline.manager.metrics import ManagerMetrics


class MetricsHandler(ManagerHandler):
    """Prometheus text format; needs the token like every route unless ``metrics_public``."""

    def initialize(self, manager: Manager, metrics: Optional[ManagerMetrics] = None) -> None:  # type: ignore[override]
        super().initialize(manager)
        self.metrics = metrics
        self.public = bool(manager.config.metrics_public)

    def get(self) -> None:
        if self.metrics is None:
            raise NotFound("this manager keeps no metrics")
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(self.metrics.text())


def routes(manager: Manager, metrics: Optional[ManagerMetrics]) -> list:
    return [(r"/metrics", MetricsHandler, {"manager": manager, "metrics": metrics})]
