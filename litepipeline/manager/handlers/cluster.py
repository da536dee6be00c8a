"""``GET /`` and ``GET /cluster/info``."""
from __future__ import annotations

from litepipeline.manager.handlers.base import ManagerHandler


class IndexHandler(ManagerHandler):
    public = True

    def get(self) -> None:
        self.finish({"message": "LitePipeline manager service", **self.manager.role()})


class ClusterInfoHandler(ManagerHandler):
    def get(self) -> None:
        self.reply(**self.manager.cluster_info())
