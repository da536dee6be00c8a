"""``GET /``, ``GET /cluster/info`` and ``GET /openapi.json``."""
from __future__ import annotations

from litepipeline.manager import openapi
from litepipeline.manager.handlers.base import ManagerHandler


class IndexHandler(ManagerHandler):
    public = True

    def get(self) -> None:
        self.finish({"message": "LitePipeline manager service", **self.manager.role()})


class ClusterInfoHandler(ManagerHandler):
    def get(self) -> None:
        self.reply(**self.manager.cluster_info())


class OpenApiHandler(ManagerHandler):
    """The API's OpenAPI 3.1 document: public, it holds no secret."""

    public = True

    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(openapi.document_bytes())
